"""Promotion: point an alias (``production``) at a version, roll it back, and record who, when, why.

Aliases, never the deprecated stages. The old holder of ``production`` keeps ``previous-production``,
and :func:`rollback` swaps the two. Refused: failed parity, random weights (unless allowed), a
TensorRT engine built for another GPU than the declared target.

MLflow sets an alias last-writer-wins and has no compare-and-set, so promotions and rollbacks of one
model take turns under its lock (:mod:`sam3ops.registry.lock`). Under the lock a promotion reads the
holder, moves ``previous-<alias>`` then ``<alias>``, re-reads to verify, and records the move in a
``history.<time>.<id>`` tag of the model, tags on the version and a run in ``sam3-promote``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass

from sam3ops import tracking
from sam3ops.errors import PromotionConflictError, PromotionRefusedError, RegistryNotFoundError, UsageError
from sam3ops.registry.client import (
    DEFAULT_ALIAS,
    DEFAULT_NAME,
    ENGINE_FORMATS,
    NOT_FOUND_CODES,
    client,
    error_code,
    now,
    require_model,
    resolve_version,
    who,
)
from sam3ops.registry.lock import model_lock

log = logging.getLogger(__name__)

PREVIOUS = "previous-"
PASSING = ("pass", "reference")  # "reference": the fp32 source checkpoint itself, nothing to compare


@dataclass
class PromoteResult:
    """What a promotion or rollback changed."""

    name: str
    alias: str
    version: str
    previous: str | None  # the version that now holds previous-<alias>
    action: str  # promote | rollback | unchanged
    by: str = ""
    at: str = ""
    reason: str = ""
    run_id: str | None = None


def _holder(mlflow_client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        # str(): the REST store gives "3", the SQL store (embedded sqlite) 3
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            return None
        raise


def check_promotable(tags: dict[str, str], *, version: str, allow_random: bool, target_gpu: str | None) -> None:
    """The refusals of :func:`promote`, as a pure function of the version's tags.

    Raises:
        PromotionRefusedError: failed/missing parity, random weights, engine for another GPU.
    """
    parity = tags.get("parity", "")
    if parity not in PASSING:
        raise PromotionRefusedError(
            f"version {version} {'failed the parity gate' if parity == 'fail' else 'has no passing parity result'}: "
            "it cannot be promoted", hint="promote a version whose parity tag is pass")
    if tags.get("weights_random") == "true" and not allow_random:
        raise PromotionRefusedError(f"version {version} has RANDOM weights (a preset, not the real SAM3)",
                                    hint="promote a version made from downloaded weights, or pass --allow-random "
                                         "(tests and demos only)")
    if tags.get("format") in ENGINE_FORMATS:
        built_for = tags.get("gpu_name", "unknown")
        if not target_gpu:
            raise PromotionRefusedError(f"version {version} is a TensorRT engine built for {built_for}: "
                                        "declare the GPU the backend runs on",
                                        hint="pass --target-gpu NAME (e.g. 'H100')")
        if not gpu_matches(built_for, target_gpu):
            raise PromotionRefusedError(
                f"version {version} is a TensorRT engine built for {built_for}, not the target {target_gpu}",
                hint="build the engine on the target GPU (sam3ops convert --format tensorrt there) and promote that")


def gpu_matches(built_for: str, target: str) -> bool:
    """Case-insensitive; a part of the name is enough ('H100' matches 'NVIDIA H100 80GB HBM3')."""
    built, wanted = " ".join(built_for.lower().split()), " ".join(target.lower().split())
    return bool(wanted) and (wanted == built or wanted in built)


def promote(*, version: str | int, name: str = DEFAULT_NAME, alias: str = DEFAULT_ALIAS, allow_random: bool = False,
            target_gpu: str | None = None, reason: str = "", nested: bool = False) -> PromoteResult:
    """Point ``alias`` at ``version`` (the old holder keeps ``previous-<alias>``), in a ``promote`` run
    (``nested``: a child of the active run).

    Raises:
        RegistryNotFoundError: no such model or version.
        PromotionRefusedError: see :func:`check_promotable`.
        PromotionConflictError: another promotion held the lock too long.
    """
    version = str(version)
    if alias.startswith(PREVIOUS):
        raise UsageError(f"alias {alias!r} is kept by promote itself", hint="promote to production (or another alias)")
    mv = resolve_version(name=name, version=version)
    params = {"name": name, "version": version, "alias": alias, "allow_random": allow_random,
              "target_gpu": target_gpu or "", "reason": reason}
    with tracking.stage_run("promote", params=params, tags={"registered_model": name}, nested=nested) as run:
        check_promotable(dict(mv.tags), version=version, allow_random=allow_random, target_gpu=target_gpu)
        result = _move_alias(name=name, alias=alias, version=version, reason=reason, action="promote")
        result.run_id = run.info.run_id
        _tag_run(result)
    return result


def rollback(*, name: str = DEFAULT_NAME, alias: str = DEFAULT_ALIAS, reason: str = "",
             nested: bool = False) -> PromoteResult:
    """Give ``alias`` back to the holder of ``previous-<alias>`` (the two swap), in a ``promote`` run.

    Raises:
        RegistryNotFoundError: no such model, or nothing to roll back to.
    """
    mlflow_client = client()
    require_model(mlflow_client, name)
    params = {"name": name, "alias": alias, "reason": reason, "action": "rollback"}
    with tracking.stage_run("promote", params=params, tags={"registered_model": name}, nested=nested) as run:
        result = _move_alias(name=name, alias=alias, version=None, reason=reason, action="rollback")
        result.run_id = run.info.run_id
        _tag_run(result)
    return result


def _tag_run(result: PromoteResult) -> None:
    import mlflow

    mlflow.set_tags({"action": result.action, "version": result.version, "alias": result.alias,
                     "previous_version": result.previous or "none", "by": result.by, "reason": result.reason})


def _move_alias(*, name: str, alias: str, version: str | None, reason: str, action: str) -> PromoteResult:
    """Under the model's lock: read the holder, move the aliases, verify, record. ``version`` None
    means roll back to ``previous-<alias>``."""
    mlflow_client = client()
    previous_alias = f"{PREVIOUS}{alias}"
    by, at = who(), now()
    with model_lock(mlflow_client, name) as token:
        current = _holder(mlflow_client, name, alias)
        if version is None:
            version = _holder(mlflow_client, name, previous_alias)
            if version is None:
                raise RegistryNotFoundError(f"model {name!r} has no {previous_alias} version to roll back to",
                                            hint=f"promote a version with --alias {alias} instead")
        if current == version:
            return PromoteResult(name, alias, version, _holder(mlflow_client, name, previous_alias), "unchanged",
                                 by, at, reason)
        # previous first: a crash between the two calls leaves production where it was.
        if current is not None:
            mlflow_client.set_registered_model_alias(name, previous_alias, current)
        mlflow_client.set_registered_model_alias(name, alias, version)
        if _holder(mlflow_client, name, alias) != version:  # cannot happen under the lock; say so if it does
            raise PromotionConflictError(f"alias {alias!r} of {name!r} moved during our {action}")
        stamp = {"by": by, "at": at, "reason": reason}
        done = {"promote": "promoted", "rollback": "rolled_back"}[action]
        for key, value in {f"{done}_to": alias, f"{done}_by": by, f"{done}_at": at,
                           f"{action}_reason": reason or "-"}.items():
            mlflow_client.set_model_version_tag(name, version, key, value)
        record = {"action": action, "alias": alias, "version": version, "previous": current, **stamp}
        # Sortable and unique: two promotions in one second still get two records.
        key = f"history.{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}.{token[:8]}"
        mlflow_client.set_registered_model_tag(name, key, json.dumps(record))
    log.info("%s: %s@%s -> version %s (was %s)", action, name, alias, version, current)
    return PromoteResult(name, alias, version, current, action, by, at, reason)


def history(name: str = DEFAULT_NAME) -> list[dict]:
    """Every promotion and rollback of ``name`` recorded in its tags, oldest first."""
    mlflow_client = client()
    model = require_model(mlflow_client, name)
    records = []
    for key, value in sorted(model.tags.items()):  # keys sort by time, to the microsecond
        if key.startswith("history."):
            with contextlib.suppress(ValueError):
                records.append(json.loads(value))
    return records
