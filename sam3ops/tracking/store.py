"""Where runs go.

Without ``MLFLOW_TRACKING_URI`` runs go to an embedded sqlite store at the workspace root
(``mlflow.db``, model registry included) with artifacts beside it in ``mlruns/``; with it, to the
given server. One experiment per stage (``sam3-<stage>``).
"""

from __future__ import annotations

import os
from pathlib import Path


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
