"""Runs of killed processes end FAILED and their staging folders go; live runs and resumable parts stay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import psutil
import pytest

from sam3ops.checkpoint.atomic import replace_folder, staged_folder, staging_owner
from sam3ops.tracking import reaper, stage_run
from sam3ops.weights import transfer
from tests.conftest import subprocess_env
from tests.support.cli import run_cli
from tests.support.fakehub import FakeHub

REPO = "facebook/sam3"


def dead_pid() -> int:
    """The pid of a process that ran and was waited for (gone, not a zombie)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def make_run(pid: int, *, started: float | None = None, host: str | None = None, staging=(), **extra) -> str:
    """A RUNNING run tagged as if process ``pid`` ran it, with ``staging`` prefixes recorded."""
    import json

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("sam3-test") or client.get_experiment(
        client.create_experiment("sam3-test"))
    tags = {**reaper.process_tags(), reaper.PID_TAG: str(pid), "sam3ops.stage": "convert",
            reaper.STAGING_TAG: json.dumps([str(p) for p in staging]), **extra}
    if host:
        tags[reaper.HOST_TAG] = host
    if started is not None:
        tags[reaper.STARTED_TAG] = f"{started:.2f}"
    return client.create_run(experiment.experiment_id, tags=tags).info.run_id


def status(run_id: str) -> str:
    return mlflow.MlflowClient().get_run(run_id).info.status


def staging_folder(parent: Path, dest: str, label: str, pid: int) -> tuple[Path, Path]:
    """(recorded prefix, folder) of a staging folder as ``staged_folder`` names them."""
    prefix = parent / f".{dest}.{label}-{pid}-"
    folder = Path(f"{prefix}abc123")
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"half a graph")
    return prefix, folder


def test_stage_runs_record_their_process_and_staging(tmp_path):
    with stage_run("demo") as run, staged_folder(tmp_path / "out", "onnx") as staging:
        assert staging_owner(staging).pid == os.getpid() and staging_owner(staging).label == "onnx"
        (staging / "f").write_text("x")
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags[reaper.HOST_TAG] == socket.gethostname() and tags[reaper.PID_TAG] == str(os.getpid())
    assert abs(float(tags[reaper.STARTED_TAG]) - psutil.Process().create_time()) < 1
    assert tags[reaper.STAGING_TAG] == f'["{tmp_path}/.out.onnx-{os.getpid()}-"]'
    assert (tmp_path / "out" / "f").is_file()


def test_reap_ends_a_killed_process_run_and_removes_only_its_staging(tmp_path):
    pid, other = dead_pid(), os.getpid()
    prefix, folder = staging_folder(tmp_path, "out", "onnx", pid)
    _, not_its = staging_folder(tmp_path, "out", "onnx", other)  # same destination, a live process's
    part = tmp_path / "dl" / transfer.PART_DIR / "sam3.pt.abc.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"resume me")
    run_id = make_run(pid, staging=[prefix, tmp_path / f".out.onnx-{other}-"])

    [reaped] = reaper.reap()
    assert reaped.run_id == run_id and reaped.removed == [folder]
    assert reaped.lines() == [f"ended run {run_id} (convert, pid {pid}) as FAILED: its process was killed",
                              f"removed {folder}"]
    run = mlflow.get_run(run_id)
    assert run.info.status == "FAILED" and run.info.end_time
    assert "was killed" in run.data.tags["error"] and "out of memory" in run.data.tags["error"]
    assert run.data.tags["error_type"] == reaper.KILLED_TYPE
    assert not folder.exists() and not_its.is_dir() and part.read_bytes() == b"resume me"
    assert reaper.reap() == []  # nothing left to do


def test_reap_leaves_live_runs_other_hosts_and_namespaces(tmp_path):
    me = psutil.Process().create_time()
    live = make_run(os.getpid(), started=me)
    elsewhere = make_run(dead_pid(), host="another-host")
    container = make_run(dead_pid(), **{reaper.PIDNS_TAG: "pid:[1]"})
    reused = make_run(os.getpid(), started=me - 3600)  # our pid, but a process that started an hour earlier
    assert [r.run_id for r in reaper.reap()] == [reused]
    assert [status(r) for r in (live, elsewhere, container, reused)] == ["RUNNING", "RUNNING", "RUNNING", "FAILED"]
    for run_id in (live, elsewhere, container):
        mlflow.MlflowClient().set_terminated(run_id, "FINISHED")


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reaper.process_alive(child.pid, None)
    child.wait()
    assert not reaper.process_alive(child.pid, None)
    assert reaper.process_alive(os.getpid(), psutil.Process().create_time())


