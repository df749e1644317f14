"""The one run helper every stage uses.

:func:`stage_run` joins the run that ``mlflow run`` created (``MLFLOW_RUN_ID``) or
starts one in the stage's experiment, tags the environment, and never leaves a run RUNNING: any
error ends it FAILED with the one-line error as the ``error`` tag. A process killed outright cannot
do that, so each run also records its process and the staging folders it makes, and a top-level
stage first ends the runs of this host's killed processes (:mod:`sam3ops.tracking.reaper`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sam3ops.checkpoint import atomic
from sam3ops.errors import Sam3opsError, tracking_error
from sam3ops.tracking import reaper, redact, sysinfo
from sam3ops.tracking.store import (
    ERROR_TAG,
    STAGE_TAG,
    configure,
    ensure_experiment,
    experiment_name,
    file_joined_run,
    workspace_root,
)

log = logging.getLogger(__name__)

# MLflow keeps 8000 characters of a tag value; the newest staging prefixes matter (the older ones'
# folders were most likely renamed into place or removed), so the oldest are dropped past this.
_STAGING_TAG_CHARS = 6000

_open_runs: list[str] = []  # this process's stage runs, innermost last: staging folders go to the last
_staged: dict[str, list[str]] = {}
_staged_lock = threading.Lock()


def _record_staging(prefix: Path) -> None:
    """Note a staging folder's path prefix on the innermost open run (``sam3ops.staging``), for the reaper."""
    import mlflow

    with _staged_lock:
        if not _open_runs:
            return
        run_id = _open_runs[-1]
        paths = _staged.setdefault(run_id, [])
        if (entry := str(Path(prefix).absolute())) in paths:
            return
        paths.append(entry)
        while len(paths) > 1 and len(json.dumps(paths)) > _STAGING_TAG_CHARS:
            paths.pop(0)
        value = json.dumps(paths)
    mlflow.MlflowClient().set_tag(run_id, reaper.STAGING_TAG, value)


atomic.add_staging_listener(_record_staging)


def one_line_error(exc: BaseException) -> str:
    """A redacted single line describing ``exc`` (its hint included for our own errors, and for a
    tracking server's failure: the same line the CLI prints)."""
    if not isinstance(exc, Sam3opsError):
        exc = tracking_error(exc) or exc
    if isinstance(exc, Sam3opsError):
        text = exc.one_line()
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact.redact(" ".join(text.split()))[:4000]


def _clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: redact.redact(str(value)) for key, value in params.items() if value is not None}


def log_new_params(params: Mapping[str, Any]) -> None:
    """Log the ``params`` the active run does not have yet (redacted; ``None`` values skipped).

    `mlflow run` already logged its -P values for the run, and params are immutable: only the keys
    it did not log are added (ours may spell the same value differently, e.g. ``-P seed=00``).
    """
    import mlflow

    already = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    if fresh := {k: v for k, v in _clean_params(params).items() if k not in already}:
        mlflow.log_params(fresh)


@contextlib.contextmanager
def _env_without(name: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


@contextlib.contextmanager
def stage_run(
    stage: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
    run_name: str | None = None,
    log_system_metrics: bool | None = None,
) -> Iterator[Any]:
    """Run a stage inside an MLflow run that always ends FINISHED or FAILED.

    Args:
        stage: stage name; the experiment is ``sam3-<stage>`` unless ``mlflow run`` chose the run.
        params: logged as run params (as given on the command line, so they agree with the params
            ``mlflow run`` logged for the same run).
        tags: extra tags.
        nested: start a child of the active run (used by the pipeline).
        run_name: the child run's name (default: the stage).
        log_system_metrics: passed to ``mlflow.start_run`` (``None``: MLflow's
            ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` decides).

    Yields:
        The active ``mlflow.ActiveRun``.
    """
    import mlflow

    configure()
    if not nested:  # the next command on this host cleans up after a killed one (never fails, bounded)
        reaper.reap_quietly()
    run_id = None if nested else os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        run = mlflow.start_run(run_id=run_id, log_system_metrics=log_system_metrics)
    elif nested and (parent := mlflow.active_run()):
        # Children stay in the parent's experiment, where the UI shows them under it. mlflow.start_run
        # resumes MLFLOW_RUN_ID (set by `mlflow run` for the parent) when given no run id: hide it.
        with _env_without("MLFLOW_RUN_ID"):
            run = mlflow.start_run(experiment_id=parent.info.experiment_id, nested=True,
                                   run_name=run_name or stage, log_system_metrics=log_system_metrics)
    else:
        run = mlflow.start_run(experiment_id=ensure_experiment(experiment_name(stage)),
                               log_system_metrics=log_system_metrics)
    status = "FAILED"
    _open_runs.append(run.info.run_id)
    try:
        # Who runs it, first and on its own: the environment tags import torch (seconds to be killed in).
        mlflow.set_tags({STAGE_TAG: stage, **reaper.process_tags()})
        mlflow.set_tags({STAGE_TAG: stage, **sysinfo.environment_tags(workspace_root()), **(tags or {})})
        if run_id:  # `mlflow run` chose the experiment (Default without --experiment-name): say so, tag it
            file_joined_run(stage, run)
        if params:
            log_new_params(params)
        yield run
        status = "FINISHED"
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):  # the original error matters more than a tag
            mlflow.set_tags({ERROR_TAG: one_line_error(exc), "error_type": type(exc).__name__})
        raise
    finally:
        with _staged_lock:
            _open_runs.remove(run.info.run_id)
            _staged.pop(run.info.run_id, None)
        mlflow.end_run(status)
        log.info("mlflow run %s ended %s", run.info.run_id, status)
