"""A Meta-layout version (``sam3.pt``): registered, promoted, pulled (verified), loaded by Meta's builder,
and run by ``sam3ops.load`` on Meta's own model."""

from __future__ import annotations

import pytest
import torch

import sam3ops
from sam3ops import tracking
from sam3ops.registry import promote, pull, register
from sam3ops.registry.client import client
from tests.support.registry import fake_run


@pytest.fixture
def meta_version(tiny_meta):
    """A FINISHED convert run that wrote Meta's layout (as `convert --layout meta` does), registered and
    promoted: the model's name."""
    run = fake_run({tracking.STAGE_TAG: "convert", "format": "fp32", "precision": "fp32", "parity": "pass",
                    "weights_random": "true"}, weights=tiny_meta)
    version = register(run_id=run, name="sam3-meta")
    promote(version=version.version, name="sam3-meta", allow_random=True, reason="a Meta-layout version")
    return version


def test_meta_version_is_tagged_pulled_verified_and_loads_in_meta_builder(meta_version, tiny_meta, tmp_path):
    from sam3ops.meta.package import build_image_model

    assert meta_version.tags["layout"] == "meta"
    assert client().get_model_version("sam3-meta", meta_version.version).tags["layout"] == "meta"
    pulled = pull(dest=tmp_path / "pulled", name="sam3-meta", alias="production").dest
    assert sorted(p.name for p in pulled.iterdir() if p.name != "MODEL_INFO.json") == ["manifest.json", "sam3.pt"]
    model = build_image_model(checkpoint=pulled / "sam3.pt", size="tiny")  # Meta's loader, Meta's builder
    original = torch.load(tiny_meta / "sam3.pt", weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, original[f"detector.{name}"], rtol=0, atol=0)


def test_load_runs_the_meta_version_on_meta_model(meta_version, tiny_meta, tmp_path):
    from sam3ops.inference import Segmenter
    from sam3ops.inference.meta_core import MetaCore
    from sam3ops.predict.samples import sample_image

    segmenter = sam3ops.load("models:/sam3-meta@production", cache_dir=tmp_path / "cache", score_threshold=0.0)
    assert isinstance(segmenter.core, MetaCore)
    [result] = segmenter.segment([sample_image("chelsea")], ["cat"])
    [direct] = Segmenter.from_dir(tiny_meta, score_threshold=0.0).segment([sample_image("chelsea")], ["cat"])
    assert len(result.labels) == 20 and result.labels == direct.labels
    torch.testing.assert_close(torch.from_numpy(result.scores), torch.from_numpy(direct.scores))


def test_a_tampered_meta_pull_is_noticed_and_fetched_again(meta_version, tiny_meta, tmp_path, caplog):
    from sam3ops.checkpoint.manifest import file_hashes

    dest = pull(dest=tmp_path / "pulled", name="sam3-meta", alias="production").dest
    (dest / "sam3.pt").write_bytes(b"tampered")
    pull(dest=dest, name="sam3-meta", alias="production")
    assert "does not match its manifest" in caplog.text
    assert file_hashes(dest / "sam3.pt")[0] == file_hashes(tiny_meta / "sam3.pt")[0]


def test_a_meta_version_lists_metas_runtime_and_sam3_to_install_without_deps(meta_version):
    """requirements.txt: what Meta's image model imports (a plain `pip install -r` resolves it);
    requirements-no-deps.txt: Meta's package itself, whose own pins contradict that file."""
    from importlib import metadata

    import mlflow

    model = mlflow.get_logged_model(meta_version.tags["model_id"])
    requirements = mlflow.artifacts.load_text(f"{model.artifact_location}/requirements.txt").split()
    names = {line.split("==")[0] for line in requirements}
    assert {"einops", "iopath", "timm", "ftfy", "regex", "open_clip_torch", "torch", "mlflow"} <= names
    assert "sam3" not in names and "safetensors" not in names, requirements  # sam3.pt is read by torch.load
    no_deps = mlflow.artifacts.load_text(f"{model.artifact_location}/requirements-no-deps.txt").split()
    assert no_deps == [f"sam3=={metadata.version('sam3')}"]
