"""The one run helper every stage uses.

:func:`stage_run` joins the run that ``mlflow run`` created (``MLFLOW_RUN_ID``) or
starts one in the stage's experiment, tags the environment, and never leaves a run RUNNING: any
error ends it FAILED with the one-line error as the ``error`` tag.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from sam3ops.errors import Sam3opsError
from sam3ops.tracking import redact, sysinfo
from sam3ops.tracking.store import configure, ensure_experiment, experiment_name, workspace_root

log = logging.getLogger(__name__)

ERROR_TAG = "error"
STAGE_TAG = "sam3ops.stage"


def one_line_error(exc: BaseException) -> str:
    """A redacted single line describing ``exc`` (its hint included for our own errors)."""
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
) -> Iterator[Any]:
    """Run a stage inside an MLflow run that always ends FINISHED or FAILED.

    Args:
        stage: stage name; the experiment is ``sam3-<stage>`` unless ``mlflow run`` chose the run.
        params: logged as run params (as given on the command line, so they agree with the params
            ``mlflow run`` logged for the same run).
        tags: extra tags.
        nested: start a child of the active run (used by the pipeline).
        run_name: the child run's name (default: the stage).

    Yields:
        The active ``mlflow.ActiveRun``.
    """
    import mlflow

    configure()
    run_id = None if nested else os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        run = mlflow.start_run(run_id=run_id)
    elif nested and (parent := mlflow.active_run()):
        # Children stay in the parent's experiment, where the UI shows them under it. mlflow.start_run
        # resumes MLFLOW_RUN_ID (set by `mlflow run` for the parent) when given no run id: hide it.
        with _env_without("MLFLOW_RUN_ID"):
            run = mlflow.start_run(experiment_id=parent.info.experiment_id, nested=True,
                                   run_name=run_name or stage)
    else:
        run = mlflow.start_run(experiment_id=ensure_experiment(experiment_name(stage)))
    status = "FAILED"
    try:
        mlflow.set_tags({STAGE_TAG: stage, **sysinfo.environment_tags(workspace_root()), **(tags or {})})
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
        mlflow.end_run(status)
        log.info("mlflow run %s ended %s", run.info.run_id, status)
