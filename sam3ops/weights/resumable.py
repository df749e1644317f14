"""One resumable HTTP download, shared by the hub download and the registry pull.

A GET is streamed into a ``.part`` file that outlives the process; when the connection drops, the
next attempt (in this run or a later one) asks for the rest with a ``Range`` request, starts over
when the server ignores ``Range``, and takes a 416 for a part that is already whole. The sha256 of
the file can be computed on the way, so a caller need not read it back.

Retries come in two layers:

- urllib3's ``Retry``, mounted on the session, re-sends a request that could not connect, timed
  out before the response, or got a status worth retrying (429, 5xx while a server restarts),
  with exponential backoff and ``Retry-After``. It never sees a body cut off mid-stream: by then
  the response was handed to us.
- Our loop resumes such a body, and any request urllib3 gave up on, as long as attempts keep
  making progress (bounded by attempts and/or seconds without a new byte, see :class:`RetryPolicy`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sam3ops.errors import IntegrityError, safe_url

log = logging.getLogger(__name__)

# Read straight from urllib3's stream. Measured over loopback (fake hub in its own process, torch
# and mlflow imported, interleaved medians on the 2-core VM): `sam3ops download` 1470 MB/s with
# 1 MiB reads, 890 with 64 KiB (curl 845); with sha256 on the way, as the pull does, 725 vs 525.
# (The earlier win of 64 KiB chunks, blamed on glibc's mmap threshold, was measured through
# requests' iter_content, which this path does not use.)
CHUNK_BYTES = 1024 * 1024
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60
# Statuses a server answers while it restarts, is overloaded or rate-limits: worth asking again.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransferError(ConnectionError):
    """The connection kept failing; what arrived is kept in the ``.part`` file for the next run.

    Attributes:
        done: bytes in the ``.part`` file when we gave up.
        size: the size expected (None when unknown).
        cause: the type name of the last failure (``ConnectionError``, ``RetryError``, ...).
    """

    def __init__(self, message: str, *, done: int, size: int | None, cause: str):
        super().__init__(message)
        self.done, self.size, self.cause = done, size, cause


class _ShortBody(ConnectionError):
    """A response that ended cleanly before the expected size: resumed like a dropped one."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one download tries before it raises :class:`TransferError`.

    Attributes:
        http_retries: urllib3's retries of one request (connect errors, timeouts before the
            response, :data:`RETRY_STATUSES`), with backoff ``backoff_s * 2**n`` capped at ``backoff_max_s``.
        backoff_s, backoff_max_s: also our pause after an attempt that got no byte further
            (none after one that did: a drop mid-body is resumed at once).
        stalled_attempts: give up after this many attempts in a row without progress (None: no bound).
        stalled_seconds: give up when no byte arrived for this long (None: no bound). Checked
            between attempts, so one attempt's own urllib3 retries may run past it.
        max_attempts: give up after this many attempts in all, progress or not (None: no bound).
        read_timeout_s: the longest wait for the next byte, the first one included.
    """

    http_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    stalled_attempts: int | None = 5
    stalled_seconds: float | None = None
    max_attempts: int | None = 100
    read_timeout_s: float = READ_TIMEOUT_S

    def __post_init__(self):
        if self.stalled_attempts is None and self.stalled_seconds is None and self.max_attempts is None:
            raise ValueError("a RetryPolicy needs a bound: stalled_attempts, stalled_seconds or max_attempts")

    def urllib3_retry(self) -> Retry:
        """The per-request half of the policy, for ``HTTPAdapter(max_retries=...)``."""
        return Retry(total=self.http_retries, allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
                     backoff_factor=self.backoff_s, backoff_max=self.backoff_max_s, raise_on_status=True,
                     respect_retry_after_header=True)

    def gives_up(self, attempts: int, stalled: int, stalled_since: float) -> str | None:
        """Why to stop after ``attempts`` (``stalled`` of them in a row without progress), else None."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return f"attempt {attempts} of {self.max_attempts}"
        if self.stalled_attempts is not None and stalled >= self.stalled_attempts:
            return f"no progress in {stalled} attempts in a row"
        if self.stalled_seconds is not None and stalled and time.monotonic() - stalled_since > self.stalled_seconds:
            return f"no progress in {self.stalled_seconds:g} s"
        return None

    def pause(self, stalled: int) -> float:
        """Seconds to wait before the next attempt."""
        return min(self.backoff_s * 2 ** (stalled - 1), self.backoff_max_s) if stalled else 0.0


