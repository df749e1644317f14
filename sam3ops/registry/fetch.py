"""Listing and fetching the files of one model artifact: the transport half of a pull.

Through an MLflow server's artifact proxy (``mlflow-artifacts:``) the bytes are streamed by us
(Range requests to resume, sha256 while writing); any other artifact store goes through MLflow's
own client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sam3ops.errors import IntegrityError, PullError, RegistryNotFoundError, http_status, safe_url, tracking_error
from sam3ops.weights import resumable

FIRST_BYTE_ENV = "SAM3OPS_PULL_READ_TIMEOUT_S"  # the longest wait for a byte (the server may copy the file first)


class Fetcher:
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
            raise RegistryNotFoundError(
                f"the model at {safe_url(self.repo.artifact_uri)} holds no weights under {root}",
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
        """Stream ``remote`` through the server's artifact proxy into ``local``, resuming ``local.part``.

        Retried for as long as each failure comes within ``retry_seconds`` of the last byte that
        arrived; returns (bytes transferred, sha256 of the whole file).
        """
        import requests

        try:
            fetched = self._stream(remote, local, size)
        except resumable.TransferError as exc:
            raise PullError(f"pull interrupted: {remote} stopped at {exc.done} of {size} bytes ({exc.cause}) and the "
                            f"server did not come back within {self.retry_seconds:.0f} s") from None
        except requests.HTTPError as exc:  # a status not worth retrying
            if http_status(exc) == 404:
                raise IntegrityError(f"{remote} is listed but missing from the artifact store",
                                     hint="the store lost files: register the version again from its run") from None
            raise tracking_error(exc) or PullError(
                f"the artifact store answered HTTP {http_status(exc)} for {remote}") from None
        return fetched.received, fetched.sha256

    def _stream(self, remote: str, local: Path, size: int) -> resumable.Fetched:
        """The resumable download of ``remote``, with the credentials MLflow's own client would send."""
        from mlflow.tracking.request_header.registry import resolve_request_headers
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.workspace_context import get_request_workspace
        from mlflow.utils.workspace_utils import WORKSPACE_HEADER_NAME

        creds = get_default_host_creds(self.repo.artifact_uri)
        headers, auth = dict(resolve_request_headers()), None
        if workspace := get_request_workspace():
            headers[WORKSPACE_HEADER_NAME] = workspace
        # The same precedence as mlflow.utils.rest_utils.http_request: basic (unless Kubernetes auth
        # carries the credentials), else a bearer token; SigV4 or an auth plugin sign the request last.
        if creds.username and creds.password and creds.auth not in ("kubernetes", "kubernetes-namespaced"):
            auth = (creds.username, creds.password)
        elif creds.token:
            headers["Authorization"] = f"Bearer {creds.token}"
        if creds.aws_sigv4:
            from requests_auth_aws_sigv4 import AWSSigV4

            auth = AWSSigV4("execute-api")
        elif creds.auth:
            from mlflow.tracking.request_auth.registry import fetch_auth

            auth = fetch_auth(creds.auth)
        # A server that restarts comes back after an unknown number of attempts: bound the time only.
        # An S3-backed server copies the whole object into its temp folder before the first byte: wait for it.
        policy = resumable.RetryPolicy(stalled_attempts=None, stalled_seconds=self.retry_seconds, max_attempts=None,
                                       read_timeout_s=float(os.environ.get(FIRST_BYTE_ENV, "600")))
        return resumable.download(f"{creds.host.rstrip('/')}/{remote}", local, size=size, headers=headers, auth=auth,
                                  verify=creds.verify, cert=creds.client_cert_path, progress=self.progress,
                                  sha256=True, retry=policy, name=remote)
