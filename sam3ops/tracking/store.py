"""Where runs go.

Without ``MLFLOW_TRACKING_URI`` runs go to an embedded sqlite store at the workspace root
(``mlflow.db``, model registry included) with artifacts beside it in ``mlruns/``; with it, to the
given server. One experiment per stage (``sam3-<stage>``), tagged as model development so the
MLflow UI treats it as such (the links that open it are :mod:`sam3ops.tracking.ui`'s).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# MLflow 3's UI reads this experiment tag to tell model training from GenAI experiments.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# A run that `mlflow run` filed outside its stage's experiment carries the experiment it belongs to.
EXPERIMENT_TAG = "sam3ops.experiment"

# The tags every run of a stage carries: its stage, and (for a failed run) its one-line error.
ERROR_TAG = "error"
STAGE_TAG = "sam3ops.stage"


def workspace_root() -> Path:
    """The folder that holds the embedded store and default paths.

    ``SAM3OPS_HOME`` if set; else the checkout this package lives in (it has an ``MLproject``);
    else the current directory.
    """
    if home := os.environ.get("SAM3OPS_HOME"):
        return Path(home).resolve()
    checkout = Path(__file__).resolve().parents[2]  # sam3ops/tracking/store.py -> the checkout
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


def experiment_name(stage: str) -> str:
    """The experiment a stage's runs go to (``sam3-<stage>``), so runs of one kind compare side by side."""
    return f"sam3-{stage}"


def ensure_experiment(name: str) -> str:
    """Id of experiment ``name``, created if missing (artifacts beside the embedded store).

    The experiment is tagged ``mlflow.experimentKind=custom_model_development``, also when it exists
    without the tag (made by an older sam3ops, or by ``mlflow run --experiment-name``); a kind someone
    set by hand is kept.
    """
    import mlflow

    client = mlflow.MlflowClient()
    if experiment := client.get_experiment_by_name(name):
        _ensure_kind(client, experiment)
        return experiment.experiment_id
    artifact_location = None
    if is_embedded(mlflow.get_tracking_uri()):
        db_path = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///"))
        artifact_location = (db_path.parent / "mlruns" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except Exception:
        # Another process created it between our lookup and create: use theirs.
        if experiment := client.get_experiment_by_name(name):
            _ensure_kind(client, experiment)
            return experiment.experiment_id
        raise


def _ensure_kind(client, experiment) -> None:
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def file_joined_run(stage: str, run) -> None:
    """Check where ``mlflow run`` put the run a stage joined (``MLFLOW_RUN_ID``).

    MLproject cannot choose the experiment and MLflow cannot move a run, so a run made without
    ``--experiment-name`` stays in ``Default``. In its stage's experiment the run only makes sure
    the experiment has its kind; elsewhere it gets the ``sam3ops.experiment`` tag (a search over all
    experiments finds it) and one log line says where it went and how to file such runs next time.
    """
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_experiment(run.info.experiment_id)
    wanted = experiment_name(stage)
    if experiment.name == wanted:
        _ensure_kind(client, experiment)
        return
    mlflow.set_tag(EXPERIMENT_TAG, wanted)
    entry = run.data.tags.get("mlflow.project.entryPoint", "<entry point>")
    log.warning("run %s went to experiment %r, not %r (tagged %s=%s); to file such runs with the others: "
                "mlflow run . -e %s --experiment-name %s, or export MLFLOW_EXPERIMENT_NAME=%s",
                run.info.run_id, experiment.name, wanted, EXPERIMENT_TAG, wanted, entry, wanted, wanted)

