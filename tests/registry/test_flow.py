"""The registry end to end, through the command line: register, promote, pull, rollback and list on
a real ``mlflow server``; unknown names and occupied folders as one line each; the embedded store and
the MLproject entry points."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

import sam3ops.registry
from sam3ops import tracking
from sam3ops.checkpoint.manifest import Manifest, file_hashes
from sam3ops.registry import promote, register
from sam3ops.registry.client import client
from sam3ops.registry.promotion import PromoteResult, history
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow


def test_register_promote_pull_rollback(remote, capsys, tmp_path):
    server, sources, name = remote
    code, out, err = run_cli(capsys, "register", "--run-id", sources["fp16"], "--name", name)
    assert code == 0, err
    assert f"-> {name} version 1 (fp16, precision fp16, parity pass, RANDOM weights)" in out
    code, out, _ = run_cli(capsys, "register", "--run-id", sources["fp16"], "--name", name)
    assert code == 0 and f"is already {name} version 1" in out
    code, out, err = run_cli(capsys, "register", "--run-id", sources["init"], "--name", name)
    assert code == 0 and f"{name} version 2 (fp32, precision fp32, parity reference" in out, err

    mlflow_client = client()
    v1 = mlflow_client.get_model_version(name, "1")
    manifest = Manifest.read(sources["fp16_dir"])
    assert {k: v1.tags[k] for k in ("format", "precision", "parity", "weights_random", "weights_commit")} == {
        "format": "fp16", "precision": "fp16", "parity": "pass", "weights_random": "true",
        "weights_commit": manifest.commit}
    assert v1.tags["source_run_id"] == sources["fp16"]
    assert v1.tags["manifest_sha256"] == file_hashes(sources["fp16_dir"] / "manifest.json")[0]
    # A version of a logged model belongs to the run that logged it (MLflow 3): the convert run; the
    # register run that made it names it in its tags.
    assert v1.run_id == sources["fp16"] and v1.source == f"models:/{v1.tags['model_id']}"
    [register_run] = mlflow.search_runs(experiment_names=["sam3-register"], output_format="list", filter_string=(
        f"tags.registered_model = '{name}' and tags.registered_version = '1'"))
    assert register_run.data.tags[tracking.STAGE_TAG] == "register" and register_run.info.status == "FINISHED"
    assert register_run.data.tags["model_id"] == v1.tags["model_id"]

    code, _, err = run_cli(capsys, "promote", "--version", "1", "--name", name)
    assert code == 1 and "RANDOM weights" in err and "--allow-random" in err
    code, out, err = run_cli(capsys, "promote", "--version", "1", "--name", name, "--allow-random",
                             "--reason", "first cut")
    assert code == 0 and f"{name}@production -> version 1 (promote; was unset)" in out, err
    code, out, _ = run_cli(capsys, "promote", "--version", "2", "--name", name, "--allow-random", "true",
                           "--reason", "fp32 is safer")
    assert code == 0 and f"was 1, now {name}@previous-production" in out
    model = mlflow_client.get_registered_model(name)
    assert model.aliases == {"production": "2", "previous-production": "1"}
    v2 = mlflow_client.get_model_version(name, "2")
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
    assert mlflow_client.get_registered_model(name).aliases == {"production": "1", "previous-production": "2"}
    code, out, _ = run_cli(capsys, "pull", "--alias", "production", "--name", name, "--dest", str(dest))
    assert code == 0 and "version 1 (fp16, fp16)" in out
    assert json.loads((dest / "MODEL_INFO.json").read_text())["version"] == "1"
    assert not Manifest.read(dest).problems(dest) and (dest / "model.safetensors").is_file()

    actions = [(r["action"], r["version"], r["previous"], r["reason"]) for r in history(name)]
    assert actions == [("promote", "1", None, "first cut"), ("promote", "2", "1", "fp32 is safer"),
                       ("rollback", "1", "2", "fp32 too slow")]
    promote_runs = mlflow.search_runs(experiment_names=["sam3-promote"], output_format="list",
                                      filter_string=f"tags.registered_model = '{name}'")
    assert sorted(r.info.status for r in promote_runs) == ["FAILED"] + ["FINISHED"] * 3  # the refusal is recorded
    code, out, _ = run_cli(capsys, "versions", "--name", name)
    assert code == 0 and "production" in out.splitlines()[1] and "previous-production" in out.splitlines()[0]


def _last_line(capsys, *argv) -> tuple[int, str]:
    code, _, err = run_cli(capsys, *argv)
    return code, err.strip().splitlines()[-1] if err.strip() else ""


def test_unknowns_and_occupied_dests_are_one_line(remote, capsys, tmp_path):
    server, sources, name = remote
    code, err = _last_line(capsys, "promote", "--version", "1", "--name", name)
    assert code == 1 and f"registered model '{name}' not found" in err and "sam3ops register" in err
    register(run_id=sources["fp16"], name=name)
    for argv, fragment in [
        (["promote", "--version", "7"], f"model '{name}' has no version 7"),
        (["pull", "--alias", "staging", "--dest", "d"], f"model '{name}' has no alias 'staging'"),
        (["pull", "--version", "9", "--dest", "d"], f"model '{name}' has no version 9"),
        (["rollback"], f"model '{name}' has no previous-production version to roll back to"),
        (["promote", "--version", "1", "--alias", "previous-production"], "is kept by promote itself"),
        (["promote", "--version", "1", "--allow-random", "maybe"], "'maybe' is not a valid boolean"),
        (["pull", "--alias", "production", "--version", "1", "--dest", "d"], "give --alias or --version, not both"),
    ]:
        code, err = _last_line(capsys, *argv, "--name", name)
        assert code in (1, 2) and fragment in err, (argv, err)
    assert not Path("d").exists()

    promote(version="1", name=name, allow_random=True)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    code, err = _last_line(capsys, "pull", "--name", name, "--dest", str(occupied))
    assert code == 2 and "holds files that are not a sam3ops pull" in err
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    code, err = _last_line(capsys, "pull", "--name", name, "--dest", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err


def test_embedded_store_and_entry_points(capsys, tmp_path, tiny_weights):
    """No server: the per-test sqlite store (artifacts on local disk); register and promote through
    `mlflow run -e ...`, pull through MLflow's local artifact client."""
    from sam3ops.weights.stage import init_stage

    shutil.copytree(tiny_weights, tmp_path / "tiny")
    init_run = init_stage(preset="tiny", output=str(tmp_path / "tiny"), seed=0).run_id
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "register", "--env-manager", "local", "--experiment-name",
         "sam3-register", "-P", f"run_id={init_run}", "-P", "name=emb"],
        env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mlflow_client = client()
    # The version belongs to the init run that logged its model (MLflow 3); the register run names it.
    assert mlflow_client.get_model_version("emb", "1").run_id == init_run
    [register_run] = mlflow.search_runs(experiment_names=["sam3-register"], output_format="list",
                                        filter_string="tags.registered_model = 'emb' and tags.registered_version = '1'")
    assert register_run.data.tags["mlflow.project.entryPoint"] == "register"
    code, _, err = run_cli(capsys, "promote", "--version", "1", "--name", "emb", "--allow-random", "true",
                           "--target-gpu", "", "--reason", "demo")  # as the promote entry point passes them
    assert code == 0, err
    assert mlflow_client.get_registered_model("emb").aliases == {"production": 1}  # the SQL store gives ints
    assert mlflow_client.get_model_version("emb", "1").tags["promote_reason"] == "demo"
    code, out, err = run_cli(capsys, "pull", "--name", "emb", "--dest", "pulled")
    assert code == 0, err
    assert not Manifest.read(Path("pulled")).problems(Path("pulled"))
    # init logged the files once, verified: a file changed in its folder since never reaches the
    # registry (register points at the logged model and reads no folder); the version pulls intact.
    with open(tmp_path / "tiny" / "config.json", "a") as handle:
        handle.write(" ")
    code, _, err = run_cli(capsys, "register", "--run-id", init_run, "--name", "emb2")
    assert code == 0, err
    first, second = (mlflow_client.get_model_version(name, "1") for name in ("emb", "emb2"))
    assert second.tags["model_id"] == first.tags["model_id"]
    code, _, err = run_cli(capsys, "pull", "--name", "emb2", "--version", "1", "--dest", "pulled2")
    assert code == 0, err
    assert (Path("pulled2") / "config.json").read_bytes() == (tiny_weights / "config.json").read_bytes()


def test_cli_forwards_to_the_library(capsys, monkeypatch):
    calls = {}

    def fake_promote(**kwargs):
        calls.update(kwargs)
        return PromoteResult("m", kwargs["alias"], kwargs["version"], None, "promote", run_id="r")

    monkeypatch.setattr(sam3ops.registry, "promote", fake_promote)  # the package API the CLI calls
    code, out, _ = run_cli(capsys, "promote", "--version", "3", "--name", "m", "--allow-random", "false",
                           "--target-gpu", "", "--reason", "why")
    assert code == 0 and "m@production -> version 3" in out
    assert calls == {"version": "3", "name": "m", "alias": "production", "allow_random": False, "target_gpu": None,
                     "reason": "why"}
