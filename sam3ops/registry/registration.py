"""The model registry: register a converted (or source) checkpoint as a version, find versions, load one.

One registered model (default ``sam3``) whose versions are formats. Each version is an MLflow pyfunc
model (:mod:`sam3ops.pyfunc`) with the weights folder inside as the artifact ``weights`` and tags
that say what it is: ``format precision parity weights_random weights_commit`` (+ ``trt_version
gpu_name compute_capability`` for engines, ``bench.*`` from the latest benchmark of that artifact).

Moving the aliases (promote, rollback) is :mod:`sam3ops.promotion`; pulling a version's files to a
folder (verified, resumable) is :mod:`sam3ops.pull`; the pyfunc model itself is :mod:`sam3ops.pyfunc`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sam3ops import tracking
from sam3ops.bench import metrics
from sam3ops.checkpoint.kinds import engine_sidecar
from sam3ops.checkpoint.manifest import verify_folder
from sam3ops.errors import RegistrationRefusedError, RegistryNotFoundError, UsageError, WeightsError

log = logging.getLogger(__name__)

DEFAULT_NAME = "sam3"
DEFAULT_ALIAS = "production"
WEIGHTS_STAGES = ("download", "init")
ENGINE_FORMATS = ("tensorrt",)
BENCH_METRICS = metrics.HEADLINE


@dataclass
class RegisterResult:
    """A registered version and where it came from."""

    name: str
    version: str
    source_run_id: str
    tags: dict[str, str]
    reused: bool = False  # the run was registered before: that version is returned
    register_run_id: str | None = None


def who() -> str:
    """user@host of this process, for the who/when/why tags."""
    with contextlib.suppress(Exception):
        return f"{getpass.getuser()}@{socket.gethostname()}"
    return f"unknown@{socket.gethostname()}"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def client():
    """An MlflowClient on the configured tracking and registry URI."""
    import mlflow

    tracking.configure()
    return mlflow.MlflowClient()


def error_code(exc: Exception) -> str:
    return getattr(exc, "error_code", "") or ""


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` -> (name, version, alias)."""
    if not uri.startswith("models:/"):
        raise UsageError(f"{uri!r} is not a models:/ URI", hint="use models:/NAME@ALIAS or models:/NAME/VERSION")
    rest = uri[len("models:/"):].strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, version, None
    raise UsageError(f"cannot read model URI {uri!r}", hint="use models:/NAME@ALIAS or models:/NAME/VERSION")


def resolve_version(*, name: str, version: str | int | None = None, alias: str | None = None):
    """The ``ModelVersion`` of ``name`` by ``version`` or ``alias`` (exactly one).

    Raises:
        UsageError: neither or both given.
        RegistryNotFoundError: no such model, version or alias.
    """
    from mlflow.exceptions import MlflowException

    if (version is None) == (alias is None):
        raise UsageError("give exactly one of --version and --alias")
    mlflow_client = client()
    require_model(mlflow_client, name)
    try:
        if alias is not None:
            return mlflow_client.get_model_version_by_alias(name, alias)
        return mlflow_client.get_model_version(name, str(version))
    except MlflowException as exc:
        if error_code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            what = f"alias {alias!r}" if alias is not None else f"version {version}"
            raise RegistryNotFoundError(f"model {name!r} has no {what}") from None
        raise


