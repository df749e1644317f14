"""End the runs of processes that were killed, and remove what those processes left on disk.

A process killed outright (``kill -9``, the kernel's out-of-memory killer) runs no ``finally``:
MLflow never ends its run, which stays RUNNING forever, and its staging folder (possibly gigabytes)
stays beside the output. So every run records who runs it (:func:`process_tags`: host, pid, the
process's start time so that a reused pid is not taken for the same process, and the pid namespace
so that a container with the same host name is not judged from outside), and the run helper records
the name prefix of each staging folder the process makes (``sam3ops.staging``), before it exists.
:func:`reap` finds this host's RUNNING runs whose process is gone, removes their staging folders
and ends them FAILED with an ``error`` tag; :func:`reap_quietly` does the same at the start of
every top-level stage, within a short time budget and never failing the stage.
``sam3ops doctor`` runs :func:`reap` on demand.

Kept on purpose: the download's ``.part`` files (``.cache/sam3ops/download`` under the output) and
files already downloaded, which the next download resumes, and a pull's ``.DEST.pull`` folder,
which the next pull of the same version resumes (and any other pull replaces). This module never
removes a path whose name does not carry the dead process's pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sam3ops.checkpoint.atomic import staging_owner

log = logging.getLogger(__name__)

HOST_TAG = "sam3ops.host"
PID_TAG = "sam3ops.pid"
STARTED_TAG = "sam3ops.pid_started"  # the process's start, seconds since the epoch (psutil's create_time)
PIDNS_TAG = "sam3ops.pid_namespace"
STAGING_TAG = "sam3ops.staging"  # JSON list of the staging folders' path prefixes (``<parent>/.<dest>.<label>-<pid>-``)
KILLED_TYPE = "ProcessKilled"
# How long the check at the start of a stage may take; past it the stage goes on without waiting.
AUTO_BUDGET_S = 3.0
# A reused pid starts long after the first; create_time is exact to a clock tick, so one second is ample.
_START_TOLERANCE_S = 1.0


def _pid_namespace() -> str | None:
    """This process's pid namespace (Linux), so pids are only compared inside one namespace."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def process_tags() -> dict[str, str]:
    """The tags that say which process runs a run: host, pid, start time and pid namespace."""
    import psutil

    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            STARTED_TAG: f"{psutil.Process().create_time():.2f}"}
    if namespace := _pid_namespace():
        tags[PIDNS_TAG] = namespace
    return tags


def process_alive(pid: int, started: float | None) -> bool:
    """True when process ``pid`` runs and (when ``started`` is known) is the one that started then.

    A zombie (killed, not yet waited for by its parent) counts as gone: it will never end its run.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < _START_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists, but we may not look at it (another user's): assume it is alive
        return True


@dataclass
class Reaped:
    """One run ended because its process was gone, and what was cleaned up after it."""

    run_id: str
    stage: str
    pid: int
    removed: list[Path] = field(default_factory=list)
    restored: list[Path] = field(default_factory=list)  # a folder put back where a killed rename had left it

    def lines(self) -> list[str]:
        """What was done, one line each (``sam3ops doctor`` prints these)."""
        lines = [f"ended run {self.run_id} ({self.stage}, pid {self.pid}) as FAILED: its process was killed"]
        lines += [f"removed {path}" for path in self.removed]
        lines += [f"restored {path}" for path in self.restored]
        return lines


def killed_message(pid: int, host: str) -> str:
    """The ``error`` tag of a run whose process is gone."""
    return (f"the process (pid {pid} on {host}) was killed before it could end this run, perhaps out of "
            f"memory (SIGKILL, the kernel's OOM killer)")


def recorded_staging(tags: dict[str, str]) -> list[Path]:
    """The staging folders that exist now under the prefixes a run's tags recorded (empty when none)."""
    prefixes: list[str] = []
    with contextlib.suppress(ValueError, TypeError):
        prefixes = [p for p in json.loads(tags.get(STAGING_TAG, "[]")) if isinstance(p, str) and p]
    found = []
    for prefix in dict.fromkeys(prefixes):
        parent, name = Path(prefix).parent, Path(prefix).name
        with contextlib.suppress(OSError):
            found += sorted(path for path in parent.iterdir() if path.name.startswith(name))
    return found


def clean_staging(paths: list[Path], pid: int) -> tuple[list[Path], list[Path]]:
    """Remove the folders among ``paths`` that process ``pid`` made and left; returns (removed, restored).

    Only a folder whose name carries ``pid`` is touched. The ``old`` folder of a replacement that was
    killed between its two renames holds the only copy of the destination: it is put back when the
    destination is missing, removed otherwise.
    """
    removed, restored = [], []
    for path in paths:
        owner = staging_owner(path)
        if owner is None or owner.pid != pid or not path.is_dir():
            continue  # not ours to judge, or already gone (renamed into place, or cleaned)
        if owner.label == "old" and not owner.destination.exists():
            with contextlib.suppress(OSError):
                path.rename(owner.destination)
                restored.append(owner.destination)
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    return removed, restored


def _runs_here(client) -> list:
    """This host's RUNNING runs that carry a pid, in every active experiment."""
    host = socket.gethostname().replace("'", "")
    experiment_ids, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiment_ids += [e.experiment_id for e in page]
        if not (token := page.token):
            break
    if not experiment_ids:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids,
                                  filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
                                  max_results=1000, page_token=token)
        runs += list(page)
        if not (token := page.token):
            return runs


def reap(client=None) -> list[Reaped]:
    """End this host's RUNNING runs whose process is gone as FAILED and remove their staging folders.

    Args:
        client: an ``MlflowClient`` (default: one for the configured store).

    Returns:
        One :class:`Reaped` per run ended (empty when there was nothing to do).

    Raises:
        Whatever MLflow raises when the store cannot be searched (callers translate it).
    """
    import mlflow

    from sam3ops.tracking.store import ERROR_TAG, STAGE_TAG

    client = client or mlflow.MlflowClient()
    namespace, done = _pid_namespace(), []
    for run in _runs_here(client):
        tags = run.data.tags
        try:
            pid = int(tags[PID_TAG])
            started = float(tags[STARTED_TAG]) if STARTED_TAG in tags else None
        except (KeyError, ValueError):
            continue
        if tags.get(PIDNS_TAG) != namespace or process_alive(pid, started):
            continue  # another container's process (its pids mean nothing here), or still running
        removed, restored = clean_staging(recorded_staging(tags), pid)
        client.set_tag(run.info.run_id, ERROR_TAG, killed_message(pid, tags.get(HOST_TAG, "?")))
        client.set_tag(run.info.run_id, "error_type", KILLED_TYPE)
        client.set_terminated(run.info.run_id, "FAILED")
        done.append(Reaped(run.info.run_id, tags.get(STAGE_TAG, "?"), pid, removed, restored))
    return done


def reap_quietly(budget_s: float = AUTO_BUDGET_S) -> None:
    """:func:`reap`, for the start of a stage: logs what it did, never raises, waits at most ``budget_s``.

    A slow store is left to finish in the background (a daemon thread) rather than delay the stage.
    """
    def work() -> None:
        try:
            for reaped in reap():
                for line in reaped.lines():
                    log.info("%s", line)
        except Exception as exc:  # a failed clean-up must never fail the command that triggered it
            log.debug("could not look for killed runs: %s", exc)

    thread = threading.Thread(target=work, name="sam3ops-reaper", daemon=True)
    thread.start()
    thread.join(budget_s)
    if thread.is_alive():
        log.debug("the look for killed runs took over %.1f s; going on without it", budget_s)
