"""Tests for tests/support/fakehub.py against the real huggingface_hub client (2.4, httpx2 stack)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, constants, file_download, get_hf_file_metadata, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.support.fakehub import FakeHub

REPO = "facebook/sam3"
GATED = "facebook/sam3-gated"
GOOD_TOKEN = "hf_fakehub_good_token"
NO_ACCESS_TOKEN = "hf_fakehub_no_gated_access"
CANARY = "hf_CANARY_must_never_leak_4242"
MiB = 1024 * 1024


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path, monkeypatch):
    """Never touch the real HF cache/token: env + already-imported constants point into tmp_path."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return home


@pytest.fixture
def src(tmp_path) -> Path:
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "sam3"}\n')
    (folder / "sub" / "notes.txt").write_bytes(os.urandom(4000))
    (folder / "weights.safetensors").write_bytes(os.urandom(3 * 1000 * 1000))
    return folder


@pytest.fixture
def hub(src):
    with FakeHub() as h:
        h.add_repo(REPO, src)
        h.add_repo(GATED, src, gated=True)
        h.add_token(GOOD_TOKEN)
        h.add_token(NO_ACCESS_TOKEN, can_access_gated=False)
        yield h
        assert h.errors == []


def _dl(hub, filename, tmp_path, *, repo=REPO, token=False, local="dl", **kw) -> str:
    return hf_hub_download(
        repo,
        filename,
        endpoint=hub.url,
        token=token,
        local_dir=tmp_path / local,
        cache_dir=tmp_path / "cache",
        **kw,
    )


# ---------------------------------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------------------------------


def test_model_info_files_metadata(hub, src):
    sha = hub.repo_sha(REPO)
    assert len(sha) == 40 and int(sha, 16) >= 0
    api = HfApi(endpoint=hub.url)
    info = api.model_info(REPO, files_metadata=True, token=False)
    assert info.sha == sha
    sib = {s.rfilename: s for s in info.siblings}
    assert set(sib) == {"config.json", "sub/notes.txt", "weights.safetensors"}

    weights = (src / "weights.safetensors").read_bytes()
    assert sib["weights.safetensors"].size == len(weights)
    assert sib["weights.safetensors"].lfs is not None
    assert sib["weights.safetensors"].lfs.sha256 == _sha256(weights)
    assert sib["weights.safetensors"].lfs.size == len(weights)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{_sha256(weights)}\nsize {len(weights)}\n"
    assert sib["weights.safetensors"].lfs.pointer_size == len(pointer)
    assert sib["weights.safetensors"].blob_id == _git_sha1(pointer.encode())

    config = (src / "config.json").read_bytes()
    assert sib["config.json"].lfs is None
    assert sib["config.json"].blob_id == _git_sha1(config)
    assert sib["config.json"].size == len(config)

    # by revision name and by full commit sha; without files_metadata the siblings carry names only
    assert api.model_info(REPO, revision="main", token=False).sha == sha
    by_sha = api.model_info(REPO, revision=sha, token=GOOD_TOKEN)
    assert by_sha.sha == sha and by_sha.siblings[0].size is None
    assert [r.path for r in hub.requests] == [
        f"/api/models/{REPO}",
        f"/api/models/{REPO}/revision/main",
        f"/api/models/{REPO}/revision/{sha}",
    ]
    assert [r.auth for r in hub.requests] == [False, False, True]


def test_commit_sha_is_deterministic(src, tmp_path):
    with FakeHub() as a, FakeHub() as b:
        assert a.add_repo("x/y", src) == b.add_repo("x/y", src)
        (src / "config.json").write_text("changed\n")
        assert b.add_repo("x/y", src) != a.repo_sha("x/y")


def test_list_repo_tree(hub):
    api = HfApi(endpoint=hub.url)
    top = list(api.list_repo_tree(REPO, token=False))
    assert {(type(e).__name__, e.path) for e in top} == {
        ("RepoFolder", "sub"),
        ("RepoFile", "config.json"),
        ("RepoFile", "weights.safetensors"),
    }
    everything = list(api.list_repo_tree(REPO, recursive=True, token=False))
    files = {e.path: e for e in everything if isinstance(e, RepoFile)}
    assert set(files) == {"config.json", "sub/notes.txt", "weights.safetensors"}
    assert files["weights.safetensors"].lfs.sha256 == hub.file(REPO, "weights.safetensors").sha256
    assert [e.path for e in api.list_repo_tree(REPO, "sub", token=False)] == ["sub/notes.txt"]
    assert any(isinstance(e, RepoFolder) for e in everything)
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "nope", token=False))


