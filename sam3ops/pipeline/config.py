"""The main job's options, validated once: defaults, the promotion policy, the formats to convert to.

:class:`PipelineConfig` checks itself on creation (each bad value a :class:`UsageError` with a
hint); the CLI reads its defaults and the MLproject ``main`` entry point repeats them (a test keeps
the two equal). Imports neither torch nor mlflow.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from sam3ops.bench.config import parse_batches
from sam3ops.convert.config import AUTO, FORMATS
from sam3ops.errors import UsageError
from sam3ops.inference.selection import check_top_k
from sam3ops.predict.config import AUTO as TOP_K_AUTO
from sam3ops.predict.config import DEFAULT_DEVICE, DEFAULT_OUTPUT, DEFAULT_WEIGHTS, top_k_for
from sam3ops.predict.config import OFF as TOP_K_OFF
from sam3ops.registry import DEFAULT_ALIAS, DEFAULT_NAME

AUTO_FORMATS = ("fp16", "onnx")  # plus tensorrt on a GPU with TensorRT


def parse_policy(policy: str) -> tuple[str, int | None]:
    """``latency@N`` -> ``("latency", N)``; ``throughput`` -> ``("throughput", None)``.

    Raises:
        UsageError: any other policy.
    """
    if policy == "throughput":
        return "throughput", None
    kind, _, batch = policy.partition("@")
    if kind == "latency" and batch.isdigit() and int(batch) > 0:
        return "latency", int(batch)
    raise UsageError(f"unknown promotion policy {policy!r}", hint="use latency@N (e.g. latency@1) or throughput")


def parse_formats(text: str) -> tuple[str, ...]:
    """``fp16,onnx`` -> ``("fp16", "onnx")`` (duplicates dropped); ``auto`` -> ``()``, resolved per machine.

    Raises:
        UsageError: a format that is not one of the convert stage's.
    """
    if text == AUTO:
        return ()
    formats = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    for fmt in formats:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}", hint=f"choose from: {', '.join(FORMATS)} (or {AUTO})")
    return formats


@dataclass(frozen=True)
class PipelineConfig:
    """One run of the main job.

    Args:
        weights: a weights folder; when it holds no verified download, ``preset`` is initialised
            (random weights, seed ``seed``).
        images: inputs for predict; none means the bundled sample photos (written to ``samples/``).
        prompt_sets, output, device: the prediction (and where every stage runs).
        top_k: the prediction keeps the k best instances per prompt whatever their score: ``auto``
            (3 on random weights, whose scores pass no threshold; the score threshold on real ones),
            a number, or None (the score threshold).
        formats: conversions to make: ``auto`` (fp16 and onnx, plus tensorrt on a GPU with TensorRT)
            or a comma-separated list.
        batch, iterations: the benchmark of every artifact (batch sizes like ``1,4``).
        policy: which version is promoted: ``latency@N`` or ``throughput``; N must be benchmarked.
        model_name, alias: where versions are registered and which alias the winner gets.

    Raises:
        UsageError: an unknown policy or format, bad batch sizes, a policy batch not benchmarked, a
            top_k below 1.
    """

    weights: str = DEFAULT_WEIGHTS
    preset: str = "tiny"
    seed: int = 0
    images: tuple[str, ...] = ()
    prompt_sets: tuple[str, ...] = ("single_objects",)
    output: str = DEFAULT_OUTPUT
    device: str = DEFAULT_DEVICE
    top_k: int | str | None = TOP_K_AUTO
    formats: str = AUTO
    batch: str = "1,4"
    iterations: int = 5
    policy: str = "latency@1"
    model_name: str = DEFAULT_NAME
    alias: str = DEFAULT_ALIAS

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))  # frozen: normalised once, here
        object.__setattr__(self, "prompt_sets", tuple(self.prompt_sets))
        kind, at = self.ranking
        batches = self.batches
        if at is not None and at not in batches:
            raise UsageError(f"policy {self.policy} ranks at batch {at}, which the benchmark does not run",
                             hint=f"add {at} to --batch or use {kind}@{batches[0]}")
        parse_formats(self.formats)
        if self.top_k not in (TOP_K_AUTO, TOP_K_OFF):
            check_top_k(self.top_k)

    def top_k_for(self, *, random: bool) -> int | None:
        """The prediction's top-k for weights that are ``random`` or not (``auto`` resolved)."""
        return top_k_for(self.top_k, random=random)

    @property
    def ranking(self) -> tuple[str, int | None]:
        """The parsed policy: ``("latency", N)`` or ``("throughput", None)``."""
        return parse_policy(self.policy)

    @property
    def batches(self) -> tuple[int, ...]:
        """The benchmark's batch sizes."""
        return parse_batches(self.batch)

    def formats_for(self, *, gpu: bool) -> list[str]:
        """The conversions to make on this machine (``auto``: fp16 and onnx, plus tensorrt when
        ``gpu`` and the tensorrt module is installed)."""
        if chosen := parse_formats(self.formats):
            return list(chosen)
        tensorrt = gpu and importlib.util.find_spec("tensorrt") is not None
        return [*AUTO_FORMATS, *(["tensorrt"] if tensorrt else [])]

    def params(self) -> dict[str, Any]:
        """The pipeline run's params."""
        return {"weights": self.weights, "preset": self.preset, "seed": self.seed, "images": " ".join(self.images),
                "prompt_sets": ",".join(self.prompt_sets), "output": self.output, "device": self.device,
                "top_k": TOP_K_OFF if self.top_k is None else self.top_k, "formats": self.formats,
                "batch": self.batch, "iterations": self.iterations, "policy": self.policy,
                "model_name": self.model_name, "alias": self.alias}
