"""The model registry over HTTP: register, promote, rollback, pull, load and serve, against a real
``mlflow server`` on sqlite and on PostgreSQL (artifacts through the server's proxy), plus the
embedded sqlite store and the MLproject entry points."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests

from sam3ops import tracking
from sam3ops.checkpoint.manifest import Manifest, file_hashes
from sam3ops.errors import EngineMismatchError, IntegrityError, PromotionRefusedError, PullError
from sam3ops.registry import download as pull_lib
from sam3ops.registry import promotion
from sam3ops.registry import registration as registry
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.servers import free_port, start_mlflow_server, stop_process_group, wait_for_http

pytestmark = pytest.mark.slow

ENGINE_TAGS = {"format": "tensorrt", "precision": "fp16", "gpu_name": "NVIDIA H100 80GB HBM3",
               "compute_capability": "9.0", "trt_version": "10.9.0.34"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """A real mlflow server for the module (sqlite, then PostgreSQL behind it)."""
    started = start_mlflow_server(request.param, tmp_path_factory.mktemp(f"server-{request.param}"), request)
    started.kind = request.param
    yield started
    started.stop()


@pytest.fixture(scope="module")
def sources(server, tiny_weights, tmp_path_factory):
    """Registrable runs on ``server``: an init run (source checkpoint) and a real fp16 convert run."""
    from sam3ops.convert.stage import convert_stage
    from sam3ops.weights.stage import init_stage

    folder = tmp_path_factory.mktemp("sources")
    shutil.copytree(tiny_weights, folder / "tiny")  # init verifies and reuses it: a run without the build
    with pytest.MonkeyPatch.context() as patch:
        _point_at(patch, server.uri)
        _, init_run = init_stage(preset="tiny", output=str(folder / "tiny"), seed=0)
        # One photo and one prompt keep the parity gate short; test_convert_stage covers the gate.
        _, convert_run = convert_stage(input_dir=str(folder / "tiny"), format="fp16", output=str(folder / "w16"),
                                       parity_images=["astronaut"], parity_prompts=["person"])
    return {"init": init_run, "fp16": convert_run, "fp16_dir": folder / "w16", "tiny_dir": folder / "tiny"}


def _point_at(patch, uri: str) -> None:
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


@pytest.fixture
def remote(server, sources, isolated, monkeypatch):
    """This test talks to ``server``; returns (server, sources, a model name of its own)."""
    _point_at(monkeypatch, server.uri)
    return server, sources, f"sam3-{uuid.uuid4().hex[:8]}"


def _fake_run(tags: dict, *, status: str = "FINISHED", weights: Path | None = None,
              experiment: str = "sam3-convert") -> str:
    """A run with the tags (and ``weights/`` artifacts) a stage would leave, made directly."""
    client = registry.client()
    run = client.create_run(tracking.ensure_experiment(experiment), tags=tags)
    if weights is not None:
        client.log_artifacts(run.info.run_id, str(weights), "weights")
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def _image_bytes(name: str = "astronaut") -> bytes:
    from sam3ops.predict.samples import sample_image

    buffer = io.BytesIO()
    sample_image(name).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode_masks(prediction: dict) -> np.ndarray:
    from pycocotools import mask as coco_mask

    return np.stack([coco_mask.decode({"size": m["size"], "counts": m["counts"].encode()})
                     for m in prediction["masks"]])


def _stored(server, version, rel: str) -> Path:
    """The file ``rel`` of a version's weights, in the server's artifact folder."""
    model_id = version.source.removeprefix("models:/")
    found = list(server.artifacts.rglob(f"{model_id}/artifacts/artifacts/weights/{rel}"))
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------------------- the whole flow

def test_register_promote_pull_rollback(remote, capsys, tmp_path):
    server, sources, name = remote
    code, out, err = run_cli(capsys, "register", "--run-id", sources["fp16"], "--name", name)
    assert code == 0, err
    assert f"-> {name} version 1 (fp16, precision fp16, parity pass, RANDOM weights)" in out
    code, out, _ = run_cli(capsys, "register", "--run-id", sources["fp16"], "--name", name)
    assert code == 0 and f"is already {name} version 1" in out
    code, out, err = run_cli(capsys, "register", "--run-id", sources["init"], "--name", name)
    assert code == 0 and f"{name} version 2 (fp32, precision fp32, parity reference" in out, err

    client = registry.client()
    v1 = client.get_model_version(name, "1")
    manifest = Manifest.read(sources["fp16_dir"])
    assert {k: v1.tags[k] for k in ("format", "precision", "parity", "weights_random", "weights_commit")} == {
        "format": "fp16", "precision": "fp16", "parity": "pass", "weights_random": "true",
        "weights_commit": manifest.commit}
    assert v1.tags["source_run_id"] == sources["fp16"]
    assert v1.tags["manifest_sha256"] == file_hashes(sources["fp16_dir"] / "manifest.json")[0]
    register_run = mlflow.get_run(v1.run_id)
    assert register_run.data.tags[tracking.STAGE_TAG] == "register" and register_run.info.status == "FINISHED"

    code, _, err = run_cli(capsys, "promote", "--version", "1", "--name", name)
    assert code == 1 and "RANDOM weights" in err and "--allow-random" in err
    code, out, err = run_cli(capsys, "promote", "--version", "1", "--name", name, "--allow-random",
                             "--reason", "first cut")
    assert code == 0 and f"{name}@production -> version 1 (promote; was unset)" in out, err
    code, out, _ = run_cli(capsys, "promote", "--version", "2", "--name", name, "--allow-random", "true",
                           "--reason", "fp32 is safer")
    assert code == 0 and f"was 1, now {name}@previous-production" in out
    model = client.get_registered_model(name)
    assert model.aliases == {"production": "2", "previous-production": "1"}
    v2 = client.get_model_version(name, "2")
    assert v2.tags["promote_reason"] == "fp32 is safer" and v2.tags["promoted_to"] == "production"
    assert "@" in v2.tags["promoted_by"] and v2.tags["promoted_at"].startswith("20")

    dest = tmp_path / "models" / "sam3"
    code, out, err = run_cli(capsys, "pull", "--alias", "production", "--name", name, "--dest", str(dest))
    assert code == 0 and f"{name} version 2 (fp32, fp32) -> {dest}" in out and "sha256 verified" in out, err
    info = json.loads((dest / "MODEL_INFO.json").read_text())
    assert (info["name"], info["version"], info["alias"], info["format"], info["precision"]) == (
        name, "2", "production", "fp32", "fp32")
    source = Manifest.read(sources["tiny_dir"])
    assert {e.path: e.sha256 for e in source.files}.items() <= info["files"].items()
    assert not Manifest.read(dest).problems(dest)
    assert not list(dest.parent.glob(".sam3.*"))  # no staging left behind
    code, out, _ = run_cli(capsys, "pull", "--name", name, "--dest", str(dest))
    assert code == 0 and "already holds" in out

    code, out, err = run_cli(capsys, "rollback", "--name", name, "--reason", "fp32 too slow")
    assert code == 0 and f"{name}@production -> version 1 (rollback; was 2" in out, err
    assert client.get_registered_model(name).aliases == {"production": "1", "previous-production": "2"}
    code, out, _ = run_cli(capsys, "pull", "--alias", "production", "--name", name, "--dest", str(dest))
    assert code == 0 and "version 1 (fp16, fp16)" in out
    assert json.loads((dest / "MODEL_INFO.json").read_text())["version"] == "1"
    assert not Manifest.read(dest).problems(dest) and (dest / "model.safetensors").is_file()

    actions = [(r["action"], r["version"], r["previous"], r["reason"]) for r in promotion.history(name)]
    assert actions == [("promote", "1", None, "first cut"), ("promote", "2", "1", "fp32 is safer"),
                       ("rollback", "1", "2", "fp32 too slow")]
    promote_runs = mlflow.search_runs(experiment_names=["sam3-promote"], output_format="list",
                                      filter_string=f"tags.registered_model = '{name}'")
    assert sorted(r.info.status for r in promote_runs) == ["FAILED"] + ["FINISHED"] * 3  # the refusal is recorded
    code, out, _ = run_cli(capsys, "versions", "--name", name)
    assert code == 0 and "production" in out.splitlines()[1] and "previous-production" in out.splitlines()[0]


def test_pyfunc_and_load(remote):
    server, sources, name = remote
    version = registry.register(run_id=sources["fp16"], name=name).version
    promotion.promote(version=version, name=name, allow_random=True)

    model = mlflow.pyfunc.load_model(f"models:/{name}@production")
    image = _image_bytes()
    [prediction] = model.predict({"image": image, "prompts": ["person", "cup"]}, params={"score_threshold": 0.0})
    assert (prediction["height"], prediction["width"]) == (512, 512)
    n = len(prediction["labels"])
    assert n > 0 and len(prediction["scores"]) == len(prediction["boxes"]) == len(prediction["masks"]) == n
    assert set(prediction["labels"]) <= {"person", "cup"} and all(len(b) == 4 for b in prediction["boxes"])
    assert _decode_masks(prediction).shape == (n, 512, 512)
    # base64 text is taken too, and the default threshold keeps fewer instances
    [b64] = model.predict({"image": base64.b64encode(image).decode(), "prompts": ["person", "cup"]})
    assert len(b64["labels"]) <= n

    segmenter = registry.load(f"models:/{name}@production", cache_dir=Path("cache"), score_threshold=0.0)
    assert type(segmenter.core).__name__ == "TorchCore"
    from sam3ops.predict.samples import sample_image

    [result] = segmenter.segment([sample_image("astronaut")], ["person", "cup"])
    assert len(result.labels) == n
    assert json.loads((Path("cache") / name / version / "MODEL_INFO.json").read_text())["alias"] == "production"
    import sam3ops

    assert type(sam3ops.load(f"models:/{name}/{version}", cache_dir=Path("cache")).core).__name__ == "TorchCore"


def test_serve_answers_invocations(remote, tmp_path):
    server, sources, name = remote
    version = registry.register(run_id=sources["fp16"], name=name).version
    promotion.promote(version=version, name=name, allow_random=True)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            ["mlflow", "models", "serve", "-m", f"models:/{name}@production", "--env-manager", "local",
             "--host", "127.0.0.1", "-p", str(port)],
            env=subprocess_env(MLFLOW_TRACKING_URI=server.uri), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=180, proc=proc, log=log)
        body = {"dataframe_records": [{"image": base64.b64encode(_image_bytes()).decode(), "prompts": ["person"]},
                                      {"image": base64.b64encode(_image_bytes("chelsea")).decode(),
                                       "prompts": ["cat", "cup"]}],
                "params": {"score_threshold": 0.0}}
        response = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=120)
        assert response.status_code == 200, response.text[:2000]
        first, second = response.json()["predictions"]
        assert first["prompts"] == ["person"] and second["prompts"] == ["cat", "cup"]
        assert len(first["masks"]) > 0 and _decode_masks(first).shape[1:] == (first["height"], first["width"])
        bad = requests.post(f"http://127.0.0.1:{port}/invocations",
                            json={"dataframe_records": [{"image": "bm90IGFuIGltYWdl", "prompts": ["cat"]}]},
                            timeout=60)
        assert bad.status_code >= 400 and "neither image bytes nor base64" in bad.text
    finally:
        stop_process_group(proc)


# ------------------------------------------------------------------------------------- races

def test_racing_promotions_leave_one_holder_and_both_records(remote):
    server, sources, name = remote
    first = registry.register(run_id=sources["fp16"], name=name).version
    second = registry.register(run_id=sources["init"], name=name).version
    barrier, results, errors = threading.Barrier(2), {}, []

    def promote(version):
        try:
            barrier.wait()
            results[version] = promotion.promote(version=version, name=name, allow_random=True,
                                                 reason=f"race {version}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    aliases = registry.client().get_registered_model(name).aliases
    holder = aliases["production"]
    loser = first if holder == second else second
    assert holder in (first, second) and aliases["previous-production"] == loser
    # The lock serialised them: the later promotion saw the earlier one as the holder it replaced.
    assert results[holder].previous == loser and results[loser].previous is None
    assert sorted(r["version"] for r in promotion.history(name)) == sorted([first, second])
    assert not _lock_exists(name)


def _lock_exists(name: str) -> bool:
    return bool(registry.client().search_registered_models(f"name = '{name}{promotion.LOCK_SUFFIX}'"))


def test_promotion_lock_times_out_then_breaks_when_stale(remote, capsys, monkeypatch):
    server, sources, name = remote
    version = registry.register(run_id=sources["fp16"], name=name).version
    client = registry.client()
    client.create_registered_model(f"{name}{promotion.LOCK_SUFFIX}",
                                   tags={"sam3ops.lock": "other", "acquired_at": f"{time.time():.3f}", "holder": "x@y"})
    monkeypatch.setattr(promotion, "LOCK_TIMEOUT_S", 1.0)
    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--allow-random")
    assert code == 1 and "held its lock for over 1 s" in err
    assert "production" not in client.get_registered_model(name).aliases
    client.set_registered_model_tag(f"{name}{promotion.LOCK_SUFFIX}", "acquired_at", f"{time.time() - 600:.3f}")
    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--allow-random")
    assert code == 0, err
    assert client.get_registered_model(name).aliases == {"production": version} and not _lock_exists(name)


# ----------------------------------------------------------------------------------- refusals

def test_refusals_and_unknowns(remote, capsys, tmp_path):
    server, sources, name = remote

    def line(*argv):
        code, _, err = run_cli(capsys, *argv)
        return code, err.strip().splitlines()[-1] if err.strip() else ""

    failed = _fake_run({tracking.STAGE_TAG: "convert", "format": "bf16", "parity": "fail"}, status="FAILED")
    code, err = line("register", "--run-id", failed, "--name", name)
    assert code == 1 and f"run {failed} failed the parity gate" in err and "never registered" in err
    unfinished = _fake_run({tracking.STAGE_TAG: "convert", "format": "fp16", "parity": "pass"}, status="RUNNING")
    code, err = line("register", "--run-id", unfinished, "--name", name)
    assert code == 1 and "ended RUNNING: only a FINISHED run is registered" in err
    other = _fake_run({tracking.STAGE_TAG: "predict"}, experiment="sam3-predict")
    code, err = line("register", "--run-id", other, "--name", name)
    assert code == 1 and "is a predict run: register takes a convert run" in err
    code, err = line("register", "--run-id", "0" * 32, "--name", name)
    assert code == 1 and f"run '{'0' * 32}' not found" in err

    code, err = line("promote", "--version", "1", "--name", name)
    assert code == 1 and f"registered model '{name}' not found" in err and "sam3ops register" in err
    registry.register(run_id=sources["fp16"], name=name)
    for argv, fragment in [
        (["promote", "--version", "7"], f"model '{name}' has no version 7"),
        (["pull", "--alias", "staging", "--dest", "d"], f"model '{name}' has no alias 'staging'"),
        (["pull", "--version", "9", "--dest", "d"], f"model '{name}' has no version 9"),
        (["rollback"], f"model '{name}' has no previous-production version to roll back to"),
        (["promote", "--version", "1", "--alias", "previous-production"], "is kept by promote itself"),
        (["promote", "--version", "1", "--allow-random", "maybe"], "'maybe' is not a valid boolean"),
        (["pull", "--alias", "production", "--version", "1", "--dest", "d"], "give --alias or --version, not both"),
    ]:
        code, err = line(*argv, "--name", name)
        assert code in (1, 2) and fragment in err, (argv, err)
    assert not Path("d").exists()

    promotion.promote(version="1", name=name, allow_random=True)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    code, err = line("pull", "--name", name, "--dest", str(occupied))
    assert code == 2 and "holds files that are not a sam3ops pull" in err
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    code, err = line("pull", "--name", name, "--dest", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err


def test_engines_checked_for_gpu_on_promote_and_pull(remote, capsys, tmp_path, monkeypatch):
    server, sources, name = remote
    monkeypatch.setattr(pull_lib, "local_engine_env",
                        lambda: {"trt_version": None, "gpu_name": None, "compute_capability": None})
    engine_run = _fake_run({tracking.STAGE_TAG: "convert", "parity": "pass", "weights_random": "false",
                            **ENGINE_TAGS}, weights=sources["fp16_dir"])
    version = registry.register(run_id=engine_run, name=name).version
    tags = registry.client().get_model_version(name, version).tags
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
        pull_lib.pull(dest=tmp_path / "other", name=name, alias="production")
    here = {"trt_version": "10.9.0.34", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert pull_lib.engine_mismatches(tags, here) == []
    assert "TensorRT 10.9.0.34, this machine has 10.3.0" in pull_lib.engine_mismatches(
        tags, {**here, "trt_version": "10.3.0"})[0]


# -------------------------------------------------------------------------------- reliability

def test_changed_bytes_in_the_store_are_caught(remote, capsys, tmp_path):
    server, sources, name = remote
    version = registry.register(run_id=sources["fp16"], name=name).version
    promotion.promote(version=version, name=name, allow_random=True)
    mv = registry.client().get_model_version(name, version)
    stored = _stored(server, mv, "model.safetensors")
    original = stored.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF  # same size: only the hash can tell
    stored.write_bytes(bytes(flipped))
    dest = tmp_path / "d"
    code, _, err = run_cli(capsys, "pull", "--name", name, "--dest", str(dest))
    assert code == 1 and "model.safetensors: sha256 differs from the manifest" in err
    assert not dest.exists() and not list(tmp_path.glob(".d.*"))
    with pytest.raises(Exception, match="differ from their manifest"):  # serving refuses it too
        mlflow.pyfunc.load_model(f"models:/{name}@production")

    # A forger who also rewrites manifest.json is caught by the manifest_sha256 tag.
    manifest_path = _stored(server, mv, "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["path"] == "model.safetensors":
            entry["sha256"] = file_hashes(stored)[0]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="differs from the one registered"):
        pull_lib.pull(dest=dest, name=name, alias="production")
    assert not dest.exists()
    with pytest.raises(Exception, match="manifest.json differs from the one registered"):
        mlflow.pyfunc.load_model(f"models:/{name}@production")


def test_pull_across_server_restarts_resumes_and_never_leaves_partial_dest(remote, monkeypatch, tmp_path):
    server, sources, name = remote
    version = registry.register(run_id=sources["fp16"], name=name).version
    dest = tmp_path / "dest"
    seen = {"bytes": 0}

    def kill_midway(n):  # the server dies 1.5 MB into the pull (inside model.safetensors)
        seen["bytes"] += n
        if seen["bytes"] >= 1_500_000 and server.proc is not None:
            server.stop(9)

    with pytest.raises(PullError, match="pull interrupted"):
        pull_lib.pull(dest=dest, name=name, version=version, retry_seconds=1, progress=kill_midway)
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
    result = pull_lib.pull(dest=dest, name=name, version=version, retry_seconds=120)
    restarting.join(timeout=120)
    total = sum(e.size for e in Manifest.read(dest).files) + (dest / "manifest.json").stat().st_size
    assert result.bytes_fetched == total - kept  # resumed: no byte fetched twice
    assert not Manifest.read(dest).problems(dest) and not staging.exists()
    wait_for_http(f"{server.uri}/health", timeout=60)


# ------------------------------------------------------------- embedded store and entry points

def test_embedded_store_and_entry_points(capsys, tmp_path, tiny_weights):
    """No server: the per-test sqlite store (artifacts on local disk); register and promote through
    `mlflow run -e ...`, pull through MLflow's local artifact client."""
    from sam3ops.weights.stage import init_stage

    shutil.copytree(tiny_weights, tmp_path / "tiny")
    _, init_run = init_stage(preset="tiny", output=str(tmp_path / "tiny"), seed=0)
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "register", "--env-manager", "local", "--experiment-name",
         "sam3-register", "-P", f"run_id={init_run}", "-P", "name=emb"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert mlflow.get_run(registry.client().get_model_version("emb", "1").run_id).data.tags[
        "mlflow.project.entryPoint"] == "register"
    code, _, err = run_cli(capsys, "promote", "--version", "1", "--name", "emb", "--allow-random", "true",
                           "--target-gpu", "", "--reason", "demo")  # as the promote entry point passes them
    assert code == 0, err
    client = registry.client()
    assert client.get_registered_model("emb").aliases == {"production": 1}  # the SQL store gives ints, REST strings
    assert client.get_model_version("emb", "1").tags["promote_reason"] == "demo"
    code, out, err = run_cli(capsys, "pull", "--name", "emb", "--dest", "pulled")
    assert code == 0, err
    assert not Manifest.read(Path("pulled")).problems(Path("pulled"))
    # A changed file in the folder the init run wrote is refused at registration, not copied.
    with open(tmp_path / "tiny" / "config.json", "a") as handle:
        handle.write(" ")
    code, _, err = run_cli(capsys, "register", "--run-id", init_run, "--name", "emb2")
    assert code == 1 and "do not match their manifest" in err and "config.json" in err