def test_whoami(hub):
    api = HfApi(endpoint=hub.url)
    assert api.whoami(token=GOOD_TOKEN)["name"] == "fakehub-user"
    with pytest.raises(HfHubHTTPError) as exc:
        api.whoami(token=CANARY)
    assert exc.value.response.status_code == 401
    assert not isinstance(exc.value, RepositoryNotFoundError)


# ---------------------------------------------------------------------------------------------------------------------
# downloads
# ---------------------------------------------------------------------------------------------------------------------


def test_snapshot_download_identical_and_skips_on_rerun(hub, src, tmp_path):
    out = tmp_path / "snap"
    path = snapshot_download(REPO, endpoint=hub.url, token=False, local_dir=out, cache_dir=tmp_path / "cache")
    assert Path(path) == out.resolve()
    for rel in ("config.json", "sub/notes.txt", "weights.safetensors"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    meta = out / ".cache" / "huggingface" / "download" / "weights.safetensors.metadata"
    commit, etag = meta.read_text().splitlines()[:2]
    assert commit == hub.repo_sha(REPO) and etag == hub.file(REPO, "weights.safetensors").sha256
    # one info call, one tree call, then HEAD + GET per file (revision pinned to the commit sha)
    sha = hub.repo_sha(REPO)
    assert [r.path for r in hub.requests[:2]] == [f"/api/models/{REPO}/revision/main", f"/api/models/{REPO}/tree/{sha}"]
    assert len(hub.heads("/resolve/" + sha + "/config.json")) == 1
    assert len(hub.gets("weights.safetensors")) == 1
    assert all(r.status == 200 for r in hub.requests)

    # Re-run: the commit sha matches the local metadata => no HEAD, no GET, no tree call (tree cached on disk).
    hub.clear_requests()
    snapshot_download(REPO, endpoint=hub.url, token=False, local_dir=out, cache_dir=tmp_path / "cache")
    assert [r.path for r in hub.requests] == [f"/api/models/{REPO}/revision/main"]


def test_snapshot_download_allow_patterns(hub, tmp_path):
    out = tmp_path / "snap"
    snapshot_download(
        REPO, endpoint=hub.url, token=False, local_dir=out, cache_dir=tmp_path / "c", allow_patterns=["*.json"]
    )
    assert sorted(p.name for p in out.iterdir() if p.name != ".cache") == ["config.json"]
    assert hub.gets("weights.safetensors") == [] and len(hub.gets("config.json")) == 1


def test_hf_hub_download_by_branch_head_then_get(hub, src, tmp_path):
    p = _dl(hub, "sub/notes.txt", tmp_path, token=GOOD_TOKEN)
    assert Path(p).read_bytes() == (src / "sub" / "notes.txt").read_bytes()
    assert [(r.method, r.path, r.auth) for r in hub.requests] == [
        ("HEAD", f"/{REPO}/resolve/main/sub/notes.txt", True),
        ("GET", f"/{REPO}/resolve/main/sub/notes.txt", True),
    ]
    # Second call with a branch name: HEAD again, etag matches local metadata => no GET.
    hub.clear_requests()
    _dl(hub, "sub/notes.txt", tmp_path, token=GOOD_TOKEN)
    assert [r.method for r in hub.requests] == ["HEAD"]


def test_resume_after_drop_uses_range(hub, src, tmp_path):
    # huggingface_hub reads the body in 10 MiB chunks (constants.DOWNLOAD_CHUNK_SIZE) and only bytes of complete
    # chunks count as downloaded, so a Range resume needs a drop after the first 10 MiB.
    big = os.urandom(12 * MiB + 321)
    (src / "big.safetensors").write_bytes(big)
    hub.add_repo(REPO, src)
    hub.drop_after("big.safetensors", 11 * MiB)
    p = _dl(hub, "big.safetensors", tmp_path)  # one call: it resumes by itself (after a 1 s sleep)
    assert _sha256(Path(p).read_bytes()) == _sha256(big)
    gets = hub.gets("big.safetensors")
    assert [(g.status, g.range, g.dropped) for g in gets] == [
        (200, None, True),
        (206, f"bytes={file_download.constants.DOWNLOAD_CHUNK_SIZE}-", False),
    ]


def test_drop_inside_first_chunk_restarts_without_range(hub, src, tmp_path):
    hub.drop_after("weights.safetensors", 1000)
    p = _dl(hub, "weights.safetensors", tmp_path)
    assert Path(p).read_bytes() == (src / "weights.safetensors").read_bytes()
    assert [(g.range, g.dropped) for g in hub.gets("weights.safetensors")] == [(None, True), (None, False)]


def test_persistent_drop_gives_up(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda s: None))
    hub.drop_after("weights.safetensors", 1000, times=100)
    with pytest.raises(httpx2.RemoteProtocolError):
        _dl(hub, "weights.safetensors", tmp_path)
    assert len(hub.gets("weights.safetensors")) == 6  # first try + 5 retries
    assert not (tmp_path / "dl" / "weights.safetensors").exists()
    leftovers = list((tmp_path / "dl").rglob("*.incomplete"))
    assert leftovers == []  # the per-process temp file is deleted: nothing to resume across calls


