"""Registering: a converted (or source) checkpoint becomes a version of the registered model.

One registered model (default ``sam3``) whose versions are formats. Each version is an MLflow pyfunc
model (:mod:`sam3ops.registry.pyfunc`) with the weights folder inside as the artifact ``weights``
and the tags of :mod:`sam3ops.registry.tags`. Moving the aliases is :mod:`sam3ops.registry.promotion`;
pulling a version's files is :mod:`sam3ops.registry.download`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sam3ops import tracking
from sam3ops.checkpoint.manifest import verify_folder
from sam3ops.errors import RegistrationRefusedError, RegistryNotFoundError, WeightsError
from sam3ops.registry.client import (
    DEFAULT_NAME,
    NOT_FOUND_CODES,
    client,
    error_code,
    quote,
    require_model,
    tracking_failure,
    where,
)
from sam3ops.registry.tags import benchmark_tags, version_tags

WEIGHTS_STAGES = ("download", "init")  # the stages whose run wrote a source checkpoint folder


@dataclass
class RegisterResult:
    """A registered version and where it came from."""

    name: str
    version: str
    source_run_id: str
    tags: dict[str, str]
    reused: bool = False  # the run was registered before: that version is returned
    register_run_id: str | None = None


@dataclass
class VersionInfo:
    """One version as ``sam3ops versions`` shows it."""

    version: str
    aliases: list[str]
    tags: dict[str, str]


def list_versions(name: str = DEFAULT_NAME) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with their aliases and tags.

    Raises:
        RegistryNotFoundError: no such registered model.
    """
    mlflow_client = client()
    model = require_model(mlflow_client, name)
    # search_model_versions leaves ModelVersion.aliases empty: the model's alias map has them.
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(model.aliases.items()):
        by_version.setdefault(str(version), []).append(alias)
    versions = mlflow_client.search_model_versions(f"name = '{quote(name)}'")
    return [VersionInfo(str(v.version), by_version.get(str(v.version), []), dict(v.tags))
            for v in sorted(versions, key=lambda v: int(v.version), reverse=True)]


def register(*, run_id: str, name: str = DEFAULT_NAME, nested: bool = False) -> RegisterResult:
    """Register what run ``run_id`` produced as a new version of ``name``, in a ``register`` run.

    A convert run's ``weights/`` artifacts, or the folder a download/init run wrote (checked against
    the manifest that run logged). Registering the same run again returns its existing version.

    Args:
        run_id: the source run.
        name: the registered model (created on first use).
        nested: run as a child of the active run (as in the pipeline).

    Returns:
        The version, its tags, and whether it was registered before (``reused``).

    Raises:
        RegistryNotFoundError: no such run.
        RegistrationRefusedError: failed parity, unfinished run, not a weights or convert run.
        WeightsError / IntegrityError: the files do not match their manifest.
        TrackingUnreachableError / TrackingAuthError / RegistryError: the tracking server failed
            while we checked whether the run is registered already (nothing is registered).
    """
    import mlflow

    from sam3ops.checkpoint.manifest import file_hashes
    from sam3ops.registry.pyfunc import ENTRY_FILE, WEIGHTS_ARTIFACT, input_example, signature

    mlflow_client = client()
    source = _source_run(mlflow_client, run_id)
    stage = _check_registrable(source)
    if (existing := _registered_version(mlflow_client, name, run_id)) is not None:
        return RegisterResult(name, str(existing.version), run_id, dict(existing.tags), reused=True)

    with tempfile.TemporaryDirectory(prefix="sam3ops-register-") as tmp:
        weights = _gather_weights(mlflow_client, source, stage, Path(tmp))
        tags = version_tags(source, stage, weights)
        tags["manifest_sha256"] = file_hashes(weights / "manifest.json")[0]
        tags.update(benchmark_tags(mlflow_client, source))
        params = {"run_id": run_id, "name": name}
        with tracking.stage_run("register", params=params, tags={"source_run_id": run_id}, nested=nested) as run:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(ENTRY_FILE), artifacts={WEIGHTS_ARTIFACT: str(weights)},
                # A 32x32 image with one prompt: MLflow runs the model on the example once while logging.
                signature=signature(), input_example=input_example(), pip_requirements=_requirements(),
                model_config={"format": tags["format"], "precision": tags["precision"],
                              "manifest_sha256": tags["manifest_sha256"]},
                metadata={"sam3ops": {k: tags[k] for k in ("format", "precision", "parity", "source_run_id")}},
            )
            _ensure_model(mlflow_client, name)
            version = mlflow.register_model(info.model_uri, name, tags=tags)
            mlflow.set_tags({"registered_model": name, "registered_version": version.version,
                             **{k: tags[k] for k in ("format", "precision", "parity")}})
    return RegisterResult(name, str(version.version), run_id, tags, reused=False, register_run_id=run.info.run_id)