@dataclass(frozen=True)
class Fetched:
    """What :func:`download` did."""

    size: int  # of the finished file
    received: int  # bytes that came over the network in this call (a restarted file counts twice)
    sha256: str | None  # of the whole file, when asked for
    attempts: int  # requests our loop made (urllib3's own retries not counted)


def download(url: str, dest: Path, *, part: Path | None = None, size: int | None = None,
             headers: Mapping[str, str] | None = None, auth=None, verify: bool | str = True,
             cert: str | None = None, progress: Callable[[int], object] | None = None, sha256: bool = False,
             retry: RetryPolicy | None = None, name: str | None = None) -> Fetched:
    """GET ``url`` into ``dest`` through ``part``, resuming what an earlier call left there.

    Args:
        url: what to fetch; redirects are followed (requests drops ``Authorization`` on another host).
        dest: the finished file; ``part`` is renamed to it only once it is whole.
        part: where the bytes gather until then (default ``dest`` + ``.part``); kept when we give up.
        size: the expected size; None trusts the server's end of body. A server that reports
            another size is refused (:class:`IntegrityError`) rather than downloaded.
        headers, auth, verify, cert: sent with every request, as for ``requests``.
        progress: called with the byte count of every chunk written, and with a negative count when
            bytes already counted are dropped (the server ignored ``Range``: the file starts over).
        sha256: compute the finished file's sha256 on the way (the bytes of a resumed part are read once).
        retry: when to give up (default :class:`RetryPolicy`).
        name: how logs and errors call the file (default ``dest``'s name).

    Returns:
        :class:`Fetched`.

    Raises:
        TransferError: the connection kept failing (the ``.part`` file keeps what arrived).
        requests.HTTPError: a status not worth retrying (401, 403, 404, ...), with its ``response``.
        IntegrityError: the server holds another size than ``size`` (the part is removed).
        OSError: from the local disk (``ENOSPC`` and the like).
    """
    dest, retry, name = Path(dest), retry or RetryPolicy(), name or Path(dest).name
    part = Path(part) if part is not None else dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    state = _Part(part, size, sha256, progress)
    request = dict(headers or {}, **{"Accept-Encoding": "identity"})  # sizes and ranges are about the bytes on disk
    attempts = stalled = 0
    stalled_since = time.monotonic()
    expected = "?" if size is None else size
    with _session(retry, auth, verify, cert) as session:
        while not state.whole:
            attempts += 1
            before = state.received
            try:
                _attempt(session, url, request, state, retry.read_timeout_s)
            except _RETRYABLE as exc:
                if isinstance(exc, requests.exceptions.SSLError):
                    raise  # a certificate the client refuses will not get better by asking again
                if state.received > before:
                    stalled, stalled_since = 0, time.monotonic()
                else:
                    stalled += 1
                if reason := retry.gives_up(attempts, stalled, stalled_since):
                    raise TransferError(f"{name}: the connection kept failing at {state.size} of {expected} bytes "
                                        f"({type(exc).__name__}; {reason})", done=state.size, size=size,
                                        cause=type(exc).__name__) from None
                log.warning("%s: connection lost at %d of %s bytes (%s); resuming", name, state.size, expected,
                            type(exc).__name__)
                time.sleep(retry.pause(stalled))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part.touch()  # an empty file (size 0) is whole before any byte: it still needs to exist
    os.replace(part, dest)
    return Fetched(state.size, state.received, state.hexdigest(), attempts)


_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError,
              requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError, _ShortBody)


