"""Reuse keys: a stage whose inputs and parameters match an earlier FINISHED run is not run again.

A key is the sha256 of the stage's name, parameters and input digests (a weights folder's digest is
that of its manifest's entries, so renaming or copying a folder keeps its key).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sam3ops.checkpoint.manifest import Manifest

KEY_TAG = "sam3ops.input_key"


def folder_digest(folder: Path) -> str:
    """What a weights folder holds, as the sha256 of its manifest's file entries."""
    manifest = Manifest.read(Path(folder))
    entries = sorted((f.path, f.sha256) for f in manifest.files)
    return hashlib.sha256(json.dumps([manifest.commit, entries]).encode()).hexdigest()


def stage_key(stage: str, **inputs) -> str:
    """The reuse key of a stage: its name, parameters and input digests."""
    return hashlib.sha256(json.dumps({"stage": stage, **inputs}, sort_keys=True, default=str).encode()).hexdigest()


def find_reusable(key: str):
    """The newest FINISHED run of any experiment tagged with ``key``, or None."""
    import mlflow

    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`{KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    return runs[0] if runs else None


def mark(run_id: str, key: str) -> None:
    """Tag run ``run_id`` with reuse key ``key``, so a later identical stage can reuse it."""
    import mlflow

    mlflow.MlflowClient().set_tag(run_id, KEY_TAG, key)
