"""Pulling a version: engines checked against this machine, changed bytes in the store caught, a
pull across server restarts resumed, and a server that is down reported in one line."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import mlflow
import pytest

from sam3ops import tracking
from sam3ops.checkpoint.manifest import Manifest, file_hashes
from sam3ops.errors import EngineMismatchError, IntegrityError, PullError
from sam3ops.registry import download, promote, pull, register
from sam3ops.registry.client import client
from tests.support.cli import run_cli
from tests.support.registry import ENGINE_TAGS, convert_run_of, fake_run, stored
from tests.support.servers import free_port, wait_for_http

pytestmark = pytest.mark.slow


def test_engines_checked_for_gpu_on_promote_and_pull(remote, capsys, tmp_path, monkeypatch):
    server, sources, name = remote
    monkeypatch.setattr(download, "local_engine_env",
                        lambda: {"trt_version": None, "gpu_name": None, "compute_capability": None})
    engine_run = fake_run({tracking.STAGE_TAG: "convert", "parity": "pass", "weights_random": "false",
                           **ENGINE_TAGS}, weights=sources["fp16_dir"])
    version = register(run_id=engine_run, name=name).version
    tags = client().get_model_version(name, version).tags
    assert {k: tags[k] for k in ENGINE_TAGS} == ENGINE_TAGS

    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name)
    assert code == 1 and "built for NVIDIA H100 80GB HBM3: declare the GPU" in err
    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--target-gpu", "NVIDIA A10G")
    assert code == 1 and "built for NVIDIA H100 80GB HBM3, not the target NVIDIA A10G" in err
    code, out, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--target-gpu", "h100")
    assert code == 0, err

    dest = tmp_path / "engine"
    code, _, err = run_cli(capsys, "pull", "--name", name, "--dest", str(dest))
    assert code == 1 and "the engine needs TensorRT 10.9.0.34" in err and "this machine has no CUDA GPU" in err
    assert not dest.exists()
    code, out, err = run_cli(capsys, "pull", "--name", name, "--dest", str(dest), "--force")
    assert code == 0 and "warning: --force: the engine was built for NVIDIA H100" in err
    assert json.loads((dest / "MODEL_INFO.json").read_text())["gpu_name"] == ENGINE_TAGS["gpu_name"]

    with pytest.raises(EngineMismatchError):
        pull(dest=tmp_path / "other", name=name, alias="production")
    here = {"trt_version": "10.9.0.34", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert download.engine_mismatches(tags, here) == []
    assert "TensorRT 10.9.0.34, this machine has 10.3.0" in download.engine_mismatches(
        tags, {**here, "trt_version": "10.3.0"})[0]


def test_changed_bytes_in_the_store_are_caught(remote, capsys, tmp_path):
    server, sources, name = remote
    # A model of its own: the bytes changed below would otherwise be those of every version of sources["fp16"].
    version = register(run_id=convert_run_of(sources["fp16_dir"]), name=name).version
    promote(version=version, name=name, allow_random=True)
    mv = client().get_model_version(name, version)
    weights = stored(server, mv, "model.safetensors")
    flipped = bytearray(weights.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # same size: only the hash can tell
    weights.write_bytes(bytes(flipped))
    dest = tmp_path / "d"
    code, _, err = run_cli(capsys, "pull", "--name", name, "--dest", str(dest))
    assert code == 1 and "model.safetensors: sha256 differs from the manifest" in err
    assert not dest.exists() and not list(tmp_path.glob(".d.*"))
    with pytest.raises(Exception, match="weights folder does not match its manifest"):  # serving refuses it too
        mlflow.pyfunc.load_model(f"models:/{name}@production")

    # A forger who also rewrites manifest.json is caught by the manifest_sha256 tag.
    manifest_path = stored(server, mv, "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["path"] == "model.safetensors":
            entry["sha256"] = file_hashes(weights)[0]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="manifest.json differs from the one recorded"):
        pull(dest=dest, name=name, alias="production")
    assert not dest.exists()
    with pytest.raises(Exception, match="manifest.json differs from the one recorded"):
        mlflow.pyfunc.load_model(f"models:/{name}@production")


def test_pull_across_server_restarts_resumes_and_never_leaves_partial_dest(remote, tmp_path):
    server, sources, name = remote
    version = register(run_id=sources["fp16"], name=name).version
    dest = tmp_path / "dest"
    seen = {"bytes": 0}

    def kill_midway(n):  # the server dies 1.5 MB into the pull (inside model.safetensors)
        seen["bytes"] += n
        if seen["bytes"] >= 1_500_000 and server.proc is not None:
            server.stop(9)

    try:
        with pytest.raises(PullError, match="pull interrupted"):
            pull(dest=dest, name=name, version=version, retry_seconds=1, progress=kill_midway)
        assert not dest.exists()
        staging = tmp_path / ".dest.pull"
        assert sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) >= 1_000_000  # kept for the next run
        # Loopback socket buffers may have taken the whole file before the kill: cut it in half, as a
        # process killed mid-file leaves it, so the next pull must resume it with a Range request.
        weights = staging / "model.safetensors"
        if weights.is_file():
            half = weights.read_bytes()[: weights.stat().st_size // 2]
            weights.unlink()
            (staging / "model.safetensors.part").write_bytes(half)
        kept = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file() and not p.name.startswith(".pull"))

        # The server comes back while the next pull is already retrying: it waits, then resumes.
        restarting = threading.Thread(target=server.start, daemon=True)
        restarting.start()
        result = pull(dest=dest, name=name, version=version, retry_seconds=120)
        restarting.join(timeout=120)
    finally:
        if server.proc is None:  # the package's other tests need it back
            server.start()
    total = sum(e.size for e in Manifest.read(dest).files) + (dest / "manifest.json").stat().st_size
    assert result.bytes_fetched == total - kept  # resumed: no byte fetched twice
    assert not Manifest.read(dest).problems(dest) and not staging.exists()
    wait_for_http(f"{server.uri}/health", timeout=60)


def test_pull_from_a_server_that_is_down_is_one_line(capsys, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take minutes
    code, _, err = run_cli(capsys, "pull", "--dest", "d")
    line = err.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"sam3ops: error: cannot pull 'sam3': cannot reach {uri}"), err
    assert "MLFLOW_TRACKING_URI" in line and "Traceback" not in err
    assert not Path("d").exists()


def test_an_earlier_pull_damaged_since_is_pulled_again_whole(remote, tmp_path):
    server, sources, name = remote
    version = register(run_id=sources["fp16"], name=name).version
    dest = tmp_path / "d"
    first = pull(dest=dest, name=name, version=version)
    assert first.bytes_fetched > 0 and not first.up_to_date
    assert pull(dest=dest, name=name, version=version).up_to_date  # intact: only re-verified

    weights = dest / "model.safetensors"
    weights.write_bytes(b"\0" * weights.stat().st_size)  # same size, other bytes
    (dest / "manifest.json").unlink()
    again = pull(dest=dest, name=name, version=version)
    assert not again.up_to_date and again.bytes_fetched >= weights.stat().st_size
    assert not Manifest.read(dest).problems(dest) and not list(tmp_path.glob(".d.*"))
