"""Tracking: where runs go, the run helper every stage uses, and reuse keys.

``from sam3ops import tracking`` gives the public helpers; the modules hold them by concept:
:mod:`store` (URIs, experiments, the tags every run carries), :mod:`run` (:func:`stage_run`),
:mod:`result` (what a stage returns), :mod:`reuse` (reuse keys), :mod:`ui` (links into the MLflow
UI), :mod:`reaper` (runs of killed processes ended, their staging removed), :mod:`redact` (secrets
out of logs) and :mod:`sysinfo` (environment tags).
"""

from sam3ops.tracking.run import log_new_params, one_line_error, stage_run
from sam3ops.tracking.store import (
    ERROR_TAG,
    STAGE_TAG,
    configure,
    embedded_uri,
    ensure_experiment,
    is_embedded,
    tracking_uri,
    workspace_root,
)

__all__ = ["ERROR_TAG", "STAGE_TAG", "configure", "embedded_uri", "ensure_experiment", "is_embedded",
           "log_new_params", "one_line_error", "stage_run", "tracking_uri", "workspace_root"]
