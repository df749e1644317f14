"""Pull a registered version's weights into a folder: verified, resumable, all or nothing.

The backend's side of the registry. Files are fetched into a staging folder beside DEST
(``.DEST.pull``), each file's sha256 is checked against the version's ``manifest.json`` (itself
checked against the ``manifest_sha256`` tag written at registration), ``MODEL_INFO.json`` is
written, and only then does the folder become DEST. A failure leaves DEST as it was; a dropped
connection is retried with HTTP Range requests from where it stopped, and what a failed pull
fetched is kept in the staging folder for the next run of the same version.

Through an MLflow server's artifact proxy (``mlflow-artifacts:``) the bytes are streamed by us
(Range requests, sha256 while writing); any other artifact store goes through MLflow's own client.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from sam3ops.errors import EngineMismatchError, IntegrityError, PullError, RegistryNotFoundError, UsageError
from sam3ops.registry import registration as registry

log = logging.getLogger(__name__)

INFO_NAME = "MODEL_INFO.json"
STATE_NAME = ".pull-state.json"
WEIGHTS_PATH = "artifacts/weights"  # inside the model: where pyfunc keeps the artifact ``weights``
# Below glibc's mmap threshold, reused: see sam3ops/transfer.py for why this size.
CHUNK_BYTES = 1024 * 1024
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60
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
    if tags.get("format") not in registry.ENGINE_FORMATS:
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


def pull(*, dest: Path, name: str = registry.DEFAULT_NAME, version: str | int | None = None,
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
        progress: called with the byte count of every chunk written.

    Raises:
        RegistryNotFoundError: no such model, version or alias.
        EngineMismatchError: an engine for another GPU/TensorRT (without ``force``).
        IntegrityError: the store's bytes differ from the registered manifest (nothing kept).
        PullError: the server kept failing (what arrived is kept for the next run).
        UsageError: ``dest`` holds something that is not a pull.
    """
    started = time.perf_counter()
    dest = Path(dest).absolute()
    retry_seconds = float(os.environ.get(RETRY_ENV, "60")) if retry_seconds is None else retry_seconds
    if version is None:
        alias = alias or registry.DEFAULT_ALIAS
    with _unreachable_as_pull_error():
        mv = registry.resolve_version(name=name, version=version) if version is not None else \
            registry.resolve_version(name=name, alias=alias)
    version, tags = str(mv.version), dict(mv.tags)
    # Only engines look at this machine (the probe imports torch: seconds a plain pull need not spend).
    problems = engine_mismatches(tags, local_engine_env()) if tags.get("format") in registry.ENGINE_FORMATS else []
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
        result.seconds = time.perf_counter() - started
        return result

    with _unreachable_as_pull_error():
        model_uri = registry.client().get_model_version_download_uri(name, version)
        fetcher = _Fetcher(model_uri, retry_seconds=retry_seconds, progress=progress)
        remote_files = fetcher.list_files(WEIGHTS_PATH)
    staging = dest.parent / f".{dest.name}.pull"
    _prepare_staging(staging, {"name": name, "version": version, "model_uri": model_uri,
                               "manifest_sha256": tags.get("manifest_sha256")})
    hashes: dict[str, str] = {}
    for remote, size in remote_files:
        rel = posixpath.relpath(remote, WEIGHTS_PATH)
        local = staging / rel
        got, digest = fetcher.fetch(remote, local, size)
        result.bytes_fetched += got
        if digest:
            hashes[rel] = digest
    try:
        result.files = _verify(staging, tags, hashes, f"version {version} of {name!r}")
    except IntegrityError:
        shutil.rmtree(staging, ignore_errors=True)  # the store itself is bad: nothing worth resuming
        raise
    result.bytes_total = sum((staging / p).stat().st_size for p in result.files)
    info = {"name": name, "version": version, "alias": alias, "format": result.format,
            "precision": result.precision, "parity": tags.get("parity"), "weights_random": tags.get("weights_random"),
            "weights_commit": tags.get("weights_commit"), "source_run_id": tags.get("source_run_id"),
            **{k: tags[k] for k in ("trt_version", "gpu_name", "compute_capability") if k in tags},
            "forced_engine_mismatch": problems, "manifest_sha256": tags.get("manifest_sha256"),
            "pulled_at": registry.now(), "files": result.files}
    (staging / STATE_NAME).unlink(missing_ok=True)
    atomic_write(staging / INFO_NAME, json.dumps(info, indent=2) + "\n")
    replace_folder(staging, dest)
    result.seconds = time.perf_counter() - started
    return result


@contextlib.contextmanager
def _unreachable_as_pull_error():
    """MLflow's own retries gave up on the server (down, wrong URI): one clear line instead."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if registry.error_code(exc) not in ("", "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE") or \
                "API request to" not in str(exc):
            raise
        detail = " ".join(str(exc).split())[:300]
        raise PullError(f"cannot reach the tracking server: {detail}",
                        hint="check MLFLOW_TRACKING_URI and that the server is up, then rerun") from None


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--dest {dest} is a file", hint="choose a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / INFO_NAME).is_file():
        raise UsageError(f"--dest {dest} holds files that are not a sam3ops pull",
                         hint="choose an empty folder (one that holds an earlier pull is replaced)")


def _up_to_date(dest: Path, name: str, version: str, tags: dict[str, str]) -> bool:
    """True when ``dest`` already holds this exact version, intact."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        info = json.loads((dest / INFO_NAME).read_text())
        if (info["name"], info["version"], info.get("manifest_sha256")) != (name, version, tags.get("manifest_sha256")):
            return False
        _verify(dest, tags, {}, "the folder")
        return True
    return False


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


