"""AOTInductor packages of the tiny preset: the stage's run, the sidecar, parity with torch per part
(inside the batch range and over it), a run without the model's Python code, and bad input."""

import json
import shutil
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch

from sam3ops.checkpoint.layout import AOTI_PACKAGES, AOTI_SIDECAR
from sam3ops.convert.aoti.build import build_packages
from sam3ops.errors import ServingError, UsageError, WeightsError
from sam3ops.inference import Segmenter, TorchCore
from sam3ops.inference.aoti_core import AotiCore, torch_release
from sam3ops.predict.samples import sample_image
from tests.conftest import subprocess_env
from tests.support.cli import run_cli


@pytest.fixture(scope="module")
def aoti_dir(tiny_aoti):
    return tiny_aoti[0]


def test_stage_run_is_tagged_and_gated(tiny_aoti):
    folder, run_id, uri, result = tiny_aoti
    run = mlflow.MlflowClient(uri).get_run(run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert run.info.status == "FINISHED", tags.get("error")
    assert tags["format"] == "aoti" and tags["precision"] == "fp32" and tags["parity"] == "pass"
    assert tags["torch_version"] == torch_release() and tags["aoti_device"] == "cpu" and tags["cpu_isa"]
    assert params["min_batch"] == "1" and params["max_batch"] == "4" and "opt_batch" not in params
    assert all(metrics[f"compile_s_{part}"] > 0 for part in ("vision", "text", "decoder"))
    assert metrics["parity_instances"] > 0 and result.ok
    assert all((folder / name).is_file() for name in (*AOTI_PACKAGES, AOTI_SIDECAR, "manifest.json", "tokenizer.json"))
    assert not any(folder.parent.glob(".tiny-aoti.*")), "a staging folder was left behind"


def test_stage_run_passes_the_gate_and_logs_the_packages(tiny_aoti):
    folder, run_id, uri, result = tiny_aoti
    assert result.ok and mlflow.MlflowClient(uri).get_run(run_id).data.metrics["parity_mask_iou"] >= 0.98
    client = mlflow.MlflowClient(uri)
    model_id = client.get_run(run_id).data.tags["model_id"]  # the files are the run's logged model
    listed = {a.path for a in client.list_logged_model_artifacts(model_id, "artifacts/weights")}
    assert {f"artifacts/weights/{name}" for name in (*AOTI_PACKAGES, AOTI_SIDECAR, "manifest.json")} <= listed


def test_sidecar_records_what_the_packages_are_tied_to(aoti_dir):
    sidecar = json.loads((aoti_dir / AOTI_SIDECAR).read_text())
    assert sidecar["torch_version"] == torch_release() and sidecar["device"] == "cpu"
    assert sidecar["cpu_isa"] and sidecar["gpu_name"] is None
    assert (sidecar["min_batch"], sidecar["max_batch"], sidecar["precision"]) == (1, 4, "fp32")
    assert set(sidecar["compile_seconds"]) == set(AOTI_PACKAGES)
    # The decoder reads the vision encoder's feature maps as that encoder lays them out (channels-last).
    assert sidecar["input_layouts"]["decoder.pt2"] == ["channels_last"] * 6 + ["contiguous"] * 2
    assert sidecar["input_layouts"]["text.pt2"] == ["contiguous"] * 2
    manifest = json.loads((aoti_dir / "manifest.json").read_text())
    assert {name for name in AOTI_PACKAGES} <= {entry["path"] for entry in manifest["files"]}


def _cores_and_inputs(aoti_dir, tiny_weights, batch):
    from transformers import Sam3Model, Sam3Processor

    torch_core, aoti_core = TorchCore(Sam3Model.from_pretrained(tiny_weights)), AotiCore(aoti_dir)
    processor = Sam3Processor.from_pretrained(tiny_weights)
    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "astronaut"][:batch]
    pixels = processor.image_processor(images=[sample_image(n) for n in names], return_tensors="pt").pixel_values
    prompts = ["person", "cat", "white mug on a table", "motorbike", "rocket", "camera"][:batch]
    text = processor.tokenizer(prompts, padding="max_length", max_length=32, return_tensors="pt")
    return torch_core, aoti_core, pixels, text


