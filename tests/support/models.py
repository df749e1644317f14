"""A tracking store with every format this machine can make, benchmarked and registered: the tiny
preset's fp32 source (init), an fp16 and an ONNX conversion (convert), one benchmark of each."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.registry import point_at

# Small enough for CI on two cores: one photo and one prompt at the gate, two iterations per batch.
GATE = {"parity_images": ["astronaut"], "parity_prompts": ["person"]}
BENCH = {"batches": (1, 2), "iterations": 2, "warmup": 1, "image_size": 256, "prompts_per_image": 2}


@dataclass
class Formats:
    """What :func:`build_formats` made: the store's URI and, per logged model name, its run and version."""

    uri: str
    root: Path
    runs: dict[str, str] = field(default_factory=dict)  # model name -> the run that logged it
    versions: dict[str, str] = field(default_factory=dict)  # model name -> registered version
    name: str = "sam3"


def build_formats(root: Path, tiny_weights: Path) -> Formats:
    """The store under ``root`` (sqlite, artifacts beside it), made once for a test module."""
    from sam3ops.bench.stage import bench_stage
    from sam3ops.convert.stage import convert_stage
    from sam3ops.registry import register
    from sam3ops.weights.stage import init_stage

    made = Formats(f"sqlite:///{root / 'mlflow.db'}", root)
    shutil.copytree(tiny_weights, root / "tiny")  # init verifies and reuses it: a run without the build
    with pytest.MonkeyPatch.context() as patch:
        point_at(patch, made.uri)
        patch.chdir(root)
        made.runs["safetensors-fp32"] = init_stage(preset="tiny", output=str(root / "tiny"), seed=0).run_id
        for fmt, model in (("fp16", "safetensors-fp16"), ("onnx", "onnx-fp32")):
            result = convert_stage(input_dir=str(root / "tiny"), format=fmt, output=str(root / fmt), **GATE)
            assert result.status == "FINISHED", result.error
            made.runs[model] = result.run_id
        for folder in ("tiny", "fp16", "onnx"):
            result = bench_stage(weights=str(root / folder), precisions=("fp32",), **BENCH)
            assert result.status == "FINISHED", result.error
        for model, run_id in made.runs.items():
            made.versions[model] = register(run_id=run_id, name=made.name).version
    return made
