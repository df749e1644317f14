"""Experiments sam3ops makes are model-development ones; the UI links it prints; runs `mlflow run` files elsewhere."""

from __future__ import annotations

import json
import logging
import subprocess

import mlflow
import pytest

from sam3ops import tracking
from sam3ops.tracking import ui
from sam3ops.tracking.store import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, EXPERIMENT_TAG
from tests.conftest import REPO_ROOT, subprocess_env

KIND = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}


def _tags(name: str) -> dict[str, str]:
    return mlflow.get_experiment_by_name(name).tags


def test_a_new_experiment_is_tagged_model_development():
    tracking.configure()
    tracking.ensure_experiment("sam3-init")
    assert KIND.items() <= _tags("sam3-init").items()


def test_an_existing_experiment_gets_the_kind_and_a_hand_set_kind_is_kept():
    tracking.configure()
    client = mlflow.MlflowClient()
    plain = client.create_experiment("made-before")  # as an older sam3ops or `mlflow run` made it
    assert tracking.ensure_experiment("made-before") == plain
    assert KIND.items() <= _tags("made-before").items()
    client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    tracking.ensure_experiment("chosen")
    assert _tags("chosen")[EXPERIMENT_KIND_TAG] == "genai_development"


def _joined(monkeypatch, experiment_id: str, stage: str) -> mlflow.entities.Run:
    created = mlflow.MlflowClient().create_run(experiment_id, tags={"mlflow.project.entryPoint": stage})
    monkeypatch.setenv("MLFLOW_RUN_ID", created.info.run_id)
    with tracking.stage_run(stage):
        pass
    return mlflow.get_run(created.info.run_id)


def test_a_joined_run_in_default_says_where_it_went_and_is_tagged(monkeypatch, caplog):
    tracking.configure()
    default = mlflow.get_experiment_by_name("Default") or mlflow.get_experiment("0")
    with caplog.at_level(logging.INFO, logger="sam3ops"):
        run = _joined(monkeypatch, default.experiment_id, "init")
    assert run.info.status == "FINISHED" and run.data.tags[EXPERIMENT_TAG] == "sam3-init"
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"run {run.info.run_id} went to experiment 'Default', not 'sam3-init'" in line
    assert "mlflow run . -e init --experiment-name sam3-init" in line
    assert "export MLFLOW_EXPERIMENT_NAME=sam3-init" in line
    found = mlflow.search_runs(search_all_experiments=True, output_format="list",
                               filter_string=f"tags.`{EXPERIMENT_TAG}` = 'sam3-init'")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_a_joined_run_in_its_stages_experiment_is_quiet_and_the_experiment_gets_its_kind(monkeypatch, caplog):
    tracking.configure()
    experiment_id = mlflow.MlflowClient().create_experiment("sam3-init")  # `mlflow run --experiment-name` made it
    with caplog.at_level(logging.INFO, logger="sam3ops"):
        run = _joined(monkeypatch, experiment_id, "init")
    assert EXPERIMENT_TAG not in run.data.tags
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert KIND.items() <= _tags("sam3-init").items()


@pytest.mark.parametrize(("uri", "base", "command"), [
    ("sqlite:////data/mlflow.db", "http://127.0.0.1:5000", "mlflow ui --backend-store-uri sqlite:////data/mlflow.db"),
    ("postgresql://bob:pw@db:5432/mlflow", "http://127.0.0.1:5000",
     "mlflow ui --backend-store-uri postgresql://db:5432/mlflow"),
    ("https://bob:s3cret@mlflow.example.com/team/?token=abc", "https://mlflow.example.com/team", None),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123", None),
])
def test_the_ui_root_for_each_kind_of_store_has_no_credentials(uri, base, command):
    assert ui.ui_base(uri) == base
    assert ui.ui_command(uri) == command
    link = ui.ui_url("7", uri=uri)
    assert link == f"{base}/#/experiments/7/runs?workflowType=machine_learning"
    assert ui.ui_url("7", "abc", uri=uri) == f"{base}/#/experiments/7/runs/abc?workflowType=machine_learning"
    shown = ui.with_command(link, uri)
    assert "s3cret" not in shown and "pw@" not in shown and "token" not in shown
    assert shown == (f"{link}  (start the UI with: {command})" if command else link)