def test_a_replacement_killed_between_its_renames_is_put_back(tmp_path):
    pid = dead_pid()
    prefix, old = staging_folder(tmp_path, "out", "old", pid)  # the only copy of `out`
    make_run(pid, staging=[prefix])
    [reaped] = reaper.reap()
    assert reaped.restored == [tmp_path / "out"] and (tmp_path / "out" / "model.onnx").is_file()
    assert not old.exists()


def test_replace_folder_names_its_old_copy_for_the_reaper(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("sam3ops.checkpoint.atomic._listeners", [seen.append])
    (tmp_path / "new").mkdir()
    (tmp_path / "out").mkdir()
    replace_folder(tmp_path / "new", tmp_path / "out")
    assert seen == [tmp_path / f".out.old-{os.getpid()}-"]


def test_the_next_stage_reaps_and_never_fails_for_it(tmp_path, monkeypatch):
    pid = dead_pid()
    prefix, folder = staging_folder(tmp_path, "out", "cast", pid)
    killed = make_run(pid, staging=[prefix])
    with stage_run("demo"):
        pass
    assert status(killed) == "FAILED" and not folder.exists()

    def broken():
        raise ConnectionError("store down")

    monkeypatch.setattr(reaper, "reap", broken)
    with stage_run("demo") as run:
        pass
    assert status(run.info.run_id) == "FINISHED"


def test_a_slow_store_does_not_hold_the_stage(monkeypatch):
    monkeypatch.setattr(reaper, "reap", lambda: time.sleep(5) or [])
    started = time.monotonic()
    reaper.reap_quietly(budget_s=0.2)
    assert time.monotonic() - started < 2


# --- a real `sam3ops download` killed mid-way ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_killed_download_is_reaped_by_the_next_download_which_resumes(repo_folder, tmp_path, monkeypatch, capsys):
    with FakeHub() as hub:
        hub.add_repo(REPO, repo_folder)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        # 4 MiB of sam3.pt, then the connection drops; every later GET of it answers 503 with a
        # Retry-After of a minute, so the download sits mid-way until it is killed.
        hub.drop_after("sam3.pt", 4 * 1024 * 1024)
        hub.fail_with("sam3.pt", 503, times=10**6, retry_after=60, after=1)

        child = subprocess.Popen([sys.executable, "-m", "sam3ops", "download", "--include", "pt", "--output", "out"],
                                 env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        while len(hub.gets("sam3.pt")) < 2 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        stalled = len(hub.gets("sam3.pt")) >= 2
        assert stalled, child.stderr.read().decode()[-3000:] if child.poll() is not None else "no stall"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
        parts = list((tmp_path / "out" / transfer.PART_DIR).glob("sam3.pt.*.part"))
        assert len(parts) == 1 and parts[0].stat().st_size == 4 * 1024 * 1024
        [killed] = mlflow.search_runs(experiment_names=["sam3-download"], output_format="list")
        assert killed.info.status == "RUNNING"  # what MLflow alone leaves

        hub.reset_faults()
        code, _, err = run_cli(capsys, "download", "--include", "pt", "--output", "out")
        assert code == 0, err
        assert f"ended run {killed.info.run_id} (download, pid {child.pid})" in err
        ranges = [r.range for r in hub.gets("sam3.pt") if r.status == 206]
        assert ranges == [f"bytes={4 * 1024 * 1024}-"]  # the kept part was resumed, not fetched again

    runs = mlflow.search_runs(experiment_names=["sam3-download"], output_format="list")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert "was killed" in mlflow.get_run(killed.info.run_id).data.tags["error"]
    assert (tmp_path / "out" / "sam3.pt").stat().st_size == 12 * 1024 * 1024