def test_corrupt(hub, src, tmp_path):
    original = (src / "weights.safetensors").read_bytes()
    hub.corrupt("weights.safetensors")
    p = _dl(hub, "weights.safetensors", tmp_path)
    got = Path(p).read_bytes()
    assert len(got) == len(original)
    assert _sha256(got) != hub.file(REPO, "weights.safetensors").sha256 == _sha256(original)
    assert sum(a != b for a, b in zip(got[::4096], original[::4096])) == len(original[::4096])
    assert hub.gets("weights.safetensors")[0].corrupted
    # metadata is unaffected
    info = HfApi(endpoint=hub.url).model_info(REPO, files_metadata=True, token=False)
    assert {s.rfilename: s.lfs for s in info.siblings}["weights.safetensors"].sha256 == _sha256(original)

    hub.uncorrupt("weights.safetensors")
    p = _dl(hub, "weights.safetensors", tmp_path, force_download=True)
    assert Path(p).read_bytes() == original


def _resolve_url(hub, path: str) -> str:
    return f"{hub.url}/{REPO}/resolve/main/{path}"


def test_fail_with_answers_the_status_then_serves(hub, src):
    hub.fail_with("weights.safetensors", 503, times=2, retry_after=1)
    # HEAD (the metadata request) is not failed, nor counted: only the transfer of the bytes is
    head = urllib.request.Request(_resolve_url(hub, "weights.safetensors"), method="HEAD")
    assert urllib.request.urlopen(head, timeout=10).status == 200
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(_resolve_url(hub, "weights.safetensors"), timeout=10)
        assert exc.value.code == 503 and exc.value.headers["Retry-After"] == "1"
    with urllib.request.urlopen(_resolve_url(hub, "weights.safetensors"), timeout=10) as response:
        assert response.read() == (src / "weights.safetensors").read_bytes()
    assert [g.status for g in hub.gets("weights.safetensors")] == [503, 503, 200]


