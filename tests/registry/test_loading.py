"""``registry.load`` and ``sam3ops.load``: a version pulled into the cache once, then reused, and run
on the runtime its files call for; a local folder loads directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sam3ops
from sam3ops.registry import load
from tests.support.registry import point_at


@pytest.mark.slow
def test_load_pulls_once_and_runs_the_registered_weights(server, sources, published, monkeypatch):
    from sam3ops.inference.segmenter import Segmenter
    from sam3ops.predict.samples import sample_image

    point_at(monkeypatch, server.uri)
    name, version = published
    segmenter = load(f"models:/{name}@production", cache_dir=Path("cache"), score_threshold=0.0)
    assert type(segmenter.core).__name__ == "TorchCore"
    [result] = segmenter.segment([sample_image("astronaut")], ["person", "cup"])
    direct = Segmenter.from_dir(sources["fp16_dir"], device="cpu", precision="fp32", score_threshold=0.0)
    [expected] = direct.segment([sample_image("astronaut")], ["person", "cup"])
    assert len(result.labels) > 0 and list(result.labels) == list(expected.labels)
    cached = Path("cache") / name / version
    assert json.loads((cached / "MODEL_INFO.json").read_text())["alias"] == "production"

    weights_inode = (cached / "model.safetensors").stat().st_ino
    assert type(sam3ops.load(f"models:/{name}/{version}", cache_dir=Path("cache")).core).__name__ == "TorchCore"
    assert (cached / "model.safetensors").stat().st_ino == weights_inode  # reused, not pulled again
    assert json.loads((cached / "MODEL_INFO.json").read_text())["alias"] is None  # loaded by version this time


def test_load_a_local_folder(tiny_weights):
    segmenter = load(str(tiny_weights), device="cpu")
    assert type(segmenter.core).__name__ == "TorchCore"
