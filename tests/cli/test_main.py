"""The command line as a whole: help everywhere (without torch), one-line errors, no RUNNING runs."""

import signal
import subprocess
import sys

import mlflow
import pytest

from sam3ops import cli
from tests.conftest import subprocess_env
from tests.support.cli import run_cli

COMMANDS = sorted(cli.cli.commands)


def _python(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_on_every_command(capsys, command):
    code, out, _ = run_cli(capsys, *command, "--help")
    assert code == 0 and "Usage: sam3ops" in out


def test_every_command_module_is_registered():
    assert set(COMMANDS) == {"download", "init", "predict", "samples", "prompts", "convert", "bench", "compare",
                             "register", "promote", "rollback", "pull", "versions", "rank", "pipeline", "doctor"}


def test_help_works_where_torch_cannot_be_imported():
    """`sys.modules['torch'] = None` makes every `import torch` fail, as on a machine without it."""
    done = _python(
        "import sys\nsys.modules['torch'] = None\n"
        "from sam3ops import cli\n"
        f"for argv in [['--help'], *[[name, '--help'] for name in {COMMANDS!r}]]:\n"
        "    try:\n        cli.main(argv)\n"
        "    except SystemExit as exc:\n        sys.exit(f'{argv}: exit {exc.code}')\n"
        "print('all help shown')\n")
    assert done.returncode == 0 and done.stdout.strip().endswith("all help shown"), done.stderr[-2000:]


def test_help_and_argument_errors_import_no_torch():
    done = _python(
        "import sys\nfrom sam3ops import cli\n"
        "cli.main(['--help'])\n"
        "assert 'torch' not in sys.modules, 'after --help'\n"
        "for argv in (['convert', '--format', 'int8'], ['bench', '--iterations', 'many'], ['init', '--seed', 'x']):\n"
        "    try:\n        cli.main(argv)\n"
        "    except SystemExit as exc:\n        assert exc.code == 2, (argv, exc.code)\n"
        "    else:\n        raise AssertionError(argv)\n"
        "    assert 'torch' not in sys.modules, argv\n"
        "print('no torch')\n")
    assert done.returncode == 0 and done.stdout.strip().endswith("no torch"), done.stderr[-2000:]


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


def test_refused_tracking_credentials_are_one_line(capsys, monkeypatch):
    """A tracking-server failure raised from anywhere below a command is translated once, in main."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import UNAUTHENTICATED

    def refuse(**kwargs):
        raise MlflowException("any text at all", error_code=UNAUTHENTICATED)

    monkeypatch.setattr("sam3ops.weights.stage.init_stage", refuse)
    code, out, err = run_cli(capsys, "init")
    lines = err.strip().splitlines()
    assert code != 0 and out == "" and len(lines) == 1
    assert lines[0].startswith("sam3ops: error: ") and "refused these credentials" in lines[0]


@pytest.mark.slow
def test_sigterm_ends_the_run_killed():
    """A stage stopped by SIGTERM (CI timeout, `kill`) must not leave its run RUNNING: main turns the
    signal into an interrupt, the run helper ends the run KILLED, and the exit code is 130."""
    script = (
        "import time\n"
        "from sam3ops import cli, tracking\n"
        "def slow_init(**kwargs):\n"
        "    with tracking.stage_run('test'):\n"
        "        print('started', flush=True)\n"
        "        time.sleep(60)\n"
        "import sam3ops.weights.stage\n"
        "sam3ops.weights.stage.init_stage = slow_init\n"
        "cli.main(['init'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert proc.stderr.read().strip().splitlines()[-1] == "sam3ops: aborted"  # click reports an interrupt as Abort
    run = mlflow.search_runs(experiment_names=["sam3-test"], output_format="list")[0]
    assert run.info.status == "KILLED" and run.data.tags["error"] == "interrupted"