def _source_run(mlflow_client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_run(run_id)
    except MlflowException as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise RegistryNotFoundError(f"run {run_id!r} not found on {where()}",
                                        hint="copy the run id from `sam3ops convert` or the MLflow UI") from None
        raise


def _registered_version(mlflow_client, name: str, run_id: str):
    """The newest version of ``name`` registered from ``run_id``, or None when there is none.

    A failed lookup stops the registration: going on without an answer could register the run twice.
    """
    from mlflow.exceptions import MlflowException

    try:
        existing = mlflow_client.search_model_versions(
            f"name = '{quote(name)}' and tags.source_run_id = '{quote(run_id)}'")
    except MlflowException as exc:
        raise tracking_failure(exc, f"run {run_id} was not registered: could not check whether {name!r} "
                                    "has it already") from None
    return max(existing, key=lambda v: int(v.version)) if existing else None


def _check_registrable(run) -> str:
    """The run's stage, if it is something we register; refusals otherwise."""
    tags, run_id = run.data.tags, run.info.run_id
    stage = tags.get(tracking.STAGE_TAG, "")
    if stage not in ("convert", *WEIGHTS_STAGES):
        raise RegistrationRefusedError(
            f"run {run_id} is {'a ' + stage if stage else 'not a sam3ops'} run: register takes a convert run "
            "(or a download/init run for the source checkpoint)", hint="pass the run id of `sam3ops convert`")
    if stage == "convert" and tags.get("parity") != "pass":
        iou = run.data.metrics.get("parity_mask_iou")
        detail = f" (mask IoU {iou:.4f})" if iou is not None else ""
        raise RegistrationRefusedError(
            f"run {run_id} failed the parity gate{detail}: a conversion that drifts from fp32 is never registered"
            if tags.get("parity") == "fail" else f"run {run_id} has no parity result: it cannot be registered",
            hint="see parity.json in the run; convert again (e.g. bf16 instead of fp16)")
    if run.info.status != "FINISHED":
        raise RegistrationRefusedError(f"run {run_id} ended {run.info.status}: only a FINISHED run is registered",
                                       hint=f"its error: {tags.get(tracking.ERROR_TAG, 'none recorded')}")
    return stage


def _gather_weights(mlflow_client, run, stage: str, tmp: Path) -> Path:
    """The run's weights folder, complete and verified, as ``tmp/weights``."""
    import mlflow

    from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest, file_hashes

    run_id = run.info.run_id
    target = tmp / "weights"
    if stage == "convert":
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="weights", dst_path=str(tmp),
                                            tracking_uri=tracking.tracking_uri())
        if not (target / MANIFEST_NAME).is_file():
            raise RegistrationRefusedError(f"run {run_id} logged no weights/{MANIFEST_NAME}",
                                           hint="convert again with this version of sam3ops")
    else:
        folder = Path(run.data.tags.get("weights_dir") or run.data.params.get("output", ""))
        logged = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=MANIFEST_NAME,
                                                          dst_path=str(tmp / "logged"),
                                                          tracking_uri=tracking.tracking_uri()))
        if not (folder / MANIFEST_NAME).is_file():
            raise WeightsError(f"run {run_id} wrote its weights to {folder}, which is not here",
                               hint="register on the machine that ran it, or convert and register the convert run")
        if file_hashes(folder / MANIFEST_NAME)[0] != file_hashes(logged)[0]:
            raise RegistrationRefusedError(f"{folder} no longer holds what run {run_id} wrote (its manifest changed)",
                                           hint="register the run that wrote the folder as it is now")
        target.mkdir()
        for rel in [entry.path for entry in Manifest.read(folder).files] + [MANIFEST_NAME]:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(folder / rel, target / rel)  # no copy of a multi-GB checkpoint
            except OSError:
                shutil.copy2(folder / rel, target / rel)
    verify_folder(target, what=f"the weights folder of run {run_id}", only_listed=True,
                  hint="convert (or download) again; the files changed after they were written")
    return target


def _requirements() -> list[str]:
    """sam3ops' own runtime requirements: what an environment needs (with sam3ops from its checkout)
    to load a version."""
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return [req for req in metadata.requires("sam3ops") or [] if "extra ==" not in req]
    return ["mlflow", "torch", "transformers", "pycocotools"]


def _ensure_model(mlflow_client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(
            name, description="SAM3 (Segment Anything Model 3): one version per converted format. Aliases: "
                              "production, previous-production. Made by sam3ops.")
    except MlflowException as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