class _Fetcher:
    """Lists and fetches the files of one model artifact URI."""

    def __init__(self, model_uri: str, *, retry_seconds: float, progress: Callable[[int], None] | None):
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

        self.repo = get_artifact_repository(model_uri)
        self.http = isinstance(self.repo, HttpArtifactRepository)
        self.retry_seconds, self.progress = retry_seconds, progress

    def list_files(self, root: str) -> list[tuple[str, int | None]]:
        """(path, size) of every file under ``root``, recursively."""
        found, pending = [], [root]
        while pending:
            infos = self.repo.list_artifacts(pending.pop())
            for info in infos:
                if info.is_dir:
                    pending.append(info.path)
                else:
                    found.append((info.path, info.file_size))
        if not found:
            raise RegistryNotFoundError(f"the model at {self.repo.artifact_uri} holds no weights under {root}",
                                        hint="this version was not registered by sam3ops register")
        return sorted(found)

    def fetch(self, remote: str, local: Path, size: int | None) -> tuple[int, str | None]:
        """Bring ``remote`` to ``local``; return (bytes transferred, sha256 if computed on the way)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        if size is not None and local.is_file() and local.stat().st_size == size:
            return 0, None  # finished by an earlier attempt; verified with the rest
        if not self.http or size is None:
            return self._fetch_with_mlflow(remote, local), None
        return self._fetch_http(remote, local, size)

    def _fetch_with_mlflow(self, remote: str, local: Path) -> int:
        import tempfile

        with tempfile.TemporaryDirectory(dir=local.parent, prefix=".fetch-") as tmp:
            path = Path(self.repo.download_artifacts(remote, tmp))
            os.replace(path, local)
        size = local.stat().st_size
        if self.progress:
            self.progress(size)
        return size

    def _fetch_http(self, remote: str, local: Path, size: int) -> tuple[int, str | None]:
        import requests
        import urllib3

        part = local.with_name(local.name + ".part")
        stalled_since = None
        transferred = 0
        digest = None
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if offset > size:
                part.unlink()
                offset = 0
            if offset == size:
                break
            before = offset
            try:
                digest = self._stream(remote, part, offset, size)
            except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError,
                    _Retryable) as exc:
                now_at = part.stat().st_size if part.exists() else 0
                transferred += now_at - before
                if now_at > before or stalled_since is None:
                    stalled_since = time.monotonic()
                if time.monotonic() - stalled_since > self.retry_seconds:
                    raise PullError(f"pull interrupted: {remote} stopped at {now_at} of {size} bytes "
                                    f"({type(exc).__name__}) and the server did not come back within "
                                    f"{self.retry_seconds:.0f} s") from None
                log.warning("%s: connection lost at %d of %d bytes (%s); retrying", remote, now_at, size,
                            type(exc).__name__)
                time.sleep(0.5)
                continue
            transferred += (part.stat().st_size if part.exists() else 0) - before
        os.replace(part, local)
        return transferred, digest

    def _stream(self, remote: str, part: Path, offset: int, size: int) -> str | None:
        """One GET from ``offset``; returns the sha256 when the whole file came in this one stream."""
        from mlflow.exceptions import MlflowException
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
        try:
            response = http_request(get_default_host_creds(self.repo.artifact_uri), "/" + remote, "GET",
                                    stream=True, max_retries=0, extra_headers=headers, raise_on_status=False,
                                    timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
        except MlflowException as exc:  # http_request wraps connection errors (server down, restarting)
            raise _Retryable(str(exc).split(" failed with exception ")[-1][:200]) from None
        with response:
            if response.status_code == 404:
                raise IntegrityError(f"{remote} is listed but missing from the artifact store",
                                     hint="the store lost files: register the version again from its run")
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise _Retryable(f"HTTP {response.status_code}")
            response.raise_for_status()
            if offset and response.status_code != 206:  # Range ignored: the whole file again
                offset = 0
            sha = hashlib.sha256() if offset == 0 else None
            buffer = bytearray(CHUNK_BYTES)
            view = memoryview(buffer)
            with open(part, "r+b" if offset else "wb") as handle:
                handle.seek(offset)
                handle.truncate()
                raw = response.raw
                while n := raw.readinto(buffer):
                    handle.write(view[:n])
                    if sha is not None:
                        sha.update(view[:n])
                    if self.progress:
                        self.progress(n)
        got = part.stat().st_size
        if got != size:
            raise _Retryable(f"short body: {got} of {size} bytes")
        return sha.hexdigest() if sha is not None else None


class _Retryable(ConnectionError):
    """A response worth retrying (5xx while a server restarts, a body cut short)."""