def test_ignore_range_sends_the_whole_file(hub, src):
    hub.ignore_range("weights.safetensors")
    request = urllib.request.Request(_resolve_url(hub, "weights.safetensors"), headers={"Range": "bytes=1000-"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and "Content-Range" not in response.headers
        assert response.read() == (src / "weights.safetensors").read_bytes()
    hub.reset_faults()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206 and response.read() == (src / "weights.safetensors").read_bytes()[1000:]


def test_lfs_redirect_mode_like_real_hub(src, tmp_path):
    with FakeHub(lfs_redirect=True) as hub:
        hub.add_repo(GATED, src, gated=True)
        hub.add_token(GOOD_TOKEN)
        p = _dl(hub, "weights.safetensors", tmp_path, repo=GATED, token=GOOD_TOKEN)
        assert Path(p).read_bytes() == (src / "weights.safetensors").read_bytes()
        reqs = hub.requests
        assert [(r.server, r.method, r.status, r.auth) for r in reqs] == [
            ("hub", "HEAD", 302, True),
            ("cdn", "GET", 200, False),  # the client drops Authorization for another origin
        ]
        # regular files are not redirected
        _dl(hub, "config.json", tmp_path, repo=GATED, token=GOOD_TOKEN)
        assert {r.server for r in hub.requests[2:]} == {"hub"}


# ---------------------------------------------------------------------------------------------------------------------
# raw HTTP (what curl would see)
# ---------------------------------------------------------------------------------------------------------------------


def _http(url: str, method: str = "GET", headers: dict | None = None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_resolve_headers_and_ranges(hub, src):
    data = (src / "weights.safetensors").read_bytes()
    sha = hub.repo_sha(REPO)
    url = f"{hub.url}/{REPO}/resolve/{sha}/weights.safetensors"
    status, h, body = _http(url, "HEAD")
    assert status == 200 and body == b""
    assert h["ETag"] == f'"{_sha256(data)}"' == h["X-Linked-Etag"]
    assert h["X-Linked-Size"] == h["Content-Length"] == str(len(data))
    assert h["X-Repo-Commit"] == sha and h["Accept-Ranges"] == "bytes"

    status, h, body = _http(url, headers={"Range": "bytes=10-19"})
    assert (status, h["Content-Range"], body) == (206, f"bytes 10-19/{len(data)}", data[10:20])
    status, h, body = _http(url, headers={"Range": "bytes=2999990-"})
    assert (status, body) == (206, data[2999990:])
    status, h, body = _http(url, headers={"Range": "bytes=-5"})
    assert (status, body) == (206, data[-5:])
    status, h, _ = _http(url, headers={"Range": f"bytes={len(data)}-"})
    assert (status, h["Content-Range"]) == (416, f"bytes */{len(data)}")

    status, h, body = _http(f"{hub.url}/{REPO}/resolve/main/config.json", "HEAD")
    assert h["ETag"] == f'"{_git_sha1((src / "config.json").read_bytes())}"' and "X-Linked-Etag" not in h

    status, h, _ = _http(f"{hub.url}/{REPO}/resolve/main/missing.bin")
    assert (status, h["X-Error-Code"], h["X-Repo-Commit"]) == (404, "EntryNotFound", sha)


# ---------------------------------------------------------------------------------------------------------------------
# auth and errors
# ---------------------------------------------------------------------------------------------------------------------


def test_gated_without_token(hub, tmp_path):
    # metadata of a gated repo is public, like on the real hub
    assert HfApi(endpoint=hub.url).model_info(GATED, token=False).gated == "manual"
    with pytest.raises(GatedRepoError) as exc:
        _dl(hub, "config.json", tmp_path, repo=GATED)
    assert exc.value.response.status_code == 401
    with pytest.raises(GatedRepoError):
        snapshot_download(GATED, endpoint=hub.url, token=False, local_dir=tmp_path / "s", cache_dir=tmp_path / "c")


def test_gated_with_token(hub, src, tmp_path):
    with pytest.raises(GatedRepoError) as exc:
        _dl(hub, "config.json", tmp_path, repo=GATED, token=NO_ACCESS_TOKEN)
    assert exc.value.response.status_code == 403
    p = _dl(hub, "config.json", tmp_path, repo=GATED, token=GOOD_TOKEN)
    assert Path(p).read_bytes() == (src / "config.json").read_bytes()


def test_invalid_token_is_401_and_never_leaks(hub, tmp_path, capfd):
    with pytest.raises(HfHubHTTPError) as exc:
        _dl(hub, "config.json", tmp_path, token=CANARY)
    err = exc.value
    # a plain HfHubHTTPError, not RepositoryNotFoundError/GatedRepoError: the client special-cases this message
    assert type(err) is HfHubHTTPError
    assert err.response.status_code == 401
    assert err.response.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    with pytest.raises(HfHubHTTPError) as exc2:
        HfApi(endpoint=hub.url).model_info(REPO, files_metadata=True, token=CANARY)
    assert type(exc2.value) is HfHubHTTPError and exc2.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        snapshot_download(REPO, endpoint=hub.url, token=CANARY, local_dir=tmp_path / "s", cache_dir=tmp_path / "c")

    assert all(r.auth and r.status == 401 for r in hub.requests)
    out, errout = capfd.readouterr()
    for text in (out, errout, repr(hub.requests), str(err), str(exc2.value), err.response.text, repr(vars(hub))):
        assert CANARY not in text
    assert GOOD_TOKEN not in repr(vars(hub))  # registered tokens are kept as digests only


def test_unknown_repo(hub, tmp_path):
    with pytest.raises(RepositoryNotFoundError) as exc:
        _dl(hub, "config.json", tmp_path, repo="facebook/nope")
    assert type(exc.value) is RepositoryNotFoundError and exc.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError) as exc:
        _dl(hub, "config.json", tmp_path, repo="facebook/nope", token=GOOD_TOKEN)
    assert exc.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("facebook/nope", token=False)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("nope", endpoint=hub.url, token=False, local_dir=tmp_path / "s", cache_dir=tmp_path / "c")


def test_unknown_revision(hub, tmp_path):
    with pytest.raises(RevisionNotFoundError):
        _dl(hub, "config.json", tmp_path, revision="v999")
    with pytest.raises(RevisionNotFoundError):
        _dl(hub, "config.json", tmp_path, revision="0" * 40)
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url).model_info(REPO, revision="v999", files_metadata=True, token=False)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(
            REPO, revision="v999", endpoint=hub.url, token=False, local_dir=tmp_path / "s", cache_dir=tmp_path / "c"
        )


def test_unknown_file(hub, tmp_path):
    with pytest.raises(RemoteEntryNotFoundError) as exc:
        _dl(hub, "missing.json", tmp_path)
    assert isinstance(exc.value, EntryNotFoundError) and exc.value.response.status_code == 404


# ---------------------------------------------------------------------------------------------------------------------
# CLI + HF_ENDPOINT in a subprocess
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_serves_and_works_with_hf_endpoint(src, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_DISABLE_TELEMETRY": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fakehub", "--repo", f"{REPO}={src}", "--port", "0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        script = (
            "from huggingface_hub import hf_hub_download;"
            f"print(hf_hub_download({REPO!r}, 'config.json', local_dir={str(tmp_path / 'o')!r}, token=False))"
        )
        child_env = {**env, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "child_home")}
        res = subprocess.run(
            [sys.executable, "-c", script], env=child_env, capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert Path(res.stdout.strip()).read_bytes() == (src / "config.json").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_strip_listing_metadata_and_hide_size(hub, src):
    api = HfApi(endpoint=hub.url)
    weights = hub.file(REPO, "weights.safetensors")
    hub.strip_listing_metadata()
    sib = {s.rfilename: s for s in api.model_info(REPO, files_metadata=True, token=False).siblings}
    assert set(sib) == {"config.json", "sub/notes.txt", "weights.safetensors"}
    assert all(s.size is None and s.lfs is None and s.blob_id is None for s in sib.values())
    tree = [e for e in api.list_repo_tree(REPO, recursive=True, token=False) if isinstance(e, RepoFile)]
    assert tree and all(e.size is None and e.lfs is None and e.blob_id is None for e in tree)
    # the file's own metadata still says its size and etag (the sha256 of an LFS file)
    meta = get_hf_file_metadata(_resolve_url(hub, "weights.safetensors"), token=False)
    assert (meta.size, meta.etag, meta.commit_hash) == (weights.size, weights.sha256, hub.repo_sha(REPO))

    hub.hide_size("weights.safetensors")
    hub.hide_size("config.json")
    assert get_hf_file_metadata(_resolve_url(hub, "weights.safetensors"), token=False).size is None
    assert get_hf_file_metadata(_resolve_url(hub, "config.json"), token=False).size is None
    with urllib.request.urlopen(_resolve_url(hub, "weights.safetensors"), timeout=10) as response:
        assert response.read() == (src / "weights.safetensors").read_bytes()  # GET unchanged

    hub.reset_faults()
    config = get_hf_file_metadata(_resolve_url(hub, "config.json"), token=False)
    assert config.size == hub.file(REPO, "config.json").size
    assert api.model_info(REPO, files_metadata=True, token=False).siblings[0].size is not None
