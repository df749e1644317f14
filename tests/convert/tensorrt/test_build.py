"""`convert --format tensorrt`: refusals that need no GPU, the build logic against a fake of the TensorRT
API (both run everywhere), and GPU tests that build and run tiny engines.

Without CUDA or the tensorrt module the GPU tests skip with the reason; the refusals are tested
on the real environment and, for each branch (no module, module but no GPU), with it simulated.
"""

import json
import logging
import shutil
import sys
import types
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from sam3ops.convert import parity
from sam3ops.convert.onnx.fp16 import convert_graph
from sam3ops.convert.tensorrt import build as tensorrt_build
from sam3ops.convert.tensorrt import readiness as trt_readiness
from sam3ops.convert.tensorrt.readiness import Readiness
from sam3ops.errors import TensorRTBuildError, TensorRTUnavailableError, UsageError
from sam3ops.inference import Segmenter, trt_core
from sam3ops.predict.samples import sample_image
from tests.support.cli import run_cli
from tests.support.fake_tensorrt import FakeTensorRT
from tests.support.registry import logged_weights


def _why_no_tensorrt() -> str | None:
    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU (CUDA is not available)"
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"needs the tensorrt module ({type(exc).__name__}: {exc})"
    return None


NO_TENSORRT = _why_no_tensorrt()
needs_tensorrt = pytest.mark.skipif(NO_TENSORRT is not None, reason=NO_TENSORRT or "")


def _last_run():
    return mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list",
                              order_by=["start_time DESC"])[0]


def _refuse_work(monkeypatch):
    """Fail the test if the stage gets as far as exporting or building."""
    def refuse(*args, **kwargs):
        raise AssertionError("export or build started before TensorRT was checked")

    from sam3ops.convert.onnx import export as onnx_export

    monkeypatch.setattr(onnx_export, "export_onnx", refuse)
    monkeypatch.setattr(tensorrt_build, "build_engines", refuse)


def _assert_failed_cleanly(code, err, tmp_path, fragment):
    lines = err.strip().splitlines()
    assert code == 1 and lines[-1].startswith("sam3ops: error:") and fragment in lines[-1], err
    assert "pip install -e '.[gpu]'" in lines[-1]
    assert not (tmp_path / "eng").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eng")]  # no staging or scratch left
    run = _last_run()
    assert run.info.status == "FAILED" and fragment in run.data.tags["error"]


@pytest.mark.skipif(NO_TENSORRT is None, reason="TensorRT and a GPU are here: the refusal cannot happen")
def test_this_machine_refuses_in_one_line(capsys, monkeypatch, tmp_path, tiny_weights):
    _refuse_work(monkeypatch)
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output", "eng")
    _assert_failed_cleanly(code, err, tmp_path, "TensorRT")


