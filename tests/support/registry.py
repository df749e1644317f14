"""Helpers for the registry tests: runs made directly on a tracking server, sample images, and the
server-side copy of a version's files."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import numpy as np

from sam3ops import tracking
from sam3ops.registry.client import client

ENGINE_TAGS = {"format": "tensorrt", "precision": "fp16", "gpu_name": "NVIDIA H100 80GB HBM3",
               "compute_capability": "9.0", "trt_version": "10.9.0.34"}


def point_at(patch, uri: str) -> None:
    """Point this process's MLflow (environment and in-process URIs) at ``uri``, undone with ``patch``."""
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def fake_run(tags: dict, *, status: str = "FINISHED", weights: Path | None = None,
             experiment: str = "sam3-convert") -> str:
    """A run with the tags (and ``weights/`` artifacts) a stage would leave, made directly; its id."""
    mlflow_client = client()
    run = mlflow_client.create_run(tracking.ensure_experiment(experiment), tags=tags)
    if weights is not None:
        mlflow_client.log_artifacts(run.info.run_id, str(weights), "weights")
    if status != "RUNNING":
        mlflow_client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def logged_weights(run_id: str) -> set[str]:
    """``weights/<path>`` of every file in the logged model that run ``run_id`` made (tag ``model_id``)."""
    model = mlflow.get_logged_model(mlflow.get_run(run_id).data.tags["model_id"])
    root = f"{model.artifact_location.rstrip('/')}/artifacts/weights"
    found, pending = set(), [""]
    while pending:
        prefix = pending.pop()
        for info in mlflow.artifacts.list_artifacts(artifact_uri=f"{root}/{prefix}".rstrip("/")):
            rel = f"{prefix}/{Path(info.path).name}".lstrip("/")
            (pending.append(rel) if info.is_dir else found.add(f"weights/{rel}"))
    return found


def convert_run_of(folder: Path, *, format: str = "fp16", precision: str = "fp16") -> str:
    """A finished convert run that logged ``folder`` as a logged model of its own: for a test that
    alters a version's stored files (versions of one run share its model's files)."""
    from sam3ops.registry.logged import log_weights_model

    with tracking.stage_run("convert", tags={"format": format, "precision": precision, "parity": "pass"}) as run:
        log_weights_model(folder, format=format, precision=precision, tags={"parity": "pass"})
    return run.info.run_id


def image_bytes(name: str = "astronaut") -> bytes:
    """A sample photo as PNG bytes."""
    from sam3ops.predict.samples import sample_image

    buffer = io.BytesIO()
    sample_image(name).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_masks(prediction: dict) -> np.ndarray:
    """The COCO RLE masks of one pyfunc prediction as an (instances, height, width) array."""
    from pycocotools import mask as coco_mask

    return np.stack([coco_mask.decode({"size": m["size"], "counts": m["counts"].encode()})
                     for m in prediction["masks"]])


def stored(server, version, rel: str) -> Path:
    """The file ``rel`` of a version's weights, in the server's artifact folder."""
    model_id = version.source.removeprefix("models:/")
    found = list(server.artifacts.rglob(f"{model_id}/artifacts/artifacts/weights/{rel}"))
    assert len(found) == 1, found
    return found[0]