def test_benchmark_numbers_become_version_tags(tiny_weights):
    """The newest finished benchmark run that names the artifact lends its numbers (largest batch)."""
    convert_run = _fake_run({tracking.STAGE_TAG: "convert", "format": "fp16", "precision": "fp16", "parity": "pass",
                             "weights_random": "true"}, weights=tiny_weights)
    client = registry.client()
    benchmark = tracking.ensure_experiment("sam3-benchmark")
    for age, (tags, params) in enumerate([({"source_run_id": convert_run}, {}),  # newest: wins
                                          ({}, {"weights": f"runs:/{convert_run}/weights"}),
                                          ({}, {"weights": "weights/other"})]):
        run = client.create_run(benchmark, tags={tracking.STAGE_TAG: "benchmark", **tags},
                                start_time=int(time.time() * 1000) - 1000 * age)
        for key, value in params.items():
            client.log_param(run.info.run_id, key, value)
        for batch in (1, 8):
            client.log_metric(run.info.run_id, "ms_per_image", 100.0 / batch + age, step=batch)
            client.log_metric(run.info.run_id, "throughput_img_s", 10.0 * batch, step=batch)
        client.log_metric(run.info.run_id, "not_a_bench_metric", 1.0)
        client.set_terminated(run.info.run_id, "FINISHED")
        if age == 0:
            newest = run.info.run_id
    tags = registry.register(run_id=convert_run, name="benched").tags
    assert tags["bench_run_id"] == newest
    assert (tags["bench.ms_per_image"], tags["bench.throughput_img_s"], tags["bench.batch"]) == ("12.5", "80", "8")
    assert "bench.not_a_bench_metric" not in tags
    assert registry.client().get_model_version("benched", "1").tags["bench.ms_per_image"] == "12.5"


