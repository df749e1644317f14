"""A fake Hugging Face Hub for tests and benchmarks.

`FakeHub` is a real threaded HTTP server (stdlib ``http.server``) bound to 127.0.0.1 that speaks the subset
of the Hub HTTP API used by ``huggingface_hub`` 2.4 for downloads, so the real client library can be pointed
at it with ``endpoint=hub.url`` (or ``HF_ENDPOINT=hub.url`` in a subprocess environment, since
``huggingface_hub`` reads ``HF_ENDPOINT`` at import time)::

    with FakeHub() as hub:
        sha = hub.add_repo("facebook/sam3", folder)
        hub.add_token("hf_good")
        hf_hub_download("facebook/sam3", "config.json", endpoint=hub.url, token="hf_good", local_dir=...)

Endpoints
---------
* ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}`` -- model info
  (``HfApi.model_info`` / ``repo_info``). With ``?blobs=true`` (``files_metadata=True``) each sibling carries
  ``size``, ``blobId`` and, for LFS files, ``lfs: {sha256, size, pointerSize}``.
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=true`` -- tree listing
  (``HfApi.list_repo_tree``; ``snapshot_download`` uses it after resolving the revision). No pagination.
* ``GET /api/whoami-v2`` -- ``HfApi.whoami``.
* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}`` -- file download with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Accept-Ranges: bytes`` and single-range support (``bytes=N-``, ``bytes=N-M``,
  ``bytes=-N`` -> 206 + ``Content-Range``; unsatisfiable -> 416).

``revision`` may be the branch name given to `add_repo` or the full 40-hex commit sha.

LFS files (``*.safetensors``, ``*.pt``, ``*.bin`` or anything larger than 10 MiB) get ``ETag: "<sha256>"``
plus ``X-Linked-Etag``/``X-Linked-Size`` on ``/resolve``; their ``blobId`` is the git sha1 of their LFS
pointer file, like on the real Hub. Regular files get ``ETag: "<git blob sha1>"``.

By default LFS files are served directly from ``/resolve`` with a 200 (simplest, and what a benchmark with
``curl`` wants). With ``FakeHub(lfs_redirect=True)`` the hub behaves like huggingface.co: ``/resolve`` on an LFS
file answers ``302`` to a "CDN" -- a second listener on another port (``hub.cdn_url``), i.e. another origin,
so ``huggingface_hub`` downloads from the ``Location`` without sending the ``Authorization`` header, and the CDN
serves the blob by sha256 without any auth check (like a signed URL).

Auth and errors (status / headers sent -> exception raised by ``huggingface_hub`` 2.4)
-------------------------------------------------------------------------------------
Tokens are compared through their sha256 digest only; the token value is never stored, logged or echoed.

* an ``Authorization`` header with an unknown token (any endpoint, even a public repo): 401 with
  ``X-Error-Message: Invalid credentials in Authorization header`` -> ``HfHubHTTPError``
  (``.response.status_code == 401``), *not* RepositoryNotFoundError; ``whoami`` re-raises it as
  ``HfHubHTTPError("Invalid user token.")``
* a gated repo's file (``/resolve``) without a token: 401 ``X-Error-Code: GatedRepo`` -> ``GatedRepoError``
  (a RepositoryNotFoundError)
* a gated repo's file with a valid token without access: 403 ``X-Error-Code: GatedRepo`` -> ``GatedRepoError``
* an unknown (or private) repo, anonymous: 401 ``X-Error-Code: RepoNotFound`` -> ``RepositoryNotFoundError``
* an unknown repo, valid token: 404 ``X-Error-Code: RepoNotFound`` -> ``RepositoryNotFoundError``
* an unknown revision: 404 ``X-Error-Code: RevisionNotFound`` -> ``RevisionNotFoundError``
* an unknown file or tree path: 404 ``X-Error-Code: EntryNotFound`` (+ ``X-Repo-Commit``) ->
  ``RemoteEntryNotFoundError`` (a subclass of ``HfHubHTTPError`` and ``EntryNotFoundError``)
* ``/api/whoami-v2`` without a token: 401 (the client refuses ``token=False`` itself)

As on the real Hub, the *metadata* of a gated repo (model info, tree) is public; only file downloads are gated.
``hf_hub_download``/``snapshot_download`` re-raise these errors as listed only when the file is not already
present locally (otherwise they log a warning and return the local file).

Fault injection
---------------
* ``hub.drop_after(path, nbytes, times=1)``: the next ``times`` GETs of that file send the normal status and
  headers (full ``Content-Length``) and then close the connection after ``nbytes`` bytes of body.
* ``hub.fail_with(path, status, times=1, retry_after=None)``: the next ``times`` GETs of that file answer
  ``status`` (e.g. 503 while a server restarts) with a small JSON body, and ``Retry-After`` when given.
* ``hub.ignore_range(path)``: GETs of that file ignore ``Range`` and send the whole file with a 200 (allowed by
  RFC 9110; some proxies do it) until ``hub.reset_faults()``.
* ``hub.corrupt(path)``: GETs serve the file with some bytes flipped (every byte at an absolute offset that is a
  multiple of 4096, so offset 0 is always hit; the length, ETag and hashes stay unchanged) until
  ``hub.uncorrupt(path)`` or ``hub.reset_faults()``.

* ``hub.strip_listing_metadata(repo_id=None)``: model info (even with ``?blobs=true``) and the tree listing carry
  no ``size``, ``lfs`` or ``blobId`` for files (the tree: ``size`` and ``oid`` null, no ``lfs``), as some mirrors
  answer, until ``hub.reset_faults()``;
  each file's own metadata (``HEAD /resolve``) still has its size and ETag.
* ``hub.hide_size(path)``: ``HEAD /resolve`` of that file sends neither ``Content-Length`` nor ``X-Linked-Size``
  (so ``get_hf_file_metadata`` gives ``size=None``); GETs are unchanged. Until ``hub.reset_faults()``.

``path`` is the file path inside the repo (e.g. ``"model.safetensors"``); pass ``repo_id=`` to restrict a fault
to one repo.

Request log
-----------
``hub.requests`` returns a snapshot (list) of `RequestRecord` (method, path without query, range header or
None, status, whether an ``Authorization`` header was present, ...). ``hub.gets(suffix)``/``hub.heads(suffix)``
filter it. Nothing is written to stderr per request.

CLI (benchmarks)
----------------
``python -m tests.support.fakehub --repo facebook/sam3=/some/folder [--port N] [--gated] [--lfs-redirect]`` prints the
URL on stdout and serves until killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeHub", "RepoFileInfo", "RequestRecord", "main"]

LFS_SUFFIXES = (".safetensors", ".pt", ".bin")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_READ_CHUNK = 4 * 1024 * 1024
_CORRUPT_STRIDE = 4096
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
_FAKE_DATE = "2025-11-20T00:00:00.000Z"
_SUBPATHS = {"resolve", "tree", "blob", "raw", "refs", "commit", "revision", "paths-info", "discussions"}


# --------------------------------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RepoFileInfo:
    """Metadata of one served file (computed once at `FakeHub.add_repo` time)."""

    repo_id: str
    path: str  # posix path inside the repo
    local_path: str  # absolute path on disk, read at request time
    size: int
    sha256: str
    blob_id: str  # git blob sha1 of the content (regular file) or of the LFS pointer (LFS file)
    is_lfs: bool
    pointer_size: int | None  # size of the LFS pointer file, None for regular files

    @property
    def etag(self) -> str:
        """ETag value (unquoted) the hub sends on /resolve for this file."""
        return self.sha256 if self.is_lfs else self.blob_id


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One served request. Never contains header values (in particular never the token)."""

    method: str
    path: str  # URL path, percent-decoded, without query string
    range: str | None  # value of the Range request header, if any
    status: int
    auth: bool  # whether an Authorization header was present
    server: str = "hub"  # "hub" or "cdn"
    file: str | None = None  # repo file path served by this request (for /resolve and CDN requests)
    dropped: bool = False  # connection deliberately closed mid-body (drop_after)
    corrupted: bool = False  # body served with flipped bytes (corrupt)


