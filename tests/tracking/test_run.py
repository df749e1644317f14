"""The run helper: where runs go, what they are tagged with, and that none is left RUNNING."""

from pathlib import Path

import mlflow
import pytest

from sam3ops import tracking
from sam3ops.errors import WeightsError
from sam3ops.tracking import redact


def _only_run(experiment="sam3-test"):
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert len(runs) == 1
    return runs[0]


def test_embedded_default_at_workspace_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("SAM3OPS_HOME", str(tmp_path / "ws"))
    (tmp_path / "ws").mkdir()
    with tracking.stage_run("test") as run:
        mlflow.log_text("hello", "hello.txt")
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    assert (tmp_path / "ws" / "mlflow.db").is_file()
    artifact_uri = mlflow.get_run(run.info.run_id).info.artifact_uri
    assert artifact_uri.startswith((tmp_path / "ws" / "mlruns").as_uri())
    assert (tmp_path / "ws" / "mlruns" / "sam3-test").is_dir()
    # the model registry lives in the same store
    mlflow.MlflowClient().create_registered_model("probe")
    assert mlflow.MlflowClient().get_registered_model("probe").name == "probe"


def test_env_uri_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    assert tracking.configure() == f"sqlite:///{tmp_path / 'other.db'}"


def test_finished_run_has_environment_tags_and_params():
    with tracking.stage_run("test", params={"batch": 8, "skip": None}, tags={"extra": "x"}):
        pass
    run = _only_run()
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    for key in ("host", "python_version", "torch_version", "transformers_version", "cuda_version", "gpu_name"):
        assert tags[key], key
    assert tags["gpu_name"] == "cpu" and tags["sam3ops.stage"] == "test" and tags["extra"] == "x"
    assert run.data.params == {"batch": "8"}


def test_error_ends_failed_with_one_line_tag():
    with pytest.raises(WeightsError):
        with tracking.stage_run("test"):
            raise WeightsError("weights/x has no manifest.json\nsecond line")
    run = _only_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("weights/x has no manifest.json second line (hint: run `sam3ops download`")
    assert "\n" not in run.data.tags["error"]
    assert run.data.tags["error_type"] == "WeightsError"


def test_unexpected_error_and_interrupt_never_leave_running():
    with pytest.raises(ZeroDivisionError):
        with tracking.stage_run("test"):
            _ = 1 / 0
    with pytest.raises(KeyboardInterrupt):
        with tracking.stage_run("test"):
            raise KeyboardInterrupt
    statuses = sorted(r.info.status for r in mlflow.search_runs(experiment_names=["sam3-test"], output_format="list"))
    assert statuses == ["FAILED", "KILLED"]


def test_secret_is_redacted_from_error_tag_and_params():
    secret = "hf_CANARYtokenValue1234567890"
    redact.register(secret)
    with pytest.raises(RuntimeError):
        with tracking.stage_run("test", params={"note": f"x{secret}y"}):
            raise RuntimeError(f"bad token {secret}")
    run = _only_run()
    assert secret not in run.data.tags["error"] and "***" in run.data.tags["error"]
    assert run.data.params["note"] == "x***y"


def test_joins_the_run_mlflow_run_created(monkeypatch):
    tracking.configure()
    experiment_id = tracking.ensure_experiment("launched-by-mlflow-run")
    created = mlflow.MlflowClient().create_run(experiment_id)
    mlflow.MlflowClient().log_param(created.info.run_id, "seed", "00")  # as `mlflow run -P seed=00` would
    monkeypatch.setenv("MLFLOW_RUN_ID", created.info.run_id)
    with tracking.stage_run("test", params={"seed": 0, "preset": "tiny"}) as run:
        assert run.info.run_id == created.info.run_id
    joined = mlflow.get_run(created.info.run_id)
    assert joined.info.status == "FINISHED"
    assert joined.data.params == {"seed": "00", "preset": "tiny"}


def test_workspace_root_is_the_checkout():
    assert (tracking.workspace_root() / "MLproject").is_file()
    assert tracking.workspace_root() == Path(__file__).resolve().parents[2]