def test_pull_from_a_server_that_is_down_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take minutes
    code, _, err = run_cli(capsys, "pull", "--dest", "d")
    assert code == 1 and "cannot reach the tracking server" in err and "MLFLOW_TRACKING_URI" in err
    assert not Path("d").exists()


def test_cli_forwards_to_the_library(capsys, monkeypatch):
    calls = {}

    def fake_promote(**kwargs):
        calls.update(kwargs)
        return promotion.PromoteResult("m", kwargs["alias"], kwargs["version"], None, "promote", run_id="r")

    monkeypatch.setattr(promotion, "promote", fake_promote)
    code, out, _ = run_cli(capsys, "promote", "--version", "3", "--name", "m", "--allow-random", "false",
                           "--target-gpu", "", "--reason", "why")
    assert code == 0 and "m@production -> version 3" in out
    assert calls == {"version": "3", "name": "m", "alias": "production", "allow_random": False, "target_gpu": None,
                     "reason": "why"}
    assert registry.parse_model_uri("models:/sam3@production") == ("sam3", None, "production")
    assert registry.parse_model_uri("models:/sam3/4") == ("sam3", "4", None)
    for bad in ("models:/sam3", "runs:/x/model", "models:/@x"):
        with pytest.raises(Exception, match="models:/"):
            registry.parse_model_uri(bad)
    assert promotion.gpu_matches("NVIDIA H100 80GB HBM3", "h100") and not promotion.gpu_matches("NVIDIA A10G", "H100")
    # A version with failed or no parity can only come from outside `sam3ops register`: still refused.
    for tags, fragment in [({"parity": "fail"}, "version 5 failed the parity gate"),
                           ({}, "version 5 has no passing parity result")]:
        with pytest.raises(PromotionRefusedError, match=fragment):
            promotion.check_promotable(tags, version="5", allow_random=True, target_gpu=None)
    promotion.check_promotable({"parity": "reference", "weights_random": "false"}, version="5", allow_random=False,
                               target_gpu=None)
