"""``sam3ops doctor``: what a killed process left, cleaned up on demand, one line each."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import mlflow
import pytest

from sam3ops.checkpoint.manifest import Manifest
from tests.conftest import subprocess_env
from tests.support.cli import run_cli
from tests.tracking.test_reaper import dead_pid, make_run, staging_folder


def test_doctor_with_nothing_to_do(capsys):
    code, out, err = run_cli(capsys, "doctor")
    assert code == 0, err
    assert out == f"nothing to clean up: no RUNNING run of a killed process on {socket.gethostname()}\n"


def test_doctor_prints_each_run_ended_and_folder_removed(capsys, tmp_path):
    pid = dead_pid()
    prefix, folder = staging_folder(tmp_path, "out", "onnx", pid)
    run_id = make_run(pid, staging=[prefix])
    code, out, err = run_cli(capsys, "doctor")
    assert code == 0, err
    assert out.splitlines() == [f"ended run {run_id} (convert, pid {pid}) as FAILED: its process was killed",
                                f"removed {folder}"]
    assert mlflow.get_run(run_id).info.status == "FAILED" and not folder.exists()


def test_doctor_fails_only_when_the_store_is_unreachable(capsys, monkeypatch):
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    code, _, err = run_cli(capsys, "doctor")
    assert code != 0
    assert "cannot reach" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_killed_convert_is_ended_by_doctor_and_the_next_convert_succeeds(capsys, tmp_path, tiny_weights):
    child = subprocess.Popen([sys.executable, "-m", "sam3ops", "convert", "--input", str(tiny_weights),
                              "--format", "onnx", "--output", "onnx"],
                             env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (staging := list(tmp_path.glob(".onnx.onnx-*"))) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert staging, child.stderr.read().decode()[-3000:] if child.poll() is not None else "no staging folder"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    [killed] = mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")
    assert killed.info.status == "RUNNING"  # what MLflow alone leaves

    code, out, err = run_cli(capsys, "doctor")
    assert code == 0, err
    assert out.splitlines() == [
        f"ended run {killed.info.run_id} (convert, pid {child.pid}) as FAILED: its process was killed",
        f"removed {staging[0]}"]
    assert not list(tmp_path.glob(".onnx.*")) and not (tmp_path / "onnx").exists()
    run = mlflow.get_run(killed.info.run_id)
    assert run.info.status == "FAILED" and "was killed" in run.data.tags["error"]

    code, _, err = run_cli(capsys, "convert", "--input", str(tiny_weights), "--format", "onnx", "--output", "onnx")
    assert code == 0, err
    assert Manifest.read(tmp_path / "onnx").problems(tmp_path / "onnx") == []
    assert not list(tmp_path.glob(".onnx.*"))
    statuses = [r.info.status for r in mlflow.search_runs(experiment_names=["sam3-convert"], output_format="list")]
    assert sorted(statuses) == ["FAILED", "FINISHED"]
