"""The promotion lock of a registered model: promotions and rollbacks of one model take turns.

MLflow sets an alias last-writer-wins and has no compare-and-set, so the lock is a registered model
named ``<name>.promotion-lock``, whose creation is atomic in every registry store (the name is its
primary key). A lock older than its TTL was left by a crashed process and is broken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import uuid

from sam3ops.errors import PromotionConflictError
from sam3ops.registry.client import error_code, who

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"
LOCK_TIMEOUT_ENV = "SAM3OPS_LOCK_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 60.0
LOCK_TTL_S = 120.0  # a lock older than this was left by a crashed process: broken


@contextlib.contextmanager
def model_lock(mlflow_client, name: str, *, timeout: float | None = None, ttl: float = LOCK_TTL_S):
    """Hold the promotion lock of model ``name`` (a registered model ``<name>.promotion-lock``).

    Creating a registered model is atomic in every MLflow registry store, so exactly one process
    holds the lock. A lock older than ``ttl`` seconds (its holder died) is broken.

    Args:
        mlflow_client: the client to take the lock with.
        name: the registered model the lock guards.
        timeout: how long to wait for it (default ``SAM3OPS_LOCK_TIMEOUT_S`` or 60 seconds).
        ttl: the age past which a lock counts as abandoned.

    Yields:
        The token of our lock (its ``sam3ops.lock`` tag).

    Raises:
        PromotionConflictError: the lock stayed held for ``timeout`` seconds.
    """
    from mlflow.exceptions import MlflowException

    lock, token = f"{name}{LOCK_SUFFIX}", uuid.uuid4().hex
    if timeout is None:
        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    deadline = time.monotonic() + timeout
    while True:
        try:
            mlflow_client.create_registered_model(
                lock, tags={"sam3ops.lock": token, "acquired_at": f"{time.time():.3f}", "holder": who()},
                description=f"Transient lock of sam3ops promote/rollback on {name!r}; "
                            f"safe to delete when older than {ttl:.0f} s.")
            break
        except MlflowException as exc:
            if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
        with contextlib.suppress(MlflowException):  # released between our create and this read: try again
            held = mlflow_client.get_registered_model(lock)
            age = time.time() - float(held.tags.get("acquired_at", "0") or 0)
            if age > ttl:
                log.warning("breaking a stale promotion lock on %s (held by %s for %.0f s)", name,
                            held.tags.get("holder", "?"), age)
                # Only the lock we judged stale: another breaker may already have replaced it with its
                # own (a re-read narrows that race to milliseconds; the store offers no delete-if).
                if mlflow_client.get_registered_model(lock).tags.get("sam3ops.lock") == held.tags.get("sam3ops.lock"):
                    mlflow_client.delete_registered_model(lock)
                continue
        if time.monotonic() > deadline:
            raise PromotionConflictError(f"another promotion of {name!r} held its lock for over {timeout:.0f} s")
        time.sleep(0.1 + random.random() * 0.2)
    try:
        yield token
    finally:
        with contextlib.suppress(MlflowException):
            if mlflow_client.get_registered_model(lock).tags.get("sam3ops.lock") == token:
                mlflow_client.delete_registered_model(lock)
