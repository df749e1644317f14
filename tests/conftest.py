"""Shared fixtures: every test gets its own tracking store, hub cache and working directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.seaweed import seaweed_s3  # noqa: F401 - SeaweedFS's S3 gateway, for the multi-GB round trips
from tests.support.servers import moto_s3, postgres  # noqa: F401 - PostgreSQL and S3 server fixtures, for any test module

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow sqlite store with its tables made and no experiment in it.

    Making the tables costs about 2 s per store on this machine, a copy of them milliseconds; with
    no experiment in it, MLflow makes the Default experiment on first use, beside the copy's own
    folder, exactly as in a store made from nothing.
    """
    import sqlite3

    import mlflow

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM experiments")
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, empty_store):
    """A fresh sqlite tracking store, HF cache and cwd per test; no token from the host."""
    import shutil

    import mlflow

    from sam3ops.tracking import redact

    monkeypatch.chdir(tmp_path)
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)  # mlflow keeps the last URI set in-process: reset it per test
    mlflow.set_registry_uri(uri)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    # huggingface_hub read HF_HOME when it was imported: point its paths into tmp too, so no test
    # ever sees the host's cache or stored token.
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_EXPERIMENT_NAME", "SAM3OPS_HOME", "SAM3OPS_DEBUG", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    redact.clear()
    yield tmp_path
    # Like MLflow's own suite: a test must not leave a run active.
    active = mlflow.active_run()
    while mlflow.active_run():
        mlflow.end_run("KILLED")
    assert active is None, f"test left run {active.info.run_id} active"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A tiny-preset weights folder built once per session (read-only for tests)."""
    from sam3ops.weights.presets import init_weights

    return init_weights(preset="tiny", output=tmp_path_factory.mktemp("weights") / "sam3-tiny", seed=0).output


@pytest.fixture(scope="session")
def tiny_meta(tmp_path_factory) -> Path:
    """A Meta-layout folder (``sam3.pt`` of Meta's tiny image model, random weights) built once per
    session (read-only for tests)."""
    from tests.support.meta import write_meta_folder

    return write_meta_folder(tmp_path_factory.mktemp("meta") / "sam3-meta-tiny")


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test's environment for a subprocess, with the venv's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def tiny_onnx(tiny_weights, tmp_path_factory) -> Path:
    """The tiny preset exported to ONNX (fp32) once per session (read-only for tests)."""
    from sam3ops.convert.onnx.export import export_onnx

    return export_onnx(source=tiny_weights, output=tmp_path_factory.mktemp("onnx") / "tiny-onnx").output


@pytest.fixture(scope="session")
def repo_folder(tmp_path_factory, tiny_weights) -> Path:
    """A hub repo for the fake hub: the tiny preset's files, a README and a 12 MiB ``sam3.pt``
    (large enough to drop, resume and kill mid-way). Read-only for tests."""
    import shutil

    from sam3ops.checkpoint.layout import MANIFEST_NAME

    folder = tmp_path_factory.mktemp("repo")
    for path in tiny_weights.iterdir():
        if path.name != MANIFEST_NAME:
            shutil.copy(path, folder / path.name)
    (folder / "README.md").write_text("# SAM3 (tiny, random weights, for tests)\n")
    (folder / "sam3.pt").write_bytes(os.urandom(12 * 1024 * 1024))
    return folder


@pytest.fixture(scope="session")
def tiny_aoti(tiny_weights, tmp_path_factory, empty_store):
    """The tiny preset through the real convert stage to AOTInductor packages (batch 1-4, CPU), once
    per session, in a tracking store of its own: ``(folder, run id, tracking URI, StageResult)``.
    Read-only. The result is returned, not asserted: the stage's tests say whether the gate passed.

    Compiling is the slow part of the format (a minute or more here), so the tests of the packages,
    the stage's run and the registry share this one build.
    """
    import shutil

    import mlflow

    from sam3ops.convert.stage import convert_stage

    home = tmp_path_factory.mktemp("aoti")
    shutil.copyfile(empty_store, home / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(home)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            patch.delenv(name, raising=False)
        mlflow.set_tracking_uri(uri)
        result = convert_stage(input_dir=str(tiny_weights), format="aoti", output=str(home / "tiny-aoti"),
                               min_batch=1, max_batch=4)
    return home / "tiny-aoti", result.run_id, uri, result
