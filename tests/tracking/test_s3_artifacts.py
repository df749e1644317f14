"""The team server with its artifacts in S3: ``mlflow server --artifacts-destination s3://...`` against
moto's S3 server on 127.0.0.1. A 1.4 GB checkpoint goes up in parts and comes back through
``sam3ops pull``, verified; a server whose bucket or endpoint is wrong, or an S3 endpoint the client
cannot reach, fails the client in one line."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import uuid
from pathlib import Path

import mlflow
import pytest

from sam3ops.checkpoint.manifest import Manifest
from tests.conftest import subprocess_env
from tests.support.cli import run_cli
from tests.support.registry import point_at
from tests.support.servers import MlflowServer, MotoS3

pytestmark = pytest.mark.slow

CHUNK = 64 * 1024**2  # S3 takes at most 10,000 parts of 5 MiB to 5 GiB
BIG_TEXT = "tiny-full-text"  # a preset name for this test only (big_text_config)


def s3_server(postgres, moto_s3: MotoS3, tmp_path: Path, *, bucket: str, endpoint: str | None = None) -> MlflowServer:
    """A started team server on PostgreSQL whose artifacts go to ``s3://bucket/mlflow`` on moto."""
    return MlflowServer(postgres.new_database(), f"s3://{bucket}/mlflow", log=tmp_path / "server.log",
                        env=moto_s3.server_env(endpoint)).start()


def client_env(server: MlflowServer, **extra: str) -> dict[str, str]:
    """A team client's environment: the server's URI and no S3 credentials (it never needs them)."""
    env = subprocess_env(MLFLOW_TRACKING_URI=server.uri, **extra)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MLFLOW_S3_ENDPOINT_URL"):
        env.pop(name, None)
    return env


def sam3ops(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["sam3ops", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 * 1024**2):
            digest.update(block)
    return digest.hexdigest()


def big_text_config():
    """The tiny preset with SAM3's full-size text encoder (its CLIP text model, 353 M parameters): a real
    1.4 GB checkpoint whose forward pass (the tiny vision side at 224 px) takes about a second, where
    the full preset's takes a minute on 2 cores (logging the model at init runs one on its input example)."""
    from transformers import Sam3Config

    from sam3ops.weights import presets

    full, kwargs = Sam3Config().text_config, presets._tiny_kwargs()
    kwargs["text_config"].update({key: getattr(full, key) for key in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")})
    return Sam3Config(**kwargs)


def test_a_large_checkpoint_goes_to_s3_in_parts(postgres, moto_s3, tmp_path, monkeypatch,
                                                                         capsys):
    from sam3ops.registry import register
    from sam3ops.weights import presets
    from sam3ops.weights.stage import init_stage

    bucket = moto_s3.new_bucket(f"team-{uuid.uuid4().hex[:8]}")
    server = s3_server(postgres, moto_s3, tmp_path, bucket=bucket)
    try:
        point_at(monkeypatch, server.uri)
        tiny_or_full = presets.build_config
        monkeypatch.setattr(presets, "build_config",
                            lambda preset: big_text_config() if preset == BIG_TEXT else tiny_or_full(preset))
        # init uploads the files (it logs them as the run's model); register only points at that model.
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(CHUNK))
        init_run = init_stage(preset=BIG_TEXT, output=str(tmp_path / "big")).run_id
        manifest = Manifest.read(tmp_path / "big")
        weights = next(e for e in manifest.files if e.path == "model.safetensors")
        assert weights.size > 1024**3

        registered = register(run_id=init_run, name="sam3-s3")
        assert registered.tags["size_bytes"] == str(sum(e.size for e in manifest.files))

        # The bytes are in the bucket, and S3 put them together from parts: a multipart object's ETag
        # is md5-of-part-md5s followed by "-<parts>", which a single PUT never gets.
        s3 = moto_s3.client()
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])]
        (key,) = [k for k in keys if k.endswith("/artifacts/weights/model.safetensors")]
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == weights.size
        assert head["ETag"].strip('"').endswith(f"-{math.ceil(weights.size / CHUNK)}"), head["ETag"]
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # none left open

        # The S3 credentials live on the server only: no client saw them, no run recorded them.
        out, err = capsys.readouterr()
        outputs = out + err
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
        recorded = json.dumps([[r.data.params, r.data.tags] for r in runs])
        for secret in (MotoS3.SECRET_KEY, MotoS3.ACCESS_KEY):
            assert secret not in outputs and secret not in recorded
            assert secret not in server.log.read_text(errors="replace")
    finally:
        server.stop()


