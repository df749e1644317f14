"""AOTInductor versions in the registry: registered with what they are tied to, pulled, loaded
by ``sam3ops.load`` on their own device type, and refused when compiled with another torch release.

The packages come from the session's one real build (``tiny_aoti``); the convert run here is the
real stage and parity gate with the compile step handing over that build's files, so these tests do
not compile the model a second time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import sam3ops
from sam3ops.convert.aoti import stage as aoti_stage
from sam3ops.convert.aoti.build import AotiBuild
from sam3ops.convert.stage import convert_stage
from sam3ops.errors import ServingError
from sam3ops.inference import aoti_core
from sam3ops.registry import pull, register


@pytest.fixture
def aoti_run(tiny_aoti, tiny_weights, tmp_path, monkeypatch):
    """The aoti convert stage's result in this test's store, with the session build's packages."""
    built = tiny_aoti[0]

    def handed_over(*, source, output, precision, device, batch, overwrite):
        shutil.copytree(built, output)
        sidecar = json.loads((Path(output) / "aoti.json").read_text())
        return AotiBuild(Path(output), [], precision, 1, sidecar["compile_seconds"], sidecar)

    monkeypatch.setattr(aoti_stage, "build_packages", handed_over)
    return convert_stage(input_dir=str(tiny_weights), format="aoti", output=str(tmp_path / "aoti"), max_batch=4,
                         parity_images=["astronaut"], parity_prompts=["person"])


def test_aoti_version_is_tagged_pulled_and_loaded(aoti_run, tmp_path):
    from sam3ops.predict.samples import sample_image

    assert aoti_run.ok, aoti_run.error
    version = register(run_id=aoti_run.run_id, name="sam3-aoti")
    tags = version.tags
    assert tags["format"] == "aoti" and tags["parity"] == "pass" and tags["aoti_device"] == "cpu"
    assert tags["torch_version"] == aoti_core.torch_release() and tags["cpu_isa"]
    pulled = pull(dest=tmp_path / "pulled", name="sam3-aoti", version=version.version)
    assert pulled.format == "aoti" and {"vision.pt2", "text.pt2", "decoder.pt2", "aoti.json"} <= set(pulled.files)
    segmenter = sam3ops.load(f"models:/sam3-aoti/{version.version}", cache_dir=tmp_path / "cache",
                             score_threshold=0.0)
    assert type(segmenter.core).__name__ == "AotiCore" and segmenter.core.device.type == "cpu"
    [result] = segmenter.segment([sample_image("astronaut")], ["person"])
    [expected] = sam3ops.load(str(tmp_path / "pulled"), score_threshold=0.0).segment([sample_image("astronaut")],
                                                                                      ["person"])
    assert len(result.scores) == 20 and (result.scores == expected.scores).all()


def test_load_refuses_packages_of_another_torch_release_unless_forced(aoti_run, tmp_path, monkeypatch):
    assert aoti_run.ok, aoti_run.error
    version = register(run_id=aoti_run.run_id, name="sam3-aoti-old").version
    here = aoti_core.machine("cpu")
    monkeypatch.setattr(aoti_core, "machine", lambda device: {**here, "torch_version": "2.11.0"})
    with pytest.raises(ServingError, match=r"compiled with torch [\d.]+, this machine has 2.11.0"):
        sam3ops.load(f"models:/sam3-aoti-old/{version}", cache_dir=tmp_path / "cache")
    forced = sam3ops.load(f"models:/sam3-aoti-old/{version}", cache_dir=tmp_path / "cache", force=True)
    assert type(forced.core).__name__ == "AotiCore"