def require_model(mlflow_client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryNotFoundError(f"registered model {name!r} not found on {_where()}",
                                        hint="register a version first: sam3ops register --run-id RUN") from None
        raise


def _where() -> str:
    """The tracking URI without credentials (for messages)."""
    from urllib.parse import urlsplit, urlunsplit

    uri = tracking.tracking_uri()
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return uri


@dataclass
class VersionInfo:
    """One version as ``sam3ops versions`` shows it."""

    version: str
    aliases: list[str]
    tags: dict[str, str]


def list_versions(name: str = DEFAULT_NAME) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with their aliases and tags."""
    mlflow_client = client()
    model = require_model(mlflow_client, name)
    # search_model_versions leaves ModelVersion.aliases empty: the model's alias map has them.
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(model.aliases.items()):
        by_version.setdefault(str(version), []).append(alias)
    versions = mlflow_client.search_model_versions(f"name = '{_quote(name)}'")
    return [VersionInfo(str(v.version), by_version.get(str(v.version), []), dict(v.tags))
            for v in sorted(versions, key=lambda v: int(v.version), reverse=True)]


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


# --------------------------------------------------------------------------------------- register

def register(*, run_id: str, name: str = DEFAULT_NAME, nested: bool = False) -> RegisterResult:
    """Register what run ``run_id`` produced as a new version of ``name`` (in a ``register`` run;
    ``nested``: a child of the active run, as in the pipeline).

    A convert run's ``weights/`` artifacts, or the folder a download/init run wrote (checked against
    the manifest that run logged). Registering the same run again returns its existing version.

    Raises:
        RegistryNotFoundError: no such run.
        RegistrationRefusedError: failed parity, unfinished run, not a weights or convert run.
        WeightsError / IntegrityError: the files do not match their manifest.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from sam3ops.checkpoint.manifest import file_hashes
    from sam3ops.registry import pyfunc

    mlflow_client = client()
    try:
        source = mlflow_client.get_run(run_id)
    except MlflowException as exc:
        if error_code(exc) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise RegistryNotFoundError(f"run {run_id!r} not found on {_where()}",
                                        hint="copy the run id from `sam3ops convert` or the MLflow UI") from None
        raise
    stage = _check_registrable(source)
    with contextlib.suppress(MlflowException):
        existing = mlflow_client.search_model_versions(
            f"name = '{_quote(name)}' and tags.source_run_id = '{_quote(run_id)}'")
        if existing:
            version = max(existing, key=lambda v: int(v.version))
            return RegisterResult(name, str(version.version), run_id, dict(version.tags), reused=True)

    with tempfile.TemporaryDirectory(prefix="sam3ops-register-") as tmp:
        weights = _gather_weights(mlflow_client, source, stage, Path(tmp))
        tags = _version_tags(source, stage, weights)
        tags["manifest_sha256"] = file_hashes(weights / "manifest.json")[0]
        tags.update(_benchmark_tags(mlflow_client, source))
        params = {"run_id": run_id, "name": name}
        with tracking.stage_run("register", params=params, tags={"source_run_id": run_id}, nested=nested) as run:
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(pyfunc.ENTRY_FILE), artifacts={pyfunc.WEIGHTS_ARTIFACT: str(weights)},
                signature=pyfunc.signature(), pip_requirements=_requirements(),
                model_config={"format": tags["format"], "precision": tags["precision"],
                              "manifest_sha256": tags["manifest_sha256"]},
                metadata={"sam3ops": {k: tags[k] for k in ("format", "precision", "parity", "source_run_id")}},
            )
            _ensure_model(mlflow_client, name)
            version = mlflow.register_model(info.model_uri, name, tags=tags)
            mlflow.set_tags({"registered_model": name, "registered_version": version.version,
                             **{k: tags[k] for k in ("format", "precision", "parity")}})
    return RegisterResult(name, str(version.version), run_id, tags, reused=False, register_run_id=run.info.run_id)


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
    verify_folder(target, what=f"the weights of run {run_id}", only_listed=True,
                  hint="convert (or download) again; the files changed after they were written")
    return target


def _version_tags(run, stage: str, weights: Path) -> dict[str, str]:
    from sam3ops.checkpoint.manifest import Manifest

    tags, run_id = run.data.tags, run.info.run_id
    manifest = Manifest.read(weights)
    is_convert = stage == "convert"
    out = {
        "format": tags.get("format", "fp32") if is_convert else "fp32",
        "precision": tags.get("precision", "fp32") if is_convert else "fp32",
        "parity": tags.get("parity", "") if is_convert else "reference",
        "weights_random": tags.get("weights_random", str(manifest.random).lower()),
        "weights_commit": tags.get("weights_commit", manifest.commit),
        "source_run_id": run_id,
        "source_stage": stage,
        "files": str(len(manifest.files)),
        "size_bytes": str(sum(entry.size for entry in manifest.files)),
        "registered_by": who(),
        "registered_at": now(),
    }
    if manifest.preset:
        out["preset"] = manifest.preset
    if out["format"] in ENGINE_FORMATS:
        sidecar = engine_sidecar(weights)
        out["trt_version"] = tags.get("trt_version") or str(sidecar.get("tensorrt_version", "unknown"))
        out["gpu_name"] = tags.get("gpu_name") or str(sidecar.get("gpu_name", "unknown"))
        out["compute_capability"] = tags.get("compute_capability") or str(sidecar.get("compute_capability", "unknown"))
    return out