def test_the_current_tracking_uri_is_the_default(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team:5000/")
    assert ui.ui_url("3") == "http://team:5000/#/experiments/3/runs?workflowType=machine_learning"


def test_runs_link_stores_the_view_on_the_experiment_once():
    tracking.configure()
    experiment_id = tracking.ensure_experiment("sam3-benchmark")
    link = ui.runs_link(experiment_id, metrics=("ms_per_image",), params=("precision",),
                        search="tags.`sam3ops.stage` = 'benchmark'", order_by="ms_per_image")
    assert link.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
                           "&viewStateShareKey=sam3ops-")
    key = link.rsplit("=", 1)[1]
    state = json.loads(mlflow.get_experiment(experiment_id).tags[ui.SHARED_VIEW_TAG_PREFIX + key])
    assert state == {"searchFilter": "tags.`sam3ops.stage` = 'benchmark'", "orderByKey": "metrics.`ms_per_image`",
                     "orderByAsc": True,
                     "selectedColumns": ["params.`precision`", "metrics.`ms_per_image`", "attributes.`Models`"]}
    assert ui.runs_link(experiment_id, metrics=("ms_per_image",), params=("precision",),
                        search="tags.`sam3ops.stage` = 'benchmark'", order_by="ms_per_image") == link
    shared = [k for k in mlflow.get_experiment(experiment_id).tags if k.startswith(ui.SHARED_VIEW_TAG_PREFIX)]
    assert shared == [ui.SHARED_VIEW_TAG_PREFIX + key]


def test_runs_link_without_write_permission_puts_filter_and_sort_in_the_address(monkeypatch):
    tracking.configure()
    experiment_id = tracking.ensure_experiment("sam3-benchmark")

    def refused(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("Permission denied", error_code="PERMISSION_DENIED")

    monkeypatch.setattr(mlflow.MlflowClient, "set_experiment_tag", refused)
    link = ui.runs_link(experiment_id, metrics=("ms_per_image",), search="tags.`sam3ops.stage` = 'benchmark'",
                        order_by="ms_per_image")
    assert link == (f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
                    "&searchFilter=tags.%60sam3ops.stage%60+%3D+%27benchmark%27"
                    "&orderByKey=metrics.%60ms_per_image%60&orderByAsc=true")


@pytest.mark.slow
def test_mlflow_run_without_an_experiment_name_says_where_the_run_went(tmp_path):
    """`mlflow run . -e init` lands in Default (MLproject cannot choose): one line says so, a tag files it."""
    command = ["mlflow", "run", str(REPO_ROOT), "-e", "init", "--env-manager", "local",
               "-P", "preset=tiny", "-P", f"output={tmp_path / 'init'}"]
    done = subprocess.run(command, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = mlflow.search_runs(experiment_names=["Default"], output_format="list")
    assert run.info.status == "FINISHED" and run.data.tags[EXPERIMENT_TAG] == "sam3-init"
    lines = [line for line in done.stderr.splitlines() if "went to experiment" in line]
    assert lines == [f"run {run.info.run_id} went to experiment 'Default', not 'sam3-init' "
                     f"(tagged {EXPERIMENT_TAG}=sam3-init); to file such runs with the others: "
                     "mlflow run . -e init --experiment-name sam3-init, or export MLFLOW_EXPERIMENT_NAME=sam3-init"]
    # What the line says works: the environment variable files the next run with the others, quietly.
    again = subprocess.run(command[:-1] + [f"output={tmp_path / 'again'}"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600, env=subprocess_env(MLFLOW_EXPERIMENT_NAME="sam3-init"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "went to experiment" not in again.stderr
    [filed] = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")
    assert filed.info.status == "FINISHED" and EXPERIMENT_TAG not in filed.data.tags
    assert KIND.items() <= _tags("sam3-init").items()
