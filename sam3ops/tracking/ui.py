"""The MLflow UI addresses sam3ops prints: every one of them is built here.

Seen with MLflow 3.17 in headless Chromium: the UI's global "GenAI | Model training" switch defaults
to GenAI (and is kept in the browser, whatever the experiment's ``mlflow.experimentKind``), so a bare
``#/experiments/<id>`` opens a traces overview; ``?workflowType=machine_learning`` opens the runs
table. That table shows no metric or param column until one is picked, and nests child runs under
a collapsed parent unless it is filtered or sorted by something other than the start time. A
*shared view* (the UI's own "Share" button: an experiment tag ``mlflow.sharedViewState.<key>``
holding the table's state, opened by ``?viewStateShareKey=<key>``) opens it with the columns, filter
and sort already chosen: :func:`runs_link` writes one, or, where the tag cannot be written (a
read-only user of a team server), puts the filter and sort in the address instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

from sam3ops.errors import safe_url
from sam3ops.tracking.store import tracking_uri

# Where `mlflow ui` (and `mlflow server`) listens by default.
UI_LOCAL = "http://127.0.0.1:5000"
WORKFLOW = {"workflowType": "machine_learning"}  # the runs table, not the GenAI overview
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # what the UI's "Share" button writes
SHARED_VIEW_KEY_PREFIX = "sam3ops-"
# The run attribute the table keeps beside our columns: the logged models a run made or used.
DEFAULT_ATTRIBUTES = ("Models",)


def _serves_ui(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def ui_base(uri: str | None = None) -> str:
    """The MLflow UI's root for tracking ``uri`` (default: the current tracking URI).

    A tracking server serves its own UI (its URL without credentials or query); any other store
    (the embedded sqlite, a database, a folder) is opened with :func:`ui_command` on ``127.0.0.1:5000``.
    """
    uri = uri or tracking_uri()
    return safe_url(uri).rstrip("/") if _serves_ui(uri) else UI_LOCAL


def ui_command(uri: str | None = None, *, mlflow: str = "mlflow") -> str | None:
    """The ``mlflow ui`` command that serves a store no server serves (``None`` for a server URI).

    ``mlflow`` is the executable to name (``.venv/bin/mlflow`` where the venv is not activated).
    """
    uri = uri or tracking_uri()
    return None if _serves_ui(uri) else f"{mlflow} ui --backend-store-uri {safe_url(uri)}"


def ui_url(experiment_id: str, run_id: str | None = None, *, uri: str | None = None,
           query: dict[str, str] | None = None) -> str:
    """The link of an experiment's runs table (or of one run's page), in the model-training view.

    Args:
        experiment_id: the experiment.
        run_id: link this run's page instead of the table.
        uri: tracking URI (default: the current one).
        query: more of the table's state: ``viewStateShareKey``, ``searchFilter``, ``orderByKey``, ...
    """
    page = f"experiments/{experiment_id}/runs" + (f"/{run_id}" if run_id else "")
    return f"{ui_base(uri)}/#/{page}?{urlencode({**WORKFLOW, **(query or {})})}"


def column(kind: str, name: str) -> str:
    """The UI's key for a runs-table column: ``metrics.`ms_per_image```, ``params.`batch```, ..."""
    return f"{kind}.`{name}`"


def share_view(experiment_id: str, state: dict) -> str | None:
    """Store a runs-table view on the experiment as the UI's "Share" button does; return its key.

    The key is a hash of the state, so printing the same link twice writes the same tag. ``None``
    when the tag cannot be written (no write permission on a team server, for one): the caller then
    links without it.
    """
    import mlflow

    value = json.dumps(state, sort_keys=True, separators=(",", ":"))
    key = SHARED_VIEW_KEY_PREFIX + hashlib.sha256(value.encode()).hexdigest()[:16]
    try:
        experiment = mlflow.MlflowClient().get_experiment(experiment_id)
        if experiment.tags.get(SHARED_VIEW_TAG_PREFIX + key) != value:
            mlflow.MlflowClient().set_experiment_tag(experiment_id, SHARED_VIEW_TAG_PREFIX + key, value)
    except Exception:  # a link without the chosen columns beats no link, and a read-only user gets one
        return None
    return key


def runs_link(experiment_id: str, *, metrics: Sequence[str] = (), params: Sequence[str] = (),
              search: str | None = None, order_by: str | None = None, ascending: bool = True,
              uri: str | None = None) -> str:
    """A link that opens the experiment's runs table with these metric and param columns shown.

    Args:
        experiment_id: the experiment.
        metrics, params: the columns to show (params first, then metrics, then the model and dataset).
        search: an MLflow search filter, e.g. ``tags.`sam3ops.stage` = 'benchmark'``.
        order_by: a metric to sort by. Sorting by anything but the start time also lists child runs
            on their own rows instead of under a collapsed parent.
        ascending: the sort order.
        uri: tracking URI (default: the current one).
    """
    facets: dict[str, str] = {}
    if search:
        facets["searchFilter"] = search
    if order_by:
        facets["orderByKey"] = column("metrics", order_by)
        facets["orderByAsc"] = "true" if ascending else "false"
    columns = [column("params", p) for p in params] + [column("metrics", m) for m in metrics]
    columns += [column("attributes", a) for a in DEFAULT_ATTRIBUTES]
    state = {**facets, "selectedColumns": columns}
    if order_by:
        state["orderByAsc"] = ascending  # a boolean in the UI's own state, text in the address
    key = share_view(experiment_id, state) if columns else None
    # The UI ignores a shared view when the address carries search facets too: one or the other.
    return ui_url(experiment_id, uri=uri, query={"viewStateShareKey": key} if key else facets)


def with_command(link: str, uri: str | None = None, *, mlflow: str = "mlflow") -> str:
    """``link``, and the ``mlflow ui`` command that serves it first when no server does."""
    command = ui_command(uri, mlflow=mlflow)
    return f"{link}  (start the UI with: {command})" if command else link


def experiment_of_run(run_id: str) -> str | None:
    """The experiment id of ``run_id``, or ``None`` when the store does not have that run."""
    import mlflow

    with contextlib.suppress(Exception):
        return mlflow.MlflowClient().get_run(run_id).info.experiment_id
    return None
