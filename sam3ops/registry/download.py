"""Pull a registered version's weights into a folder: verified, resumable, all or nothing.

The backend's side of the registry. Files are fetched into a staging folder beside DEST
(``.DEST.pull``), each file's sha256 is checked against the version's ``manifest.json`` (itself
checked against the ``manifest_sha256`` tag written at registration), ``MODEL_INFO.json`` is
written, and only then does the folder become DEST. A failure leaves DEST as it was; a dropped
connection is retried with HTTP Range requests from where it stopped, and what a failed pull
fetched is kept in the staging folder for the next run of the same version.

Listing and streaming the files is :mod:`sam3ops.registry.fetch`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sam3ops.checkpoint.atomic import atomic_write, replace_folder
from sam3ops.checkpoint.manifest import verify_folder
from sam3ops.errors import EngineMismatchError, IntegrityError, UsageError, WeightsError
from sam3ops.registry.client import (
    DEFAULT_ALIAS,
    DEFAULT_NAME,
    ENGINE_FORMATS,
    client,
    now,
    resolve_version,
    tracking_errors,
)
from sam3ops.registry.fetch import Fetcher

log = logging.getLogger(__name__)

INFO_NAME = "MODEL_INFO.json"
STATE_NAME = ".pull-state.json"
WEIGHTS_PATH = "artifacts/weights"  # inside the model: where pyfunc keeps the artifact ``weights``
RETRY_ENV = "SAM3OPS_PULL_RETRY_S"


@dataclass
class PullResult:
    """What a pull put where."""

    dest: Path
    name: str
    version: str
    alias: str | None
    format: str
    precision: str
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    bytes_total: int = 0
    bytes_fetched: int = 0
    seconds: float = 0.0
    up_to_date: bool = False
    forced: list[str] = field(default_factory=list)  # engine mismatches overridden by force

    @property
    def mb_per_s(self) -> float:
        return self.bytes_fetched / 1e6 / self.seconds if self.seconds else 0.0


def local_engine_env() -> dict[str, str | None]:
    """This machine's TensorRT version, GPU name and compute capability (None where absent)."""
    env: dict[str, str | None] = {"trt_version": None, "gpu_name": None, "compute_capability": None}
    with contextlib.suppress(Exception):
        import tensorrt

        env["trt_version"] = tensorrt.__version__
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            env["gpu_name"] = torch.cuda.get_device_name(0)
            env["compute_capability"] = "{}.{}".format(*torch.cuda.get_device_capability(0))
    return env


def engine_mismatches(tags: dict[str, str], here: dict[str, str | None]) -> list[str]:
    """Why a TensorRT version cannot run here (empty when it can, or when it is not an engine)."""
    if tags.get("format") not in ENGINE_FORMATS:
        return []
    problems = []
    built_trt, built_gpu = tags.get("trt_version", "unknown"), tags.get("gpu_name", "unknown")
    if here["trt_version"] is None:
        problems.append(f"the engine needs TensorRT {built_trt}, which is not installed here")
    elif here["trt_version"] != built_trt:
        problems.append(f"the engine was built with TensorRT {built_trt}, this machine has {here['trt_version']}")
    if here["gpu_name"] is None:
        problems.append(f"the engine was built for {built_gpu}, this machine has no CUDA GPU")
    elif " ".join(here["gpu_name"].lower().split()) != " ".join(built_gpu.lower().split()):
        problems.append(f"the engine was built for {built_gpu} (compute {tags.get('compute_capability', '?')}), "
                        f"this machine has {here['gpu_name']} (compute {here['compute_capability']})")
    return problems


def pull(*, dest: Path, name: str = DEFAULT_NAME, version: str | int | None = None,
         alias: str | None = None, force: bool = False, retry_seconds: float | None = None,
         progress: Callable[[int], None] | None = None) -> PullResult:
    """Fetch version ``version`` (else the holder of ``alias``, default production) of ``name`` into ``dest``.

    Args:
        dest: the folder to fill; replaced whole if it holds an earlier pull, refused if it holds
            anything else.
        alias: resolves the version when ``version`` is not given; recorded in MODEL_INFO.json.
        force: take a TensorRT engine built for another GPU or TensorRT version anyway.
        retry_seconds: keep retrying a failing connection this long without progress
            (default ``SAM3OPS_PULL_RETRY_S`` or 60).
        progress: called with the byte count of every chunk written (negative when a file starts over).

    Returns:
        What was pulled where, with every file's sha256 (``up_to_date`` when ``dest`` already held it).

    Raises:
        RegistryNotFoundError: no such model, version or alias.
        EngineMismatchError: an engine for another GPU/TensorRT (without ``force``).
        IntegrityError: the store's bytes differ from the registered manifest (nothing kept).
        PullError: the server kept failing (what arrived is kept for the next run).
        TrackingUnreachableError / TrackingAuthError: the tracking server cannot be reached or
            refused our credentials.
        UsageError: ``dest`` holds something that is not a pull.
    """
    started = time.perf_counter()
    dest = Path(dest).absolute()
    if version is None:
        alias = alias or DEFAULT_ALIAS
    with tracking_errors(f"cannot pull {name!r}"):
        mv = resolve_version(name=name, version=version) if version is not None else \
            resolve_version(name=name, alias=alias)
    version, tags = str(mv.version), dict(mv.tags)
    # Only engines look at this machine (the probe imports torch: seconds a plain pull need not spend).
    problems = engine_mismatches(tags, local_engine_env()) if tags.get("format") in ENGINE_FORMATS else []
    if problems and not force:
        raise EngineMismatchError(f"version {version} of {name!r}: {'; '.join(problems)}")
    result = PullResult(dest, name, version, alias, tags.get("format", "?"), tags.get("precision", "?"),
                        forced=problems)
    _check_dest(dest)
    if _up_to_date(dest, name, version, tags):
        info = json.loads((dest / INFO_NAME).read_text())
        if info.get("alias") != alias:
            atomic_write(dest / INFO_NAME, json.dumps({**info, "alias": alias}, indent=2) + "\n")
        result.files, result.up_to_date = info["files"], True
        result.bytes_total = sum((dest / p).stat().st_size for p in result.files)
    else:
        retry_seconds = float(os.environ.get(RETRY_ENV, "60")) if retry_seconds is None else retry_seconds
        staging = _fetch_verified(result, tags, retry_seconds=retry_seconds, progress=progress)
        (staging / STATE_NAME).unlink(missing_ok=True)
        atomic_write(staging / INFO_NAME, json.dumps(_model_info(result, tags), indent=2) + "\n")
        replace_folder(staging, dest)
    result.seconds = time.perf_counter() - started
    return result