def _benchmark_tags(mlflow_client, run) -> dict[str, str]:
    """``bench.<metric>`` of the newest finished benchmark run of this artifact; empty if none.

    A loose match, in ``sam3-benchmark`` and in the source run's own experiment (the pipeline's
    benchmarks are children there): tag ``source_run_id`` is the run, or param ``weights`` names
    the run or the folder it wrote. Metrics are logged with step = batch: the values are the
    largest batch's (``bench.batch``).
    """
    run_id = run.info.run_id
    experiments = {run.info.experiment_id}
    if benchmark := mlflow_client.get_experiment_by_name("sam3-benchmark"):
        experiments.add(benchmark.experiment_id)
    filters = [f"tags.source_run_id = '{run_id}'", f"params.weights LIKE '%{run_id}%'"]
    if output := run.data.params.get("output") or run.data.tags.get("weights_dir"):
        filters += [f"params.weights = '{_quote(output)}'", f"params.weights = '{_quote(str(Path(output).resolve()))}'"]
    found = {}
    for query in filters:
        with contextlib.suppress(Exception):
            for candidate in mlflow_client.search_runs(sorted(experiments), query,
                                                       order_by=["attributes.start_time DESC"], max_results=20):
                if candidate.data.tags.get(tracking.STAGE_TAG) == "benchmark":
                    found[candidate.info.run_id] = candidate
    for candidate in sorted(found.values(), key=lambda r: r.info.start_time or 0, reverse=True):
        if candidate.info.status != "FINISHED":
            continue
        holders = [candidate]
        if not any(k in BENCH_METRICS for k in candidate.data.metrics):  # a parent: its children hold them
            holders = mlflow_client.search_runs([candidate.info.experiment_id],
                                                f"tags.mlflow.parentRunId = '{candidate.info.run_id}'")
        metrics = {k: v for holder in holders for k, v in holder.data.metrics.items() if k in BENCH_METRICS}
        if metrics:
            tags = {"bench_run_id": candidate.info.run_id,
                    **{f"bench.{k}": f"{v:.6g}" for k, v in sorted(metrics.items())}}
            with contextlib.suppress(Exception):
                steps = [point.step for holder in holders
                         for point in mlflow_client.get_metric_history(holder.info.run_id, "ms_per_image")]
                if steps:
                    tags["bench.batch"] = str(max(steps))
            return tags
    return {}


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


def promote(**kwargs):
    """:func:`sam3ops.promotion.promote`, here too so that the registry's API is one import."""
    from sam3ops.registry import promotion

    return promotion.promote(**kwargs)


def rollback(**kwargs):
    """:func:`sam3ops.promotion.rollback`, here too so that the registry's API is one import."""
    from sam3ops.registry import promotion

    return promotion.rollback(**kwargs)


# ------------------------------------------------------------------------------------------ load

def default_cache() -> Path:
    """Where :func:`load` keeps pulled versions: ``SAM3OPS_MODEL_CACHE`` or ``~/.cache/sam3ops/models``."""
    return Path(os.environ.get("SAM3OPS_MODEL_CACHE") or Path.home() / ".cache" / "sam3ops" / "models")


def load(uri: str = f"models:/{DEFAULT_NAME}@{DEFAULT_ALIAS}", *, device: str | None = None,
         cache_dir: Path | None = None, force: bool = False, **segmenter_kwargs):
    """The :class:`Segmenter` of a registered version, on the runtime its files call for.

    ``uri`` is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a local weights folder. The
    version is pulled (verified) into ``cache_dir/NAME/VERSION`` once; later loads reuse it.
    ``device`` defaults to ``cuda`` where there is a GPU (engines need it), else ``cpu``.
    """
    from sam3ops.inference.segmenter import Segmenter
    from sam3ops.registry import download as pull_lib
    from sam3ops.registry.pyfunc import default_device, runtime_precision

    device = device or default_device()
    if not uri.startswith("models:/"):
        return Segmenter.from_dir(Path(uri), device=device, **segmenter_kwargs)
    name, version, alias = parse_model_uri(uri)
    mv = resolve_version(name=name, version=version, alias=alias)
    dest = Path(cache_dir or default_cache()) / name / str(mv.version)
    pull_lib.pull(dest=dest, name=name, version=mv.version, alias=alias, force=force)
    segmenter_kwargs.setdefault("precision", runtime_precision(mv.tags.get("precision", "fp32"), device))
    return Segmenter.from_dir(dest, device=device, **segmenter_kwargs)