def _session(retry: RetryPolicy, auth, verify: bool | str, cert: str | None) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry.urllib3_retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth, session.verify, session.cert = auth, verify, cert
    return session


class _Part:
    """The ``.part`` file: its size, the bytes this call wrote to it, and the running sha256 of its content."""

    def __init__(self, path: Path, expected: int | None, sha256: bool, progress: Callable[[int], object] | None):
        self.path, self.expected, self.progress = path, expected, progress
        self.size = path.stat().st_size if path.exists() else 0
        self.received = 0
        self.ended = False  # a response ended cleanly at the end of the resource
        self._sha = _sha256_of(path) if sha256 else None
        if expected is not None and self.size > expected:  # not this file's bytes: start over
            self.discard()

    @property
    def whole(self) -> bool:
        return self.size == self.expected if self.expected is not None else self.ended

    def discard(self) -> None:
        """Drop what the part holds: the next bytes start the file."""
        if self.size and self.progress is not None:
            self.progress(-self.size)
        self.path.unlink(missing_ok=True)
        self.size = 0
        if self._sha is not None:
            self._sha = hashlib.sha256()

    def append(self, raw) -> None:
        """Copy ``raw`` (urllib3's stream) to the end of the part, a chunk at a time."""
        with open(self.path, "r+b" if self.size else "wb") as handle:
            if self.size:  # the file holds exactly the bytes we counted (hashed and reported), nothing past them
                handle.seek(self.size)
                handle.truncate()
            # Straight from urllib3's stream to the file, a chunk at a time: what arrived before the
            # connection broke is on disk (a short read comes back before the error does).
            while chunk := raw.read(CHUNK_BYTES):
                handle.write(chunk)
                self.size += len(chunk)
                self.received += len(chunk)
                if self._sha is not None:
                    self._sha.update(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))

    def hexdigest(self) -> str | None:
        return self._sha.hexdigest() if self._sha is not None else None


def _attempt(session: requests.Session, url: str, headers: dict[str, str], part: _Part, read_timeout: float) -> None:
    """One GET from the current end of ``part``; appends what arrives."""
    offset = part.size
    request = dict(headers, **({"Range": f"bytes={offset}-"} if offset else {}))
    with session.get(url, headers=request, stream=True, timeout=(CONNECT_TIMEOUT_S, read_timeout)) as response:
        total = _total(response)
        if part.expected is not None and total is not None and total != part.expected:
            part.discard()
            raise IntegrityError(f"{safe_url(url)} has {total} bytes, {part.expected} were expected")
        if response.status_code == 416:  # nothing past offset
            if total == offset or (total is None and part.expected is None):
                part.ended = True
                return
            part.discard()  # the part is not a prefix of this resource
            raise _ShortBody(f"HTTP 416 at {offset} bytes")
        response.raise_for_status()
        if offset and response.status_code != 206:  # the server ignored Range: it sends the whole file
            part.discard()
        part.append(response.raw)
    if part.expected is None:
        part.ended = True
    elif part.size < part.expected:
        raise _ShortBody(f"the body ended at {part.size} of {part.expected} bytes")
    elif part.size > part.expected:
        part.discard()
        raise IntegrityError(f"{safe_url(url)} sent more than the {part.expected} bytes expected")


def _total(response: requests.Response) -> int | None:
    """The size of the whole resource, as the response states it (None when it does not)."""
    if response.status_code in (206, 416):
        found = re.fullmatch(r"bytes [^/]+/(\d+)", response.headers.get("Content-Range", "").strip())
        return int(found.group(1)) if found else None
    if response.status_code == 200 and (length := response.headers.get("Content-Length", "")).isdigit():
        return int(length)
    return None


def _sha256_of(path: Path):
    """A sha256 fed with the bytes already in ``path`` (empty when it does not exist)."""
    sha = hashlib.sha256()
    if path.exists():
        with open(path, "rb") as handle:
            while block := handle.read(1024 * 1024):
                sha.update(block)
    return sha
