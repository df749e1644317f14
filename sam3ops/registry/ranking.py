"""Ranking the registered formats for promotion: their logged models, fastest first.

Each version is a logged model whose benchmark and parity metrics are linked to it (see
:mod:`sam3ops.registry.logged`); ``mlflow.search_logged_models`` orders those models by a
benchmark metric (default ``ms_per_image``: its latest value, the largest batch of the newest
benchmark), and only versions that :func:`check_promotable` would take are ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sam3ops import tracking
from sam3ops.errors import PromotionRefusedError
from sam3ops.registry.logged import MODELS_EXPERIMENT
from sam3ops.registry.promotion import check_promotable
from sam3ops.registry.registration import list_versions


@dataclass
class Ranked:
    """A version in the ranking, with the numbers it was ranked by."""

    version: str
    model_id: str
    model_name: str  # format and precision: safetensors-bf16, onnx-fp32, ...
    aliases: list[str]
    value: float  # the ranking metric
    parity_mask_iou: float | None  # None for the fp32 source: it is the reference


def rank(name: str, *, metric: str = "ms_per_image", ascending: bool = True, allow_random: bool = False,
         target_gpu: str | None = None) -> list[Ranked]:
    """The promotable versions of ``name`` that have ``metric``, best first.

    Args:
        metric: a benchmark metric linked to the versions' logged models.
        ascending: lower is better (latency); False for throughput.
        allow_random, target_gpu: as for :func:`sam3ops.registry.promote`.

    Raises:
        RegistryNotFoundError: no such registered model.
    """
    import mlflow

    versions = {v.tags["model_id"]: v for v in list_versions(name) if v.tags.get("model_id")}
    tracking.configure()
    experiment = mlflow.MlflowClient().get_experiment_by_name(MODELS_EXPERIMENT)
    if experiment is None or not versions:
        return []
    models = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id], filter_string=f"metrics.{metric} >= 0", output_format="list",
        order_by=[{"field_name": f"metrics.{metric}", "ascending": ascending}])
    ranked = []
    for model in models:
        if (version := versions.get(model.model_id)) is None:
            continue
        try:
            check_promotable(version.tags, version=version.version, allow_random=allow_random, target_gpu=target_gpu)
        except PromotionRefusedError:
            continue
        ranked.append(Ranked(version.version, model.model_id, model.name, version.aliases,
                             _latest(model, metric), _latest(model, "parity_mask_iou")))
    return ranked


def _latest(model, key: str) -> float | None:
    """The model's latest value of ``key`` (as search_logged_models orders by), or None."""
    values = [m for m in model.metrics or [] if m.key == key]
    return max(values, key=lambda m: (m.timestamp, m.step)).value if values else None