def test_no_tensorrt_module(capsys, monkeypatch, tmp_path, tiny_weights):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` now raises ImportError
    _refuse_work(monkeypatch)
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output", "eng")
    _assert_failed_cleanly(code, err, tmp_path, "TensorRT is not available here (ModuleNotFoundError")


def test_tensorrt_installed_but_no_gpu(capsys, monkeypatch, tmp_path, tiny_weights):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.15.1"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _refuse_work(monkeypatch)
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output", "eng")
    _assert_failed_cleanly(code, err, tmp_path, "TensorRT 10.15.1 is installed but there is no NVIDIA GPU")


@pytest.mark.parametrize("args, fragment", [
    (["--min-batch", "4", "--opt-batch", "2"], "batch profile min/opt/max 4/2/16 is not 1 <= min <= opt <= max"),
    (["--min-batch", "0"], "batch profile min/opt/max 0/8/16"),
    (["--workspace-gb", "0"], "--workspace-gb must be positive"),
    (["--precision", "fp32", "--format", "bf16"], "--format bf16 cannot make precision 'fp32'"),
])
def test_bad_build_options_are_usage_errors(capsys, monkeypatch, tmp_path, tiny_weights, args, fragment):
    _refuse_work(monkeypatch)
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output", "eng",
                           *args)
    assert code == 2 and fragment in err.strip().splitlines()[-1]
    assert _last_run().info.status == "FAILED" and not (tmp_path / "eng").exists()


def _pretend_tensorrt(monkeypatch, **builder_flags):
    fake = types.SimpleNamespace(__version__="11.0.0", BuilderFlag=types.SimpleNamespace(**builder_flags))
    monkeypatch.setattr(trt_core, "require_tensorrt", lambda: fake)
    monkeypatch.setattr(tensorrt_build, "require_tensorrt", lambda: fake)
    return fake


@pytest.mark.slow
def test_readiness_problem_fails_before_the_build(capsys, monkeypatch, tmp_path, tiny_weights):
    """From safetensors: the temporary ONNX export is made, checked, refused, and removed."""
    _pretend_tensorrt(monkeypatch, FP16=1)
    monkeypatch.setattr(tensorrt_build, "build_engines", lambda **kw: pytest.fail("built despite the problem"))
    planted = Readiness(graphs=["vision.onnx"], problems=["vision.onnx: Foo node 'x' is a custom operator (acme)"],
                        unsupported_ops=["acme::Foo"])
    checked = []
    monkeypatch.setattr(trt_readiness, "check_folder", lambda folder: checked.append(folder) or planted)
    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output", "eng")
    line = err.strip().splitlines()[-1]
    assert code == 1 and "the ONNX graphs are not ready for TensorRT: 1 problem(s), first: vision.onnx: Foo" in line
    assert "trt_readiness.json" in line
    run = _last_run()
    assert run.info.status == "FAILED" and run.data.tags["trt_ready"] == "false"
    assert run.data.metrics["trt_unsupported_ops"] == 1
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/trt_readiness.json")["problems"] == planted.problems
    assert checked[0].parent.name.startswith(".eng.onnx-")  # the graphs came from a scratch export ...
    assert not checked[0].exists() and not [p for p in tmp_path.iterdir() if "eng" in p.name]  # ... now removed


def test_build_refuses_what_the_graphs_or_tensorrt_cannot_do(monkeypatch, tmp_path, tiny_onnx):
    _pretend_tensorrt(monkeypatch)  # a TensorRT without FP16/BF16 builder flags, like TensorRT 11
    with pytest.raises(UsageError, match="has no bf16 builder flag"):
        tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", precision="bf16")
    half = tmp_path / "half"
    shutil.copytree(tiny_onnx, half)
    convert_graph(half / "vision.onnx")
    with pytest.raises(UsageError, match="holds float16 graphs: they make fp16 engines only"):
        tensorrt_build.build_engines(source_onnx_dir=half, output=tmp_path / "eng", precision="fp32")
    assert not (tmp_path / "eng").exists()


def test_engine_folder_needs_a_gpu(tmp_path, tiny_weights):
    folder = tmp_path / "engines"
    folder.mkdir()
    for path in tiny_weights.iterdir():
        if path.suffix in (".json", ".txt"):
            shutil.copy(path, folder / path.name)
    for name in trt_core.ENGINES:
        (folder / name).write_bytes(b"not really an engine")
    with pytest.raises(UsageError, match="TensorRT engines run on an NVIDIA GPU, not on 'cpu'"):
        Segmenter.from_dir(folder, device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            Segmenter.from_dir(folder, device="cuda")


def test_require_tensorrt_names_the_missing_piece(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(TensorRTUnavailableError) as info:
        trt_core.require_tensorrt()
    assert "pip install -e '.[gpu]'" in info.value.one_line()


# --- on a GPU with TensorRT -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def engines(tiny_onnx, tmp_path_factory):
    """Tiny fp16 engines at batch profile 1/2/4, with a timing cache."""
    folder = tmp_path_factory.mktemp("trt")
    cache = folder / "timing.cache"
    build = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=folder / "eng", precision="fp16",
                                         batch=(1, 2, 4), workspace_gb=2, timing_cache=cache)
    return build, cache


@pytest.mark.gpu
@needs_tensorrt
def test_engines_and_sidecars(engines):
    build, cache = engines
    assert [p.name for p in build.engines] == ["vision.engine", "text.engine", "decoder.engine"]
    for engine in build.engines:
        data = json.loads(engine.with_name(engine.name + ".json").read_text())
        assert data["precision"] == "fp16" and data["tensorrt_version"]
        assert data["gpu_name"] == torch.cuda.get_device_name()
        assert data["compute_capability"] == "{}.{}".format(*torch.cuda.get_device_capability())
        assert data["build_seconds"] > 0 and data["torch_cuda_version"] == torch.version.cuda
        assert data["tf32"] is True and "cuda_version" in data
        for shapes in data["profiles"].values():
            assert [shapes["min"][0], shapes["opt"][0], shapes["max"][0]] == [1, 2, 4]
    assert (build.output / "manifest.json").is_file() and (build.output / "tokenizer.json").is_file()
    assert cache.is_file() and cache.stat().st_size > 0


@pytest.mark.gpu
@needs_tensorrt
@pytest.mark.parametrize("batch", [1, 3, 5])  # 5 is over the profile's 4: run in chunks
def test_segmenter_runs_engines(engines, tiny_weights, batch):
    photos = [sample_image(n) for n in ("astronaut", "chelsea", "coffee", "rocket", "camera")][:batch]
    seg = Segmenter.from_dir(engines[0].output, device="cuda", score_threshold=0.0)
    assert type(seg.core).__name__ == "TrtCore"
    ref = Segmenter.from_dir(tiny_weights, device="cuda", score_threshold=0.0)
    got, want = seg.segment(photos, ["cat", "person"]), ref.segment(photos, ["cat", "person"])
    assert len(got) == batch
    for a, b in zip(got, want):
        assert a.labels == b.labels and np.isfinite(a.scores).all()
        assert np.abs(a.scores - b.scores).max() < 0.02


@pytest.mark.gpu
@needs_tensorrt
def test_parity_gate_passes(engines, tiny_weights):
    report = parity.check(Segmenter.from_dir(tiny_weights, device="cuda"),
                          Segmenter.from_dir(engines[0].output, device="cuda"),
                          [sample_image("astronaut"), sample_image("chelsea")])
    assert report.passed, report.to_json()


@pytest.mark.gpu
@needs_tensorrt
def test_timing_cache_is_reused(engines, tiny_onnx, tmp_path):
    first, cache = engines
    size = cache.stat().st_size
    second = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "again", precision="fp16",
                                          batch=(1, 2, 4), workspace_gb=2, timing_cache=cache)
    # the same graphs and profiles: every timing is a cache hit, so nothing new is added, and it is faster
    assert cache.stat().st_size == size or sum(second.build_seconds.values()) < sum(first.build_seconds.values())


@pytest.mark.gpu
@needs_tensorrt
def test_cli_tensorrt_from_safetensors(capsys, tmp_path, tiny_weights):
    code, out, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "tensorrt", "--output",
                             "eng", "--min-batch", "1", "--opt-batch", "2", "--max-batch", "4", "--workspace-gb", "2",
                             "--timing-cache", str(tmp_path / "tc"))
    assert code == 0, err
    run = _last_run()
    tags, params = run.data.tags, run.data.params
    assert run.info.status == "FINISHED" and tags["parity"] == "pass" and tags["trt_ready"] == "true"
    assert tags["trt_version"] and tags["compute_capability"] and params["max_batch"] == "4"
    assert tags["parity_reference"] == "torch-fp32" and params["precision"] == "fp16"
    listed = logged_weights(run.info.run_id)  # the run's files, in the logged model it made
    assert {"weights/vision.engine", "weights/vision.engine.json", "weights/manifest.json"} <= listed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eng")]


# --- the build's own logic, against a fake of the TensorRT API (no GPU needed) ---------------------

def _with_fake(monkeypatch, fake):
    monkeypatch.setattr(tensorrt_build, "require_tensorrt", lambda: fake)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake H100")


def _cache_entries(fake, path: Path) -> list[str]:
    blob = path.read_bytes()
    assert blob.startswith(fake.cache_header())
    return [e for e in blob[len(fake.cache_header()):].decode().split(";") if e]


def test_build_logic_weakly_typed_fp16(monkeypatch, tmp_path, tiny_onnx):
    fake = FakeTensorRT()
    _with_fake(monkeypatch, fake)
    cache = tmp_path / "cache" / "timing.cache"
    build = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", precision="fp16",
                                         batch=(1, 2, 4), workspace_gb=1.5, timing_cache=cache)
    assert build.typing == "weak" and [p.name for p in build.engines] == ["vision.engine", "text.engine",
                                                                          "decoder.engine"]
    assert ("flag", "FP16") in fake.calls and ("network_flags", 0) in fake.calls
    assert ("pool", "workspace", int(1.5 * 2**30)) in fake.calls
    # one timing cache threaded through the three builds, then saved
    assert [len(c[1]) > 0 for c in fake.calls if c[0] == "cache_in"] == [False, True, True]
    assert _cache_entries(fake, cache) == ["vision.onnx", "text.onnx", "decoder.onnx"]
    profiles = next(c[1] for c in fake.calls if c[0] == "profile" and "pixel_values" in c[1])
    assert profiles["pixel_values"] == ((1, 3, 224, 224), (2, 3, 224, 224), (4, 3, 224, 224))
    side = json.loads((tmp_path / "eng" / "text.engine.json").read_text())
    assert side["profiles"]["input_ids"] == {"min": [1, 32], "opt": [2, 32], "max": [4, 32]}
    assert side["gpu_name"] == "Fake H100" and side["compute_capability"] == "9.0" and side["precision"] == "fp16"
    assert side["tensorrt_version"] == "10.15.1" and side["typing"] == "weak" and side["timing_cache"] == str(cache)
    assert side["tf32"] is True  # left on for the layers TensorRT keeps in fp32, and recorded
    assert {"manifest.json", "config.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "eng").iterdir()}
    again = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", precision="fp32",
                                         batch=(1, 2, 4), timing_cache=cache, overwrite=True)
    assert again.typing == "weak" and _cache_entries(fake, cache) == ["vision.onnx", "text.onnx", "decoder.onnx"] * 2


def test_fp32_engines_are_built_without_tf32(monkeypatch, tmp_path, tiny_onnx):
    fake = FakeTensorRT()
    _with_fake(monkeypatch, fake)
    build = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", precision="fp32")
    built = [c for c in fake.calls if c[0] == "built"]
    assert len(built) == 3 and all(flags == [] for _, _, flags in built)  # no TF32, no FP16
    assert ("clear_flag", "TF32") in fake.calls and build.sidecar["tf32"] is False


def test_timing_cache_of_another_tensorrt_is_replaced(monkeypatch, tmp_path, tiny_onnx, caplog):
    old = FakeTensorRT(version="10.0.1")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(old.cache_header() + b"vision.onnx;")
    fake = FakeTensorRT()  # 10.15.1: create_timing_cache returns None for 10.0.1's cache
    _with_fake(monkeypatch, fake)
    with caplog.at_level(logging.WARNING):
        tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", timing_cache=cache)
    assert any("timing cache file was not made by this TensorRT version" in r.message for r in caplog.records)
    assert _cache_entries(fake, cache) == ["vision.onnx", "text.onnx", "decoder.onnx"]  # this version's now


@pytest.mark.parametrize("fail, fragment", [
    ("parse", "TensorRT 10.15.1 cannot parse vision.onnx: In node 0 (parseGraph): INVALID_NODE"),
    ("build", "TensorRT could not build vision.onnx (fp16, batch 1/8/16)"),
])
def test_a_failed_parse_or_build_leaves_nothing(monkeypatch, tmp_path, tiny_onnx, fail, fragment):
    _with_fake(monkeypatch, FakeTensorRT(fail={fail}))
    with pytest.raises(TensorRTBuildError) as info:
        tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng")
    assert fragment in info.value.one_line()
    assert not [p for p in tmp_path.iterdir() if "eng" in p.name]


def _dist(site: Path, name: str, version: str, *requires: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
             *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_sidecar_records_the_cuda_of_tensorrt_not_torch(monkeypatch, tmp_path, tiny_onnx):
    site = tmp_path / "site"
    _dist(site, "tensorrt-cu12-libs", "10.15.1.29", "nvidia-cuda-runtime-cu12")
    _dist(site, "nvidia-cuda-runtime-cu12", "12.9.79")
    monkeypatch.syspath_prepend(str(site))
    _with_fake(monkeypatch, FakeTensorRT())
    build = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng")
    side = build.sidecar
    assert side["cuda_version"] == "12.9" and side["torch_cuda_version"] == torch.version.cuda
    assert side["cuda_version_source"] == ("tensorrt-cu12-libs 10.15.1.29 requires "
                                           "nvidia-cuda-runtime-cu12 12.9.79")


def test_sidecar_says_when_tensorrt_cuda_is_unknown():
    from sam3ops.convert.tensorrt.sidecar import tensorrt_cuda

    version, source = tensorrt_cuda()  # no TensorRT wheel in this environment
    assert version is None and "TensorRT's CUDA version is unknown" in source


def test_build_logic_without_fp16_flag_uses_float16_graphs(monkeypatch, tmp_path, tiny_onnx):
    fake = FakeTensorRT(flags=(), version="11.0.0")  # TensorRT 11: strongly typed only
    _with_fake(monkeypatch, fake)
    build = tensorrt_build.build_engines(source_onnx_dir=tiny_onnx, output=tmp_path / "eng", precision="fp16")
    assert build.typing == "strong" and ("network_flags", 2) in fake.calls
    assert not [c for c in fake.calls if c[0] == "flag"]
    assert all(fp16 for _, fp16 in fake.parsed) and len(fake.parsed) == 3  # parsed the float16 copies ...
    assert not fake.parsed[0][0].exists()  # ... made in a scratch folder that is gone
    assert sorted(p.name for p in (tmp_path / "eng").iterdir() if "onnx" in p.name) == []
