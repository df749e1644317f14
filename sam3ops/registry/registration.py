"""Registering: a converted (or source) checkpoint becomes a version of the registered model.

One registered model (default ``sam3``) whose versions are formats. Each version is the MLflow 3
logged model that the stage which wrote the files logged (:mod:`sam3ops.registry.logged`: a pyfunc
model, :mod:`sam3ops.registry.pyfunc`, with the weights folder inside as the artifact ``weights``),
registered by reference (``models:/<model_id>``, no second copy), with the tags of
:mod:`sam3ops.registry.tags`. Runs of an older sam3ops, which logged no model, get theirs logged at
registration. Moving the aliases is :mod:`sam3ops.registry.promotion`;
pulling a version's files is :mod:`sam3ops.registry.download`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sam3ops import tracking
from sam3ops.checkpoint.manifest import verify_folder
from sam3ops.errors import RegistrationRefusedError, RegistryNotFoundError, WeightsError
from sam3ops.registry.client import (
    DEFAULT_NAME,
    ENGINE_FORMATS,
    NOT_FOUND_CODES,
    client,
    error_code,
    quote,
    require_model,
    tracking_failure,
    where,
)
from sam3ops.registry.download import WEIGHTS_PATH
from sam3ops.registry.logged import MODEL_ID_TAG, link_tree, log_weights_model
from sam3ops.registry.tags import benchmark_tags, version_tags

WEIGHTS_STAGES = ("download", "init")  # the stages whose run wrote a source checkpoint folder
MODEL_TAGS = ("weights_random", "weights_commit", "preset", "trt_version", "gpu_name", "compute_capability")


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

    The logged model the run made (its tag ``model_id``) is registered as it is, without a copy; a run
    of an older sam3ops gets one logged here from its ``weights/`` artifacts (convert) or the folder
    it wrote (download/init, checked against the manifest that run logged). Registering the same run
    again returns its existing version.

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

    mlflow_client = client()
    source = _source_run(mlflow_client, run_id)
    stage = _check_registrable(source)
    if (existing := _registered_version(mlflow_client, name, run_id)) is not None:
        return RegisterResult(name, str(existing.version), run_id, dict(existing.tags), reused=True)

    params = {"run_id": run_id, "name": name}
    with tempfile.TemporaryDirectory(prefix="sam3ops-register-") as tmp, \
            tracking.stage_run("register", params=params, tags={"source_run_id": run_id}, nested=nested) as run:
        model_id = _logged_model_id(mlflow_client, source)
        if model_id is not None:
            weights = _model_manifest(mlflow_client, model_id, Path(tmp))
            tags = _tags(mlflow_client, source, stage, weights)
            tags["layout"] = _listed_layout(weights)  # the folder here holds the manifest, not the files
        else:
            # A run of an older sam3ops logged no model: its files become one now (the one copy).
            weights = _gather_weights(mlflow_client, source, stage, Path(tmp))
            tags = _tags(mlflow_client, source, stage, weights)
            model_id = log_weights_model(weights, format=tags["format"], precision=tags["precision"],
                                         tags={k: tags[k] for k in MODEL_TAGS if k in tags})
        tags["model_id"] = model_id
        _ensure_model(mlflow_client, name)
        version = mlflow.register_model(f"models:/{model_id}", name, tags=tags)
        mlflow.set_tags({"registered_model": name, "registered_version": version.version, "model_id": model_id,
                         **{k: tags[k] for k in ("format", "precision", "parity")}})
    return RegisterResult(name, str(version.version), run_id, tags, reused=False, register_run_id=run.info.run_id)


def _tags(mlflow_client, source, stage: str, weights: Path) -> dict[str, str]:
    from sam3ops.checkpoint.manifest import file_hashes

    tags = version_tags(source, stage, weights)
    tags["manifest_sha256"] = file_hashes(weights / "manifest.json")[0]
    tags.update(benchmark_tags(mlflow_client, source))
    return tags


def _listed_layout(weights: Path) -> str:
    """The layout of the files ``weights/manifest.json`` lists: ``meta`` for Meta's ``sam3.pt`` without a
    ``config.json`` (as :func:`sam3ops.checkpoint.kinds.is_meta_dir` tells a folder), else ``transformers``."""
    from sam3ops.checkpoint.layout import META_CHECKPOINT
    from sam3ops.checkpoint.manifest import Manifest

    listed = {entry.path for entry in Manifest.read(weights).files}
    return "meta" if META_CHECKPOINT in listed and "config.json" not in listed else "transformers"


def _logged_model_id(mlflow_client, run) -> str | None:
    """The READY logged model the run made (tag ``model_id``), or None for a run of an older sam3ops."""
    from mlflow.exceptions import MlflowException

    model_id = run.data.tags.get(MODEL_ID_TAG)
    if not model_id:
        return None
    try:
        model = mlflow_client.get_logged_model(model_id)
    except MlflowException as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise RegistrationRefusedError(f"run {run.info.run_id} names logged model {model_id}, which is gone",
                                           hint="run the stage again to log its model") from None
        raise
    if getattr(model.status, "value", str(model.status)) != "READY":
        raise RegistrationRefusedError(f"logged model {model_id} of run {run.info.run_id} is {model.status}, "
                                       "not READY", hint="run the stage again to log its model")
    return model_id


def _model_manifest(mlflow_client, model_id: str, tmp: Path) -> Path:
    """``tmp/weights`` holding the model's manifest (and an engine's sidecars): what the tags are read
    from, without fetching the weights. The manifest must be the one the model was logged with.

    Raises:
        IntegrityError: the store holds another manifest than the model's tag says.
    """
    import mlflow

    from sam3ops.checkpoint.layout import ENGINES
    from sam3ops.checkpoint.manifest import MANIFEST_NAME, file_hashes
    from sam3ops.errors import IntegrityError

    model = mlflow_client.get_logged_model(model_id)
    target = tmp / "weights"
    target.mkdir()
    root = f"{model.artifact_location.rstrip('/')}/{WEIGHTS_PATH}"
    mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/{MANIFEST_NAME}", dst_path=str(target))
    if model.tags.get("format") in ENGINE_FORMATS:
        for engine in ENGINES:  # the build records: TensorRT version, GPU, compute capability
            mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/{engine}.json", dst_path=str(target))
    if file_hashes(target / MANIFEST_NAME)[0] != model.tags.get("manifest_sha256"):
        raise IntegrityError(f"logged model {model_id} holds another manifest than it was logged with",
                             hint="the artifact store was altered: run the stage that made it again")
    return target


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

    from sam3ops.checkpoint.manifest import MANIFEST_NAME, file_hashes

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
        link_tree(folder, target)
    verify_folder(target, what=f"the weights folder of run {run_id}", only_listed=True,
                  hint="convert (or download) again; the files changed after they were written")
    return target


def _ensure_model(mlflow_client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(
            name, description="SAM3 (Segment Anything Model 3): one version per converted format. Aliases: "
                              "production, previous-production. Made by sam3ops.")
    except MlflowException as exc:
        if error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
