"""Telling apart MLflow failures that carry neither an error code nor a cause: by the frame raised in."""

from __future__ import annotations

import traceback


def raised_by_multipart_upload(exc: BaseException) -> bool:
    """True when ``exc`` was raised by MLflow's proxied multipart upload (a part failed on its way to S3).

    The MlflowException raised there has no error code of its own and no cause (each part's error is
    in its text as a string, presigned URLs included), so only the frame tells it apart.
    """
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    code = HttpArtifactRepository._try_multipart_upload.__code__
    return any(frame.f_code is code for frame, _ in traceback.walk_tb(exc.__traceback__))