def test_a_version_in_s3_comes_back_through_pull_verified(postgres, moto_s3, tiny_weights, tmp_path, monkeypatch):
    """The tiny preset: moto serves every ranged GET by reading the whole object, so the server's copy of a
    1.4 GB object from moto (~170 ranged GETs) took over 10 minutes on the loaded 2-core machine."""
    from sam3ops.registry import register
    from sam3ops.weights.stage import init_stage

    bucket = moto_s3.new_bucket(f"team-{uuid.uuid4().hex[:8]}")
    server = s3_server(postgres, moto_s3, tmp_path, bucket=bucket)
    try:
        point_at(monkeypatch, server.uri)
        shutil.copytree(tiny_weights, tmp_path / "tiny")
        manifest = Manifest.read(tmp_path / "tiny")
        version = register(run_id=init_stage(preset="tiny", output=str(tmp_path / "tiny")).run_id,
                           name="sam3-s3").version
        dest = tmp_path / "pulled"
        pulled = sam3ops(client_env(server), tmp_path, "pull", "--name", "sam3-s3", "--version", version,
                         "--dest", str(dest))
        assert pulled.returncode == 0, pulled.stderr[-3000:]
        assert "sha256 verified" in pulled.stdout
        info = json.loads((dest / "MODEL_INFO.json").read_text())
        assert {p: h for p, h in info["files"].items() if p != "manifest.json"} == {
            e.path: e.sha256 for e in manifest.files}
        for entry in manifest.files:  # our own read, not pull's word
            assert sha256(dest / entry.path) == entry.sha256, entry.path
        assert MotoS3.SECRET_KEY not in pulled.stdout + pulled.stderr
    finally:
        server.stop()


@pytest.mark.parametrize("fault", ["missing bucket", "wrong endpoint"])
def test_a_server_whose_s3_is_wrong_fails_the_client_in_one_line(fault, postgres, moto_s3, tiny_weights, tmp_path,
                                                                  monkeypatch, capsys):
    bucket, endpoint = f"absent-{uuid.uuid4().hex[:8]}", None
    if fault == "wrong endpoint":
        bucket, endpoint = moto_s3.new_bucket(f"team-{uuid.uuid4().hex[:8]}"), "http://127.0.0.1:9"
    server = s3_server(postgres, moto_s3, tmp_path, bucket=bucket, endpoint=endpoint)
    try:
        point_at(monkeypatch, server.uri)
        # MLflow retries a 5xx 7 times with growing waits (minutes); two quick retries end the same way.
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        shutil.copytree(tiny_weights, tmp_path / "w")  # init verifies and reuses it, then logs its manifest
        code, _, err = run_cli(capsys, "init", "--preset", "tiny", "--output", str(tmp_path / "w"))
        assert code == 1
        lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
        assert len(lines) == 1, err[-3000:]
        assert f"{server.uri} kept answering with server errors" in lines[0]
        assert "bucket exist" in lines[0] and "MLFLOW_S3_ENDPOINT_URL" in lines[0]
        # The cause is in the server's log, where the hint sends the reader.
        cause = "NoSuchBucket" if fault == "missing bucket" else "Could not connect to the endpoint URL"
        assert cause in server.log.read_text(errors="replace")

        (run,) = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")
        assert run.info.status == "FAILED" and "kept answering with server errors" in run.data.tags["error"]
    finally:
        server.stop()


def test_a_client_that_cannot_reach_the_s3_endpoint_fails_its_multipart_upload_in_one_line(
        postgres, moto_s3, tiny_weights, tmp_path, monkeypatch, capsys):
    bucket = moto_s3.new_bucket(f"team-{uuid.uuid4().hex[:8]}")
    # The server reaches S3 as localhost; this client's only way to localhost is a proxy that is down
    # (as a client outside the network of an internal endpoint), while 127.0.0.1 (the server) is direct.
    server = s3_server(postgres, moto_s3, tmp_path, bucket=bucket, endpoint=f"http://localhost:{moto_s3.port}")
    try:
        point_at(monkeypatch, server.uri)
        for name, value in {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1",
                            "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
                            "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": "1000"}.items():  # the manifest: 1.3 kB
            monkeypatch.setenv(name, value)
        shutil.copytree(tiny_weights, tmp_path / "w")
        code, _, err = run_cli(capsys, "init", "--preset", "tiny", "--output", str(tmp_path / "w"))
        assert code == 1
        lines = [line for line in err.splitlines() if line.startswith("sam3ops: error:")]
        assert len(lines) == 1, err[-3000:]
        assert f"a multipart upload to the artifact store of {server.uri} failed" in lines[0]
        assert "MLFLOW_S3_ENDPOINT_URL" in lines[0] and "X-Amz-Signature" not in lines[0]
        (run,) = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")
        assert run.info.status == "FAILED" and run.data.tags["error"] == lines[0].removeprefix("sam3ops: error: ")
        assert not moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads")  # MLflow aborted it
    finally:
        server.stop()