@dataclasses.dataclass
class _Repo:
    repo_id: str
    sha: str
    revision_name: str
    gated: bool
    private: bool
    files: dict[str, RepoFileInfo]  # path -> info, sorted by path
    dirs: dict[str, str]  # dir path -> fake tree oid


@dataclasses.dataclass
class _Token:
    user: str
    can_access_gated: bool


class _HttpError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}


# Cache of content hashes: (realpath, size, mtime_ns, need_git_sha1) -> (sha256, git_sha1 | None).
_HASH_CACHE: dict[tuple[str, int, int, bool], tuple[str, str | None]] = {}
_HASH_CACHE_LOCK = threading.Lock()


def _git_blob_sha1(data: bytes) -> str:
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _hash_file(path: str, need_git_sha1: bool) -> tuple[int, str, str | None]:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, need_git_sha1)
    with _HASH_CACHE_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return st.st_size, cached[0], cached[1]
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % st.st_size) if need_git_sha1 else None
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            sha256.update(chunk)
            if sha1 is not None:
                sha1.update(chunk)
    result = (sha256.hexdigest(), sha1.hexdigest() if sha1 is not None else None)
    with _HASH_CACHE_LOCK:
        _HASH_CACHE[key] = result
    return st.st_size, result[0], result[1]


def _is_lfs(path: str, size: int) -> bool:
    return path.lower().endswith(LFS_SUFFIXES) or size > LFS_SIZE_THRESHOLD


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _parse_range(value: str, size: int) -> tuple[int, int] | None | str:
    """Parse a Range header. Returns (start, end_inclusive), None to ignore it (serve 200), or "416"."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value, flags=re.IGNORECASE)
    if m is None:
        return None  # multi-range or garbage: ignoring Range is allowed by RFC 9110
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "416"
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "416"
    return start, min(end, size - 1)


# --------------------------------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, handler, hub: FakeHub, kind: str):
        self.hub = hub
        self.kind = kind
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def server_bind(self) -> None:
        # Like HTTPServer.server_bind, minus the reverse DNS lookup (socket.getfqdn) that can hang in sandboxes.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def get_request(self):
        conn, addr = super().get_request()
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self._conns_lock:
            self._conns.add(conn)
        return conn, addr

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):  # quiet: keep a short note instead of a traceback on stderr
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.hub._note_error(f"{type(exc).__name__}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    # -- quiet --------------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    # -- dispatch -----------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _unsupported(self) -> None:
        self.close_connection = True  # don't bother reading a request body
        self._record_base()
        try:
            self._send_error(_HttpError(405, "Method not allowed on the fake hub"))
        finally:
            self._log_request()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _unsupported

    def _record_base(self) -> None:
        split = urlsplit(self.path)
        self._req_path = unquote(split.path)
        self._req_raw_path = split.path
        self._req_query = parse_qs(split.query)
        self._req_range = self.headers.get("Range")
        self._req_auth = self.headers.get("Authorization") is not None
        self._req_file: str | None = None
        self._req_dropped = False
        self._req_corrupted = False
        self._req_status = 0
        self._req_logged = False

    def _dispatch(self, head: bool) -> None:
        self._record_base()
        try:
            try:
                if self.server.kind == "cdn":
                    self._serve_cdn(head)
                else:
                    self._route(head)
            except _HttpError as e:
                self._send_error(e, head=head)
            except (ConnectionError, TimeoutError):
                raise
            except Exception as e:  # a bug in the fake hub: answer 500 (if still possible) and keep a note
                self.server.hub._note_error(f"{type(e).__name__}: {e}")
                self.close_connection = True
                if not self._req_logged:
                    self._send_error(_HttpError(500, "Internal error in the fake hub"), head=head)
        finally:
            self._log_request()

    def _log_request(self) -> None:
        # Called just before the response headers are flushed (so a client never sees a response whose record is
        # not in the log yet), and again, as a no-op, when the request ends.
        if self._req_logged:
            return
        self._req_logged = True
        self.server.hub._log(
            RequestRecord(
                method=self.command,
                path=self._req_path,
                range=self._req_range,
                status=self._req_status,
                auth=self._req_auth,
                server=self.server.kind,
                file=self._req_file,
                dropped=self._req_dropped,
                corrupted=self._req_corrupted,
            )
        )

    def _route(self, head: bool) -> None:
        hub = self.server.hub
        token = self._check_auth()  # raises 401 on invalid credentials, for every endpoint
        raw = self._req_raw_path
        if raw == "/api/whoami-v2":
            if token is None:
                raise _HttpError(401, "Invalid username or password.")
            self._send_json(hub._whoami_payload(token), head=head)
            return
        if raw.startswith("/api/models/"):
            self._route_api(raw[len("/api/models/") :].split("/"), token, head)
            return
        if raw.startswith("/api/"):
            raise _HttpError(404, "Sorry, we can't find the page you are looking for.")
        segments = raw.lstrip("/").split("/")
        repo_id, rest = hub._split_repo(segments)
        if len(rest) >= 3 and rest[0] == "resolve":
            revision = unquote(rest[1])
            filename = unquote("/".join(rest[2:]))
            self._serve_resolve(repo_id, revision, filename, token, head)
            return
        raise _HttpError(404, "Sorry, we can't find the page you are looking for.")

    def _route_api(self, segments: list[str], token: _Token | None, head: bool) -> None:
        hub = self.server.hub
        repo_id, rest = hub._split_repo(segments)
        repo = hub._get_repo(repo_id, token, for_files=False)
        blobs = _truthy(self._req_query.get("blobs"))
        if not rest or rest == [""]:
            self._send_json(hub._model_info_payload(repo, blobs), head=head)
            return
        if rest[0] == "revision" and len(rest) == 2:
            hub._resolve_revision(repo, unquote(rest[1]))
            self._send_json(hub._model_info_payload(repo, blobs), head=head)
            return
        if rest[0] == "tree" and len(rest) >= 2:
            hub._resolve_revision(repo, unquote(rest[1]))
            sub = unquote("/".join(rest[2:])).strip("/")
            recursive = _truthy(self._req_query.get("recursive"))
            self._send_json(hub._tree_payload(repo, sub, recursive), head=head)
            return
        raise _HttpError(404, "Sorry, we can't find the page you are looking for.")

    # -- auth ---------------------------------------------------------------------------------------------------------
    def _check_auth(self) -> _Token | None:
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, credentials = value.partition(" ")
        token = None
        if scheme.lower() == "bearer" and credentials.strip():
            token = self.server.hub._lookup_token(credentials.strip())
        if token is None:
            raise _HttpError(401, _INVALID_CREDENTIALS)
        return token

    # -- file serving -------------------------------------------------------------------------------------------------
    def _serve_resolve(self, repo_id: str, revision: str, filename: str, token: _Token | None, head: bool) -> None:
        hub = self.server.hub
        repo = hub._get_repo(repo_id, token, for_files=True)
        hub._resolve_revision(repo, revision)
        info = repo.files.get(filename)
        if info is None:
            raise _HttpError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": repo.sha})
        self._req_file = info.path
        headers = {"X-Repo-Commit": repo.sha}
        if info.is_lfs:
            headers["X-Linked-Etag"] = f'"{info.sha256}"'
            if not (head and hub._hides_size(info)):
                headers["X-Linked-Size"] = str(info.size)
            if hub.lfs_redirect:
                location = f"{hub.cdn_url}/lfs/{info.sha256}/{quote(info.path)}"
                body = f"Found. Redirecting to {location}".encode()
                headers.update({"Location": location, "ETag": f'"{info.blob_id}"'})
                self._send_simple(302, body, "text/plain; charset=utf-8", headers, head=head)
                return
        self._send_file(info, headers, head)

    def _serve_cdn(self, head: bool) -> None:
        # /lfs/{sha256}/{path}: no auth check, like a pre-signed CDN url
        parts = self._req_raw_path.lstrip("/").split("/", 2)
        if len(parts) < 2 or parts[0] != "lfs":
            raise _HttpError(404, "NoSuchKey")
        info = self.server.hub._lfs_by_sha(parts[1])
        if info is None:
            raise _HttpError(404, "NoSuchKey")
        self._req_file = info.path
        self._send_file(info, {}, head)

    def _send_file(self, info: RepoFileInfo, extra_headers: dict[str, str], head: bool) -> None:
        hub = self.server.hub
        size = info.size
        start, end, status = 0, size - 1, 200
        if not head and (failure := hub._take_failure(info)) is not None:
            failed, retry_after = failure
            raise _HttpError(failed, "Injected failure", headers={} if retry_after is None else
                             {"Retry-After": str(retry_after)})
        range_header = None if hub._ignores_range(info) else self.headers.get("Range")
        if range_header is not None:
            parsed = _parse_range(range_header, size)
            if parsed == "416":
                raise _HttpError(416, "Requested Range Not Satisfiable", headers={"Content-Range": f"bytes */{size}"})
            if parsed is not None:
                start, end = parsed  # type: ignore[misc]
                status = 206
        length = max(0, end - start + 1)

        drop_at: int | None = None
        corrupt = False
        if not head:
            drop_at, corrupt = hub._take_faults(info)
        self._req_dropped = drop_at is not None and drop_at < length
        self._req_corrupted = corrupt

        self._req_status = status
        self.send_response(status)
        for k, v in extra_headers.items():
            self.send_header(k, v)
        self.send_header("ETag", f'"{info.etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if not (head and hub._hides_size(info)):
            self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        name = info.path.rsplit("/", 1)[-1]
        self.send_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\"")
        if self._req_dropped:
            self.send_header("Connection", "close")
        self._log_request()
        self.end_headers()
        if head or length == 0:
            return

        to_send = length if drop_at is None else min(length, drop_at)
        try:
            with open(info.local_path, "rb") as f:
                if corrupt:
                    self._send_corrupted(f, start, to_send)
                elif to_send:  # drop_after(path, 0): the headers alone (sendfile refuses a count of 0)
                    sent = self.connection.sendfile(f, offset=start, count=to_send)
                    if sent != to_send:
                        self.close_connection = True  # file shrank on disk: don't leave the client hanging
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        if to_send < length:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send_corrupted(self, f, start: int, count: int) -> None:
        f.seek(start)
        pos = start
        remaining = count
        while remaining > 0:
            chunk = f.read(min(_READ_CHUNK, remaining))
            if not chunk:
                self.close_connection = True
                return
            buf = bytearray(chunk)
            first = -pos % _CORRUPT_STRIDE  # index in buf of the first absolute offset multiple of the stride
            for i in range(first, len(buf), _CORRUPT_STRIDE):
                buf[i] ^= 0xFF
            self.wfile.write(buf)
            pos += len(buf)
            remaining -= len(buf)

    # -- small responses ----------------------------------------------------------------------------------------------
    def _send_simple(self, status: int, body: bytes, content_type: str, headers: dict, head: bool = False) -> None:
        self._req_status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._log_request()
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _send_json(self, payload: Any, head: bool = False, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send_simple(status, body, "application/json; charset=utf-8", headers or {}, head=head)

    def _send_error(self, err: _HttpError, head: bool = False) -> None:
        headers = dict(err.headers)
        headers["X-Error-Message"] = err.message
        if err.error_code:
            headers["X-Error-Code"] = err.error_code
        self._send_json({"error": err.message}, head=head, status=err.status, headers=headers)


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


class FakeHub:
    """A fake Hugging Face Hub serving local folders over HTTP. See the module docstring for details."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, lfs_redirect: bool = False):
        self.host = host
        self.port = port
        self.lfs_redirect = lfs_redirect
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._tokens: dict[str, _Token] = {}  # sha256(token) -> token info; the token itself is never stored
        self._lfs_index: dict[str, RepoFileInfo] = {}
        self._drops: dict[tuple[str | None, str], list[int]] = {}  # (repo_id|None, path) -> [nbytes, times_left]
        self._corrupt: set[tuple[str | None, str]] = set()
        self._failures: dict[tuple[str | None, str], list] = {}  # (repo_id|None, path) -> [status, times_left, retry]
        self._ignore_range: set[tuple[str | None, str]] = set()
        self._stripped_listings: set[str | None] = set()  # repo_id, or None for every repo
        self._hidden_sizes: set[tuple[str | None, str]] = set()
        self._requests: list[RequestRecord] = []
        self._errors: list[str] = []
        self._server: _Server | None = None
        self._cdn: _Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        """Start listening (idempotent). Returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), _Handler, self, "hub")
        self.port = self._server.server_address[1]
        servers = [self._server]
        if self.lfs_redirect:
            self._cdn = _Server((self.host, 0), _Handler, self, "cdn")
            servers.append(self._cdn)
        for srv in servers:
            t = threading.Thread(
                target=srv.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fakehub-{srv.kind}", daemon=True
            )
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        for srv in (self._server, self._cdn):
            if srv is None:
                continue
            srv.shutdown()
            srv.close_all_connections()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._server = self._cdn = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the hub, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def cdn_url(self) -> str | None:
        """Base URL of the fake CDN (only with ``lfs_redirect=True``)."""
        if self._cdn is None:
            return None
        return f"http://{self.host}:{self._cdn.server_address[1]}"

    # -- content ------------------------------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        folder: str | os.PathLike,
        *,
        gated: bool = False,
        revision_name: str = "main",
        private: bool = False,
    ) -> str:
        """Serve every file under `folder` (recursively) as model repo `repo_id`; returns the 40-hex commit sha.

        Hashes are computed here, once (and cached across calls for unchanged files). Files are read from disk at
        request time and must not change size afterwards; call `add_repo` again to pick up changes (this replaces
        the repo and yields a new commit sha if the content changed).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise NotADirectoryError(str(folder))
        files: dict[str, RepoFileInfo] = {}
        for root, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(root, name)
                if not os.path.isfile(full):
                    continue
                rel = Path(full).relative_to(folder).as_posix()
                lfs = _is_lfs(rel, os.path.getsize(full))
                size, sha256, git_sha1 = _hash_file(full, need_git_sha1=not lfs)
                pointer = _lfs_pointer(sha256, size) if lfs else None
                files[rel] = RepoFileInfo(
                    repo_id=repo_id,
                    path=rel,
                    local_path=os.path.abspath(full),
                    size=size,
                    sha256=sha256,
                    blob_id=_git_blob_sha1(pointer) if pointer is not None else git_sha1,  # type: ignore[arg-type]
                    is_lfs=lfs,
                    pointer_size=len(pointer) if pointer is not None else None,
                )
        commit = hashlib.sha1(b"fakehub-commit\n")
        for rel in sorted(files):
            info = files[rel]
            commit.update(f"{rel}\0{info.sha256}\0{info.size}\n".encode())
        sha = commit.hexdigest()
        dirs: dict[str, str] = {}
        for rel in files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                dirs[d] = ""
        for d in dirs:
            h = hashlib.sha1(b"fakehub-tree\n")
            for rel in sorted(files):
                if rel.startswith(d + "/"):
                    h.update(f"{rel}\0{files[rel].blob_id}\n".encode())
            dirs[d] = h.hexdigest()
        repo = _Repo(
            repo_id=repo_id,
            sha=sha,
            revision_name=revision_name,
            gated=gated,
            private=private,
            files=files,
            dirs=dict(sorted(dirs.items())),
        )
        with self._lock:
            self._repos[repo_id] = repo
            self._lfs_index = {
                i.sha256: i for r in self._repos.values() for i in r.files.values() if i.is_lfs
            }
        return sha

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)
            self._lfs_index = {i.sha256: i for r in self._repos.values() for i in r.files.values() if i.is_lfs}

    def repo_sha(self, repo_id: str) -> str:
        with self._lock:
            return self._repos[repo_id].sha

    def files(self, repo_id: str) -> dict[str, RepoFileInfo]:
        """Metadata of every file of a repo, by repo path."""
        with self._lock:
            return dict(self._repos[repo_id].files)

    def file(self, repo_id: str, path: str) -> RepoFileInfo:
        with self._lock:
            return self._repos[repo_id].files[path]

    # -- auth ---------------------------------------------------------------------------------------------------------
    def add_token(self, token: str, *, can_access_gated: bool = True, user: str = "fakehub-user") -> None:
        """Register a valid token. Only its sha256 digest is kept."""
        with self._lock:
            self._tokens[_token_digest(token)] = _Token(user=user, can_access_gated=can_access_gated)

    def remove_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(_token_digest(token), None)

    # -- faults -------------------------------------------------------------------------------------------------------
    def drop_after(self, path: str, nbytes: int, times: int = 1, *, repo_id: str | None = None) -> None:
        """Make the next `times` GETs of `path` close the connection after `nbytes` bytes of body."""
        if nbytes < 0 or times < 1:
            raise ValueError("nbytes must be >= 0 and times >= 1")
        with self._lock:
            self._drops[(repo_id, path)] = [nbytes, times]

    def corrupt(self, path: str, *, repo_id: str | None = None) -> None:
        """Serve `path` with flipped bytes (same length and metadata) until `uncorrupt`/`reset_faults`."""
        with self._lock:
            self._corrupt.add((repo_id, path))

    def uncorrupt(self, path: str, *, repo_id: str | None = None) -> None:
        with self._lock:
            self._corrupt.discard((repo_id, path))

    def fail_with(self, path: str, status: int, times: int = 1, *, retry_after: int | None = None,
                  after: int = 0, repo_id: str | None = None) -> None:
        """Make `times` GETs of `path` answer `status` (with ``Retry-After: retry_after`` when given),
        once `after` GETs of it have been served as usual (e.g. ``after=1`` with `drop_after`: the
        first GET drops mid-way, the ones after it fail)."""
        if not 400 <= status <= 599 or times < 1 or after < 0:
            raise ValueError("status must be an HTTP error (4xx/5xx), times >= 1 and after >= 0")
        with self._lock:
            self._failures[(repo_id, path)] = [status, times, retry_after, after]

    def ignore_range(self, path: str, *, repo_id: str | None = None) -> None:
        """Serve `path` whole (200) even to a Range request, until `reset_faults`."""
        with self._lock:
            self._ignore_range.add((repo_id, path))

    def strip_listing_metadata(self, *, repo_id: str | None = None) -> None:
        """Serve model info and tree listings without file sizes or hashes, until `reset_faults`."""
        with self._lock:
            self._stripped_listings.add(repo_id)

    def hide_size(self, path: str, *, repo_id: str | None = None) -> None:
        """Answer HEAD of `path` with no Content-Length or X-Linked-Size, until `reset_faults`."""
        with self._lock:
            self._hidden_sizes.add((repo_id, path))

    def reset_faults(self) -> None:
        with self._lock:
            self._drops.clear()
            self._corrupt.clear()
            self._failures.clear()
            self._ignore_range.clear()
            self._stripped_listings.clear()
            self._hidden_sizes.clear()

    # -- request log --------------------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log (oldest first)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def gets(self, path_suffix: str = "") -> list[RequestRecord]:
        """GET records whose URL path or served repo file ends with `path_suffix`."""
        return self._filter("GET", path_suffix)

    def heads(self, path_suffix: str = "") -> list[RequestRecord]:
        """HEAD records whose URL path or served repo file ends with `path_suffix`."""
        return self._filter("HEAD", path_suffix)

    def _filter(self, method: str, suffix: str) -> list[RequestRecord]:
        return [
            r
            for r in self.requests
            if r.method == method and (r.path.endswith(suffix) or (r.file is not None and r.file.endswith(suffix)))
        ]

    @property
    def errors(self) -> list[str]:
        """Unexpected server-side exceptions (short notes, no tracebacks); should stay empty."""
        with self._lock:
            return list(self._errors)

    # -- internals used by the handler --------------------------------------------------------------------------------
    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _note_error(self, note: str) -> None:
        with self._lock:
            self._errors.append(note)

    def _lookup_token(self, token: str) -> _Token | None:
        with self._lock:
            return self._tokens.get(_token_digest(token))

    def _split_repo(self, segments: list[str]) -> tuple[str, list[str]]:
        """Split URL path segments into (repo_id, remaining segments), preferring known repos."""
        decoded = [unquote(s) for s in segments]
        with self._lock:
            if len(decoded) >= 2 and f"{decoded[0]}/{decoded[1]}" in self._repos:
                return f"{decoded[0]}/{decoded[1]}", segments[2:]
            if decoded and decoded[0] in self._repos:
                return decoded[0], segments[1:]
        if len(decoded) >= 2 and decoded[1] not in _SUBPATHS:
            return f"{decoded[0]}/{decoded[1]}", segments[2:]
        return (decoded[0] if decoded else ""), segments[1:]

    def _get_repo(self, repo_id: str, token: _Token | None, *, for_files: bool) -> _Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None or (repo.private and token is None):
            if token is None:
                raise _HttpError(401, "Repository not found", "RepoNotFound")
            raise _HttpError(404, "Repository not found", "RepoNotFound")
        if for_files and repo.gated:
            if token is None:
                raise _HttpError(
                    401,
                    f"Access to model {repo_id} is restricted. You must have access to it and be authenticated "
                    "to access it. Please log in.",
                    "GatedRepo",
                )
            if not token.can_access_gated:
                raise _HttpError(
                    403,
                    f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                    f"Visit {self.url}/{repo_id} to ask for access.",
                    "GatedRepo",
                )
        return repo

    @staticmethod
    def _resolve_revision(repo: _Repo, revision: str) -> None:
        if revision not in (repo.revision_name, repo.sha):
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _lfs_by_sha(self, sha256: str) -> RepoFileInfo | None:
        with self._lock:
            return self._lfs_index.get(sha256)

    def _take_failure(self, info: RepoFileInfo) -> tuple[int, int | None] | None:
        """(status, retry_after) when this GET of `info` must fail (consuming one failure), else None."""
        with self._lock:
            for key in ((info.repo_id, info.path), (None, info.path)):
                entry = self._failures.get(key)
                if entry is not None and entry[3] > 0:  # still serving as usual
                    entry[3] -= 1
                    return None
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._failures[key]
                    return entry[0], entry[2]
        return None

    def _ignores_range(self, info: RepoFileInfo) -> bool:
        with self._lock:
            return (info.repo_id, info.path) in self._ignore_range or (None, info.path) in self._ignore_range

    def _listing_stripped(self, repo: _Repo) -> bool:
        with self._lock:
            return repo.repo_id in self._stripped_listings or None in self._stripped_listings

    def _hides_size(self, info: RepoFileInfo) -> bool:
        with self._lock:
            return (info.repo_id, info.path) in self._hidden_sizes or (None, info.path) in self._hidden_sizes

    def _take_faults(self, info: RepoFileInfo) -> tuple[int | None, bool]:
        """Return (drop_after_nbytes or None, corrupt) for a GET of `info`, consuming one drop."""
        with self._lock:
            drop: int | None = None
            for key in ((info.repo_id, info.path), (None, info.path)):
                entry = self._drops.get(key)
                if entry is not None:
                    drop = entry[0]
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._drops[key]
                    break
            corrupt = (info.repo_id, info.path) in self._corrupt or (None, info.path) in self._corrupt
        return drop, corrupt

    def _model_info_payload(self, repo: _Repo, blobs: bool) -> dict:
        siblings = []
        stripped = self._listing_stripped(repo)
        for info in repo.files.values():
            sib: dict[str, Any] = {"rfilename": info.path}
            if blobs and not stripped:
                sib["size"] = info.size
                sib["blobId"] = info.blob_id
                if info.is_lfs:
                    sib["lfs"] = {"sha256": info.sha256, "size": info.size, "pointerSize": info.pointer_size}
            siblings.append(sib)
        author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        payload: dict[str, Any] = {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": author,
            "sha": repo.sha,
            "lastModified": _FAKE_DATE,
            "createdAt": _FAKE_DATE,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "library_name": None,
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(i.size for i in repo.files.values()),
        }
        return payload

    def _tree_payload(self, repo: _Repo, sub: str, recursive: bool) -> list[dict]:
        if sub and sub not in repo.dirs:
            raise _HttpError(404, f"Entry not found: {sub}", "EntryNotFound", {"X-Repo-Commit": repo.sha})
        prefix = f"{sub}/" if sub else ""

        def wanted(path: str) -> bool:
            if not path.startswith(prefix):
                return False
            return recursive or "/" not in path[len(prefix) :]

        stripped = self._listing_stripped(repo)
        out: list[dict] = []
        for d, oid in repo.dirs.items():
            if d != sub and wanted(d):
                out.append({"type": "directory", "oid": oid, "size": 0, "path": d})
        for info in repo.files.values():
            if wanted(info.path):
                if stripped:
                    # huggingface_hub's RepoFile needs the keys, so null rather than absent
                    out.append({"type": "file", "oid": None, "size": None, "path": info.path})
                    continue
                entry: dict[str, Any] = {"type": "file", "oid": info.blob_id, "size": info.size, "path": info.path}
                if info.is_lfs:
                    entry["lfs"] = {"oid": info.sha256, "size": info.size, "pointerSize": info.pointer_size}
                out.append(entry)
        return out

    def _whoami_payload(self, token: _Token) -> dict:
        return {
            "type": "user",
            "id": hashlib.sha1(token.user.encode()).hexdigest()[:24],
            "name": token.user,
            "fullname": token.user,
            "email": None,
            "emailVerified": False,
            "canPay": False,
            "isPro": False,
            "periodEnd": None,
            "avatarUrl": "",
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "fakehub", "role": "read", "createdAt": _FAKE_DATE},
            },
        }