@pytest.mark.parametrize("batch", [1, 3, 6])
def test_text_package_matches_torch(aoti_dir, tiny_weights, batch):
    """Every prompt's features, not only the first's: the package returns one tensor, not a tuple."""
    torch_core, aoti_core, _, text = _cores_and_inputs(aoti_dir, tiny_weights, batch)
    got = aoti_core.encode_text(text.input_ids, text.attention_mask)
    assert got.shape == (batch, 32, 32)
    torch.testing.assert_close(got, torch_core.encode_text(text.input_ids, text.attention_mask), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3, 6])  # 6: over the compiled maximum of 4, run in chunks
def test_vision_and_decoder_packages_match_torch(aoti_dir, tiny_weights, batch, caplog):
    torch_core, aoti_core, pixels, text = _cores_and_inputs(aoti_dir, tiny_weights, batch)
    vision = torch_core.encode_image(pixels)
    for a, b in zip(vision, aoti_core.encode_image(pixels)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    features = torch_core.encode_text(text.input_ids, text.attention_mask)
    expected = torch_core.decode(vision, features, text.attention_mask)
    got = aoti_core.decode(vision, features, text.attention_mask)
    for name in ("pred_boxes", "pred_logits", "presence_logits"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=1e-3, atol=1e-3)
    assert ("in chunks" in caplog.text) == (batch > 4)


@pytest.mark.parametrize("layout", ["encoder", "contiguous"])
def test_decoder_package_masks_match_torch(aoti_dir, tiny_weights, layout):
    """Masks too, from the encoder's channels-last features or from contiguous copies of them: the
    package reads its example's strides unchecked, so the core hands each input over in them."""
    torch_core, aoti_core, pixels, text = _cores_and_inputs(aoti_dir, tiny_weights, 3)
    vision = torch_core.encode_image(pixels)
    features = torch_core.encode_text(text.input_ids, text.attention_mask)
    expected = torch_core.decode(vision, features, text.attention_mask)
    given = vision if layout == "encoder" else type(vision)(*(t.contiguous() for t in vision))
    got = aoti_core.decode(given, features, text.attention_mask)
    # Random weights make tiny mask logits (|x| < 2e-3 here): an absolute bound far below them.
    for name in ("pred_masks", "semantic_seg"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=1e-4, atol=1e-6)


def test_segmenter_runs_the_aoti_folder(aoti_dir, tiny_weights):
    photo = sample_image("chelsea")
    reference = Segmenter.from_dir(tiny_weights, score_threshold=0.0).segment([photo], ["cat", "person"])[0]
    compiled = Segmenter.from_dir(aoti_dir, score_threshold=0.0)
    assert type(compiled.core).__name__ == "AotiCore"
    result = compiled.segment([photo], ["cat", "person"])[0]
    assert np.abs(reference.scores - result.scores).max() < 1e-4 and (reference.masks == result.masks).mean() > 0.999


@pytest.mark.slow
def test_packages_run_without_the_models_python_code(aoti_dir):
    """A backend process where transformers cannot even be imported loads and runs the three packages."""
    script = f"""
import sys
sys.modules["transformers"] = None  # any import of it now fails
import torch
from torch._inductor import aoti_load_package
folder = {str(aoti_dir)!r}
vision = aoti_load_package(folder + "/vision.pt2")(torch.rand(2, 3, 224, 224))
ids = torch.full((2, 32), 49407); ids[:, 0] = 49406
mask = torch.zeros(2, 32, dtype=torch.long); mask[:, :2] = 1
text = aoti_load_package(folder + "/text.pt2")(ids, mask)  # one tensor: the exported module's output
out = aoti_load_package(folder + "/decoder.pt2")(*vision, text, mask)
assert "transformers.models.sam3" not in sys.modules
print(tuple(text.shape), [tuple(t.shape) for t in out], all(bool(torch.isfinite(t).all()) for t in out))
"""
    done = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("True") and "(2, 20, 4)" in done.stdout
    assert done.stdout.startswith("(2, 32, 32)"), done.stdout


def _copy_with(aoti_dir, tmp_path, **sidecar):
    copy = shutil.copytree(aoti_dir, tmp_path / "copy")
    data = json.loads((copy / AOTI_SIDECAR).read_text())
    (copy / AOTI_SIDECAR).write_text(json.dumps({**data, **sidecar}))
    return copy


def test_another_torch_release_is_refused_unless_forced(aoti_dir, tmp_path, caplog):
    copy = _copy_with(aoti_dir, tmp_path, torch_version="2.11.0")
    with pytest.raises(ServingError, match=f"compiled with torch 2.11.0, this machine has {torch_release()}"):
        Segmenter.from_dir(copy)
    assert type(Segmenter.from_dir(copy, force=True).core).__name__ == "AotiCore"
    assert "running" in caplog.text and "forced" in caplog.text


def test_packages_for_another_device_type_are_refused(aoti_dir, tmp_path):
    copy = _copy_with(aoti_dir, tmp_path, device="cuda", gpu_name="NVIDIA H200", compute_capability="9.0")
    with pytest.raises(UsageError, match="compiled for cuda, not cpu"):
        AotiCore(copy, device="cpu", force=True)  # force cannot make CUDA kernels run on a CPU
    (copy / AOTI_SIDECAR).unlink()
    with pytest.raises(WeightsError, match="no readable aoti.json"):
        AotiCore(copy)


def test_mismatches_name_gpu_and_instruction_set():
    from sam3ops.inference.aoti_core import mismatches

    here_gpu = {"torch_version": "2.14.1", "device": "cuda", "gpu_name": "NVIDIA H100", "compute_capability": "9.0",
                "cpu_isa": None}
    built = {"torch_version": "2.14.1+cu130", "device": "cuda", "gpu_name": "NVIDIA A100", "compute_capability": "8.0"}
    assert mismatches({**built, "compute_capability": "9.0"}, here_gpu) == []
    assert mismatches(built, here_gpu) == ["the packages were compiled for NVIDIA A100 (compute 8.0), this machine "
                                           "has NVIDIA H100 (compute 9.0)"]
    here_cpu = {**here_gpu, "device": "cpu", "gpu_name": None, "compute_capability": None, "cpu_isa": "avx2"}
    assert mismatches({"torch_version": "2.14.1", "device": "cpu", "cpu_isa": "avx2"}, here_cpu) == []
    assert mismatches({"torch_version": "2.11.0", "device": "cpu", "cpu_isa": "avx512"}, here_cpu) == [
        "the packages were compiled with torch 2.11.0, this machine has 2.14.1",
        "the packages were compiled for CPUs with avx512, this machine's best is avx2"]


def test_bad_input_fails_before_compiling(aoti_dir, tiny_weights, tmp_path):
    with pytest.raises(WeightsError, match="holds no safetensors weights to compile"):
        build_packages(source=aoti_dir, output=tmp_path / "out")
    with pytest.raises(UsageError, match="batch range 4-2 is not 1 <= min <= max"):
        build_packages(source=tiny_weights, output=tmp_path / "out", batch=(4, 2))
    with pytest.raises(UsageError, match="do not do precision 'int8'"):
        build_packages(source=tiny_weights, output=tmp_path / "out", precision="int8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    with pytest.raises(UsageError, match="is not empty"):
        build_packages(source=tiny_weights, output=tmp_path / "full")
    assert not (tmp_path / "out").exists()


def _refused(capsys, tmp_path, tiny_weights, argv, line):
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "aoti",
                           "--output", "out", *argv)
    assert code == 2 and line in err.strip().splitlines()[-1], err  # 2: a usage error
    run = mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")[0]
    assert run.info.status == "FAILED" and line in run.data.tags["error"]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_cli_refuses_a_bad_batch_range_in_one_line(capsys, tmp_path, tiny_weights):
    _refused(capsys, tmp_path, tiny_weights, ["--min-batch", "0"], "batch range 0-16 is not 1 <= min <= max")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_refuses_cuda_without_a_gpu_in_one_line(capsys, tmp_path, tiny_weights):
    _refused(capsys, tmp_path, tiny_weights, ["--precision", "bf16", "--device", "cuda"], "CUDA is not available")
