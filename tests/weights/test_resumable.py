"""The one resumable HTTP download (hub download and registry pull) against a real server on 127.0.0.1.

The server is the fake hub; its ``/resolve`` URL is fetched directly, so nothing of huggingface_hub
is on the path. Faults are the hub's: ``drop_after`` (the connection closes mid-body),
``ignore_range``, ``fail_with`` (an HTTP status).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest
import requests

from sam3ops.errors import IntegrityError, http_status
from sam3ops.weights import resumable
from tests.support.fakehub import FakeHub

REPO = "test/files"
NAME = "weights.safetensors"
SIZE = 3 * 1024 * 1024 + 123
# Quick backoff, so a test that waits through retries takes a fraction of a second.
FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture(scope="module")
def content() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def hub(tmp_path, content):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / NAME).write_bytes(content)
    with FakeHub() as server:
        server.add_repo(REPO, folder)
        yield server
        assert server.errors == []


def _url(hub, name: str = NAME) -> str:
    return f"{hub.url}/{REPO}/resolve/main/{name}"


def _gets(hub) -> list[tuple[int, str | None]]:
    return [(r.status, r.range) for r in hub.gets(NAME)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Progress(list):
    """A progress callback that keeps every count it was given."""

    def __call__(self, n: int) -> None:
        self.append(n)


def test_whole_file_with_sha256_and_progress(hub, tmp_path, content):
    progress = Progress()
    got = resumable.download(_url(hub), tmp_path / "out" / NAME, size=SIZE, sha256=True, progress=progress)
    assert (tmp_path / "out" / NAME).read_bytes() == content
    assert got == resumable.Fetched(size=SIZE, received=SIZE, sha256=_sha(content), attempts=1)
    assert sum(progress) == SIZE and max(progress) <= resumable.CHUNK_BYTES
    assert not (tmp_path / "out" / f"{NAME}.part").exists()
    assert _gets(hub) == [(200, None)]


def test_dropped_connection_resumes_with_range(hub, tmp_path, content):
    hub.drop_after(NAME, 1024 * 1024)
    got = resumable.download(_url(hub), tmp_path / NAME, size=SIZE, sha256=True)
    assert (tmp_path / NAME).read_bytes() == content
    assert got.sha256 == _sha(content)  # hashed across both attempts
    assert (got.attempts, got.received) == (2, SIZE)  # no byte fetched twice
    assert _gets(hub) == [(200, None), (206, f"bytes={1024 * 1024}-")]


def test_a_part_left_by_an_earlier_run_is_resumed(hub, tmp_path, content):
    part = tmp_path / "cache" / "w.part"
    part.parent.mkdir()
    part.write_bytes(content[:1_000_000])
    progress = Progress()
    got = resumable.download(_url(hub), tmp_path / NAME, part=part, size=SIZE, sha256=True, progress=progress)
    assert (tmp_path / NAME).read_bytes() == content and not part.exists()
    assert got.sha256 == _sha(content)  # the kept bytes are hashed too
    assert got.received == sum(progress) == SIZE - 1_000_000
    assert _gets(hub) == [(206, "bytes=1000000-")]


def test_server_that_ignores_range_starts_over(hub, tmp_path, content):
    hub.ignore_range(NAME)
    part = tmp_path / f"{NAME}.part"
    part.write_bytes(content[:1_000_000])
    progress = Progress()
    got = resumable.download(_url(hub), tmp_path / NAME, size=SIZE, sha256=True, progress=progress)
    assert (tmp_path / NAME).read_bytes() == content
    assert got.sha256 == _sha(content) and got.received == SIZE
    assert progress[0] == -1_000_000  # a bar that started at the kept bytes goes back to zero...
    assert sum(progress) == SIZE - 1_000_000  # ...and ends at the file's size
    assert _gets(hub) == [(200, "bytes=1000000-")]


def test_503_then_success_is_retried_by_urllib3(hub, tmp_path, content):
    hub.fail_with(NAME, 503, times=2)
    got = resumable.download(_url(hub), tmp_path / NAME, size=SIZE, retry=resumable.RetryPolicy(**FAST))
    assert (tmp_path / NAME).read_bytes() == content
    assert got.attempts == 1  # urllib3 absorbed both 503s inside our one attempt
    assert _gets(hub) == [(503, None), (503, None), (200, None)]


def test_retry_after_is_respected(hub, tmp_path, content):
    hub.fail_with(NAME, 429, retry_after=1)
    started = time.monotonic()
    resumable.download(_url(hub), tmp_path / NAME, size=SIZE, retry=resumable.RetryPolicy(**FAST))
    assert time.monotonic() - started >= 1
    assert [status for status, _ in _gets(hub)] == [429, 200]


def test_progress_keeps_it_going(hub, tmp_path, content):
    """Every attempt gets further, so even a policy that gives up at the first stalled attempt finishes."""
    hub.drop_after(NAME, 500_000, times=4)
    policy = resumable.RetryPolicy(stalled_attempts=1, max_attempts=None, **FAST)
    got = resumable.download(_url(hub), tmp_path / NAME, size=SIZE, retry=policy)
    assert (tmp_path / NAME).read_bytes() == content and got.attempts == 5
    assert [r for _, r in _gets(hub)] == [None] + [f"bytes={n * 500_000}-" for n in range(1, 5)]


def test_gives_up_after_attempts_without_progress_and_keeps_the_part(hub, tmp_path, content):
    part = tmp_path / f"{NAME}.part"
    part.write_bytes(content[:700_000])
    hub.drop_after(NAME, 0, times=100)  # headers, then the connection closes: not a byte further
    policy = resumable.RetryPolicy(stalled_attempts=3, **FAST)
    failing = f"{NAME}: the connection kept failing at 700000 of {SIZE}"
    with pytest.raises(resumable.TransferError, match=failing) as info:
        resumable.download(_url(hub), tmp_path / NAME, size=SIZE, retry=policy)
    assert (info.value.done, info.value.size, info.value.cause) == (700_000, SIZE, "ProtocolError")
    assert "no progress in 3 attempts" in str(info.value)
    assert part.read_bytes() == content[:700_000] and not (tmp_path / NAME).exists()
    assert _gets(hub) == [(206, "bytes=700000-")] * 3


def test_gives_up_after_seconds_without_progress(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on: every connection is refused
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/file"
    policy = resumable.RetryPolicy(http_retries=0, stalled_attempts=None, stalled_seconds=0.5, max_attempts=None,
                                   backoff_s=0.05, backoff_max_s=0.1)
    started = time.monotonic()
    with pytest.raises(resumable.TransferError, match="no progress in 0.5 s") as info:
        resumable.download(closed, tmp_path / "file", retry=policy)
    assert 0.5 <= time.monotonic() - started < 10
    assert info.value.cause == "ConnectionError" and info.value.done == 0


def test_retryable_statuses_urllib3_gave_up_on_are_attempts_of_ours(hub, tmp_path):
    hub.fail_with(NAME, 503, times=100)
    policy = resumable.RetryPolicy(http_retries=1, stalled_attempts=2, **FAST)
    with pytest.raises(resumable.TransferError) as info:
        resumable.download(_url(hub), tmp_path / NAME, size=SIZE, retry=policy)
    assert info.value.cause == "RetryError"
    assert _gets(hub) == [(503, None)] * 4  # 2 attempts of ours, each a request and urllib3's one retry


@pytest.mark.parametrize("status", [401, 403, 404])
def test_statuses_not_worth_retrying_raise_at_once(hub, tmp_path, status):
    if status == 404:
        url = _url(hub, "missing.bin")
    else:
        hub.fail_with(NAME, status)
        url = _url(hub)
    with pytest.raises(requests.HTTPError) as info:
        resumable.download(url, tmp_path / NAME, size=SIZE, retry=resumable.RetryPolicy(**FAST))
    assert http_status(info.value) == status
    assert len(hub.gets("missing.bin" if status == 404 else NAME)) == 1


def test_416_for_a_part_that_is_already_whole(hub, tmp_path, content):
    (tmp_path / f"{NAME}.part").write_bytes(content)
    got = resumable.download(_url(hub), tmp_path / NAME)  # size unknown: ask the server
    assert (tmp_path / NAME).read_bytes() == content and got.received == 0
    assert _gets(hub) == [(416, f"bytes={SIZE}-")]
    (tmp_path / f"{NAME}.part").write_bytes(content)
    hub.clear_requests()
    resumable.download(_url(hub), tmp_path / NAME, size=SIZE)  # size known: nothing to ask
    assert _gets(hub) == []


def test_an_empty_file(hub, tmp_path):
    (tmp_path / "empty-repo").mkdir()
    (tmp_path / "empty-repo" / "empty.txt").write_bytes(b"")
    hub.add_repo("test/empty", tmp_path / "empty-repo")
    url = f"{hub.url}/test/empty/resolve/main/empty.txt"
    got = resumable.download(url, tmp_path / "known" / "empty.txt", size=0, sha256=True)  # whole before any request
    assert (tmp_path / "known" / "empty.txt").read_bytes() == b"" and got.sha256 == _sha(b"") and got.attempts == 0
    got = resumable.download(url, tmp_path / "unknown" / "empty.txt")
    assert (tmp_path / "unknown" / "empty.txt").read_bytes() == b"" and got.attempts == 1


def test_a_part_longer_than_the_file_starts_over(hub, tmp_path, content):
    (tmp_path / f"{NAME}.part").write_bytes(content + b"other bytes")
    got = resumable.download(_url(hub), tmp_path / NAME, size=SIZE, sha256=True)
    assert (tmp_path / NAME).read_bytes() == content and got.sha256 == _sha(content)
    assert _gets(hub) == [(200, None)]


def test_a_server_with_another_size_is_refused(hub, tmp_path):
    with pytest.raises(IntegrityError, match=f"has {SIZE} bytes, {SIZE - 1} were expected"):
        resumable.download(_url(hub), tmp_path / NAME, size=SIZE - 1)
    assert not (tmp_path / NAME).exists() and not (tmp_path / f"{NAME}.part").exists()


def test_headers_and_auth_are_sent(hub, tmp_path):
    hub.add_token("hf_resumable_test_token")
    resumable.download(_url(hub), tmp_path / NAME, headers={"Authorization": "Bearer hf_resumable_test_token"})
    with pytest.raises(requests.HTTPError) as info:  # the fake hub refuses an unknown bearer token
        resumable.download(_url(hub), tmp_path / "again", auth=_Bearer("hf_unknown"))
    assert http_status(info.value) == 401
    assert [r.auth for r in hub.gets(NAME)] == [True, True]


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def test_a_policy_needs_a_bound():
    with pytest.raises(ValueError, match="needs a bound"):
        resumable.RetryPolicy(stalled_attempts=None, stalled_seconds=None, max_attempts=None)
