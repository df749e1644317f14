"""The command line: help everywhere, one-line errors with a hint, tracked init, no RUNNING runs."""

import signal
import subprocess
import sys

import mlflow
import pytest

from sam3ops import cli
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli


@pytest.mark.parametrize("command", [[], *([name] for name in sorted(cli.cli.commands))])
def test_help_on_every_command(capsys, command):
    code, out, _ = run_cli(capsys, *command, "--help")
    assert code == 0 and "Usage: sam3ops" in out


def test_every_entry_point_mirrors_a_command():
    """MLproject entry points have the CLI's names (main runs `pipeline`, benchmark runs `bench`)."""
    import yaml

    entry_points = yaml.safe_load((REPO_ROOT / "MLproject").read_text())["entry_points"]
    aliases = {"main": "pipeline", "benchmark": "bench"}
    for name, entry in entry_points.items():
        command = aliases.get(name, name)
        assert command in cli.cli.commands, name
        assert entry["command"].startswith(f"sam3ops {command} "), name
        params = cli.cli.commands[command].params
        flags = {flag for p in params for flag in p.opts} | {p.name for p in params if not p.opts[0].startswith("-")}
        for parameter in entry.get("parameters", {}):
            assert f"--{parameter.replace('_', '-')}" in flags or parameter in flags, (name, parameter)


def test_init_cli_tracks_a_random_weights_run(capsys, tmp_path):
    code, out, err = run_cli(capsys, "init", "--preset", "tiny", "--output", str(tmp_path / "w"))
    assert code == 0, err
    assert "RANDOM weights" in out
    run = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["weights_random"] == "true" and run.data.tags["preset"] == "tiny"
    assert run.data.params["preset"] == "tiny" and run.data.metrics["parameters"] > 1e6
    artifacts = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "a"))
    assert (tmp_path / "a" / "manifest.json").is_file(), artifacts


def test_user_error_is_one_line_with_hint_and_failed_run(capsys, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "something.txt").write_text("mine")
    code, out, err = run_cli(capsys, "init", "--output", str(tmp_path / "w"))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("sam3ops: error: ") and "--force" in lines[-1]
    assert "Traceback" not in err
    assert (tmp_path / "w" / "something.txt").read_text() == "mine"  # nothing of ours left behind
    run = mlflow.search_runs(experiment_names=["sam3-init"], output_format="list")[0]
    assert run.info.status == "FAILED" and "already holds other files" in run.data.tags["error"]


def test_debug_variable_shows_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SAM3OPS_DEBUG", "1")
    code, _, err = run_cli(capsys, "prompts", "--file", str(tmp_path / "missing.json"))
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("sam3ops: error:")


def test_bad_option_value_exits_2(capsys):
    code, _, err = run_cli(capsys, "init", "--preset", "huge")
    assert code == 2 and "huge" in err


def test_prompts_lists_sets(capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "prompts", "--file", str(REPO_ROOT / "prompts" / "default_prompts.json"))
    assert code == 0 and out.startswith("single_objects: person")


def test_sigterm_ends_the_run_killed(tmp_path):
    """A stage stopped by SIGTERM (CI timeout, `kill`) must not leave its run RUNNING."""
    script = (
        "import time, sys\n"
        "from sam3ops import cli, tracking\n"
        "import signal\n"
        "signal.signal(signal.SIGTERM, cli._raise_on_sigterm)\n"
        "with tracking.stage_run('test'):\n"
        "    print('started', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    run = mlflow.search_runs(experiment_names=["sam3-test"], output_format="list")[0]
    assert run.info.status == "KILLED" and run.data.tags["error"] == "interrupted"