def _fetch_verified(result: PullResult, tags: dict[str, str], *, retry_seconds: float,
                    progress: Callable[[int], None] | None) -> Path:
    """Every file of the version in the staging folder beside ``result.dest``, checked against the
    registered manifest; fills in ``result``'s files and byte counts. Returns the staging folder."""
    name, version = result.name, result.version
    with tracking_errors(f"cannot pull version {version} of {name!r}"):
        model_uri = client().get_model_version_download_uri(name, version)
        fetcher = Fetcher(model_uri, retry_seconds=retry_seconds, progress=progress)
        remote_files = fetcher.list_files(WEIGHTS_PATH)
    staging = result.dest.parent / f".{result.dest.name}.pull"
    _prepare_staging(staging, {"name": name, "version": version, "model_uri": model_uri,
                               "manifest_sha256": tags.get("manifest_sha256")})
    hashes: dict[str, str] = {}  # computed while streaming: no second read of those files
    for remote, size in remote_files:
        rel = posixpath.relpath(remote, WEIGHTS_PATH)
        got, digest = fetcher.fetch(remote, staging / rel, size)
        result.bytes_fetched += got
        if digest:
            hashes[rel] = digest
    try:
        result.files = _verify(staging, tags, hashes, f"version {version} of {name!r}")
    except IntegrityError:
        shutil.rmtree(staging, ignore_errors=True)  # the store itself is bad: nothing worth resuming
        raise
    result.bytes_total = sum((staging / p).stat().st_size for p in result.files)
    return staging


def _model_info(result: PullResult, tags: dict[str, str]) -> dict:
    """The MODEL_INFO.json of a finished pull: what the version is, where it came from, its files."""
    return {"name": result.name, "version": result.version, "alias": result.alias, "format": result.format,
            "precision": result.precision, "parity": tags.get("parity"), "weights_random": tags.get("weights_random"),
            "weights_commit": tags.get("weights_commit"), "source_run_id": tags.get("source_run_id"),
            **{k: tags[k] for k in ("trt_version", "gpu_name", "compute_capability") if k in tags},
            "forced_engine_mismatch": result.forced, "manifest_sha256": tags.get("manifest_sha256"),
            "pulled_at": now(), "files": result.files}


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--dest {dest} is a file", hint="choose a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / INFO_NAME).is_file():
        raise UsageError(f"--dest {dest} holds files that are not a sam3ops pull",
                         hint="choose an empty folder (one that holds an earlier pull is replaced)")


def _up_to_date(dest: Path, name: str, version: str, tags: dict[str, str]) -> bool:
    """True when ``dest`` already holds this exact version, intact; an earlier pull of it that was
    damaged since (a file changed or gone, the manifest included) is pulled again, whole."""
    try:
        info = json.loads((dest / INFO_NAME).read_text())
        same = (info["name"], info["version"], info.get("manifest_sha256")) == (name, version,
                                                                                tags.get("manifest_sha256"))
    except (OSError, ValueError, KeyError, TypeError):  # no readable MODEL_INFO.json: not an earlier pull of it
        return False
    if not same:
        return False
    try:
        _verify(dest, tags, {}, f"the earlier pull in {dest}")
    except (WeightsError, IntegrityError) as exc:
        log.warning("%s; pulling version %s again", exc.message, version)
        return False
    return True


def _prepare_staging(staging: Path, state: dict) -> None:
    """Reuse ``staging`` when it holds a partial pull of the same version; start it afresh otherwise."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads((staging / STATE_NAME).read_text()) == state:
            log.info("resuming the pull in %s", staging)
            return
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    atomic_write(staging / STATE_NAME, json.dumps(state))


def _verify(folder: Path, tags: dict[str, str], known: dict[str, str], what: str) -> dict[str, str]:
    """path -> sha256 of every file, after checking them all against the registered manifest."""
    return verify_folder(folder, what=what, manifest_sha256=tags.get("manifest_sha256"), known=known,
                         only_listed=True, ignore=(INFO_NAME, STATE_NAME),
                         hint="the artifact store holds other bytes than were registered: register the "
                              "version again from its run (DEST was left as it was)")
