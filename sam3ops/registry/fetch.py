"""Listing and fetching the files of one model artifact: the transport half of a pull.

Through an MLflow server's artifact proxy (``mlflow-artifacts:``) the bytes are streamed by us
(Range requests to resume, sha256 while writing); any other artifact store goes through MLflow's
own client.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from sam3ops.errors import IntegrityError, PullError, RegistryNotFoundError

log = logging.getLogger(__name__)

# One buffer per stream, reused by every readinto (no allocation per chunk).
CHUNK_BYTES = 1024 * 1024
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60


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
