"""Where runs go, and the one run helper every stage uses.

Without ``MLFLOW_TRACKING_URI`` runs go to an embedded sqlite store at the workspace root
(``mlflow.db``, model registry included) with artifacts beside it in ``mlruns/``; with it, to the
given server. :func:`stage_run` joins the run that ``mlflow run`` created (``MLFLOW_RUN_ID``) or
starts one in the stage's experiment, tags the environment, and never leaves a run RUNNING: any
error ends it FAILED with the one-line error as the ``error`` tag.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sam3ops import redact, sysinfo
from sam3ops.errors import Sam3opsError

log = logging.getLogger(__name__)

ERROR_TAG = "error"
STAGE_TAG = "sam3ops.stage"


def workspace_root() -> Path:
    """The folder that holds the embedded store and default paths.

    ``SAM3OPS_HOME`` if set; else the checkout this package lives in (it has an ``MLproject``);
    else the current directory.
    """
    if home := os.environ.get("SAM3OPS_HOME"):
        return Path(home).resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "MLproject").is_file():
        return checkout
    return Path.cwd()


def embedded_uri(root: Path | None = None) -> str:
    """The sqlite URI of the embedded store under ``root`` (default: the workspace root)."""
    return f"sqlite:///{(root or workspace_root()) / 'mlflow.db'}"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded sqlite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or embedded_uri()


def is_embedded(uri: str) -> bool:
    """True when ``uri`` is a local sqlite store (artifacts then live beside it)."""
    return uri.startswith("sqlite:")


def configure() -> str:
    """Point mlflow (tracking and registry) at :func:`tracking_uri`; return the URI."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(name: str) -> str:
    """Id of experiment ``name``, created if missing (artifacts beside the embedded store)."""
    import mlflow

    client = mlflow.MlflowClient()
    if experiment := client.get_experiment_by_name(name):
        return experiment.experiment_id
    artifact_location = None
    if is_embedded(mlflow.get_tracking_uri()):
        db_path = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///"))
        artifact_location = (db_path.parent / "mlruns" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:
        # Another process created it between our lookup and create: use theirs.
        if experiment := client.get_experiment_by_name(name):
            return experiment.experiment_id
        raise


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
        run = mlflow.start_run(experiment_id=ensure_experiment(f"sam3-{stage}"))
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