# --------------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fakehub",
                                     description="Serve local folders as a fake HF Hub.")
    parser.add_argument("--repo", action="append", required=True, metavar="REPO_ID=FOLDER", help="repeatable")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--gated", action="store_true", help="mark every repo as gated")
    parser.add_argument("--lfs-redirect", action="store_true", help="302 LFS files to a second 'CDN' port")
    parser.add_argument(
        "--token-env",
        metavar="VAR",
        help="register the token found in this environment variable (the value is never printed)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    hub = FakeHub(args.host, args.port, lfs_redirect=args.lfs_redirect)
    for spec in args.repo:
        repo_id, sep, folder = spec.partition("=")
        if not sep or not repo_id or not folder:
            parser.error(f"--repo expects REPO_ID=FOLDER, got {spec!r}")
        t0 = time.perf_counter()
        sha = hub.add_repo(repo_id, folder, gated=args.gated)
        print(f"{repo_id} {sha} ({time.perf_counter() - t0:.1f}s to hash)", file=sys.stderr, flush=True)
    if args.token_env:
        value = os.environ.get(args.token_env)
        if not value:
            parser.error(f"environment variable {args.token_env} is empty")
        hub.add_token(value)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hub.start()
    print(hub.url, flush=True)
    try:
        while not stop.wait(0.1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
