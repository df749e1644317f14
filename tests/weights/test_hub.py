"""`sam3ops download` against a real HTTP server on 127.0.0.1 that speaks the hub's API.

The repo served is a tiny SAM3 checkpoint made by `init --preset tiny`, plus a README and a
12 MiB `sam3.pt` (large enough for huggingface_hub's 10 MiB resume steps).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import types

import mlflow
import pytest
from huggingface_hub import constants

from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest, file_hashes
from sam3ops.errors import (
    DiskSpaceError,
    HubAccessError,
    HubUnreachableError,
    InvalidTokenError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from sam3ops.weights import hub, resumable, transfer
from tests.conftest import REPO_ROOT, subprocess_env
from tests.support.cli import run_cli
from tests.support.fakehub import FakeHub

REPO = "facebook/sam3"
TRANSFORMERS_FILES = {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
                      "tokenizer_config.json", "vocab.json", "merges.txt"}
CANARY = "hf_CANARYxLEAKxCHECKx0123456789abcdef"


@pytest.fixture
def fake_hub(repo_folder, monkeypatch):
    with FakeHub() as server:
        server.add_repo(REPO, repo_folder)
        server.add_repo("gated/sam3", repo_folder, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def _download(**kwargs):
    kwargs.setdefault("output", "out")
    return hub.download(repo_id=kwargs.pop("repo_id", REPO), **kwargs)


def _resolve_gets(server, name=""):
    return [r for r in server.gets(name) if "/resolve/" in r.path]


def _last_run(experiment="sam3-download"):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list", order_by=["start_time DESC"])[0]


def test_download_manifest_and_tracked_run(capsys, fake_hub, repo_folder, tmp_path):
    code, out, err = run_cli(capsys, "download", "--output", "out")
    assert code == 0, err
    assert {p.name for p in (tmp_path / "out").iterdir()} >= TRANSFORMERS_FILES | {MANIFEST_NAME}
    assert not (tmp_path / "out" / "sam3.pt").exists() and not (tmp_path / "out" / "README.md").exists()

    manifest = Manifest.read(tmp_path / "out")
    assert manifest.repo_id == REPO and manifest.revision == "main" and manifest.random is False
    assert manifest.commit == fake_hub.repo_sha(REPO)
    assert {f.path for f in manifest.files} == TRANSFORMERS_FILES
    for entry in manifest.files:
        assert entry.sha256 == file_hashes(repo_folder / entry.path)[0]
        assert entry.size == (repo_folder / entry.path).stat().st_size
    assert manifest.problems(tmp_path / "out") == []

    run = _last_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"repo_id": REPO, "revision": "main", "output": "out", "include": "transformers"}
    assert run.data.tags["weights_commit"] == manifest.commit and run.data.tags["weights_random"] == "false"
    expected_bytes = sum((repo_folder / f).stat().st_size for f in TRANSFORMERS_FILES)
    assert run.data.metrics["bytes_downloaded"] == expected_bytes
    assert run.data.metrics["seconds"] > 0 and run.data.metrics["mb_per_s"] > 0
    logged = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=MANIFEST_NAME,
                                                 dst_path=str(tmp_path / "a"))
    assert json.loads(open(logged).read())["commit"] == manifest.commit
    assert manifest.commit[:12] in out


def test_rerun_verifies_and_downloads_nothing(fake_hub, tmp_path):
    _download()
    fake_hub.clear_requests()
    again = _download()
    assert again.bytes_downloaded == 0 and again.fetched == []
    assert _resolve_gets(fake_hub) == []


def test_include_pt_and_all(fake_hub, tmp_path):
    assert {f.path for f in _download(include="pt").manifest.files} == TRANSFORMERS_FILES | {"sam3.pt"}
    assert {f.path for f in _download(include="all", output="all").manifest.files} == (
        TRANSFORMERS_FILES | {"sam3.pt", "README.md"})


def test_dropped_connection_resumes_within_the_run(fake_hub, repo_folder, tmp_path):
    fake_hub.drop_after("sam3.pt", 11 * 1024 * 1024)
    result = _download(include="pt")
    assert file_hashes(tmp_path / "out" / "sam3.pt")[0] == file_hashes(repo_folder / "sam3.pt")[0]
    ranges = [r.range for r in _resolve_gets(fake_hub, "sam3.pt")]
    assert ranges == [None, f"bytes={11 * 1024 * 1024}-"]  # resumed where it broke, not restarted
    assert "sam3.pt" in result.fetched


def test_interrupted_run_resumes_next_run_without_refetching(fake_hub, repo_folder, tmp_path):
    fake_hub.drop_after("sam3.pt", 5 * 1024 * 1024)
    with pytest.raises(HubUnreachableError, match="download interrupted.*sam3.pt") as info:
        _download(include="pt", retry=resumable.RetryPolicy(max_attempts=1))  # gives up at the first drop
    assert "resumes" in info.value.one_line()
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()  # an incomplete folder has no manifest
    assert not (tmp_path / "out" / "sam3.pt").exists()
    assert transfer.partial_bytes(tmp_path / "out", "sam3.pt") == 5 * 1024 * 1024
    finished_before = {f for f in TRANSFORMERS_FILES if (tmp_path / "out" / f).exists()}
    assert finished_before, "files sorted before sam3.pt should have finished"

    fake_hub.clear_requests()
    result = _download(include="pt")
    gets = _resolve_gets(fake_hub)
    refetched = {r.path.rsplit("/", 1)[-1] for r in gets}
    assert refetched.isdisjoint(finished_before)
    assert [r.range for r in gets if r.path.endswith("sam3.pt")] == [f"bytes={5 * 1024 * 1024}-"]
    assert result.bytes_downloaded == sum((repo_folder / f).stat().st_size for f in refetched) - 5 * 1024 * 1024
    assert Manifest.read(tmp_path / "out").problems(tmp_path / "out") == []
    assert transfer.partial_bytes(tmp_path / "out", "sam3.pt") == 0


@pytest.mark.parametrize("path", ["model.safetensors", "config.json"])  # LFS sha256 and git sha1
def test_corrupted_bytes_are_caught_and_removed(capsys, fake_hub, tmp_path, path):
    fake_hub.corrupt(path)
    code, _, err = run_cli(capsys, "download", "--output", "out")
    assert code == 1
    assert f"corrupt download from {REPO}" in err and f"{path} (checksum" in err and "rerun" in err
    assert not (tmp_path / "out" / path).exists() and not (tmp_path / "out" / MANIFEST_NAME).exists()
    run = _last_run()
    assert run.info.status == "FAILED" and run.data.tags["error_type"] == "IntegrityError"

    fake_hub.uncorrupt(path)
    assert _download().fetched == [path]


def test_local_corruption_is_refetched(fake_hub, tmp_path):
    _download()
    (tmp_path / "out" / "model.safetensors").write_bytes(b"x" * (tmp_path / "out" / "model.safetensors").stat().st_size)
    assert _download().fetched == ["model.safetensors"]


def test_gated_without_token_says_accept_license(capsys, fake_hub):
    code, _, err = run_cli(capsys, "download", "--repo-id", "gated/sam3", "--output", "out")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "gated/sam3 is gated" in line and "accept the license" in line and "HF_TOKEN" in line
    assert _last_run().info.status == "FAILED"


def test_gated_with_token_lacking_access(fake_hub, monkeypatch):
    fake_hub.add_token("hf_noaccess_0123456789", can_access_gated=False)
    with pytest.raises(HubAccessError, match="gated"):
        _download(repo_id="gated/sam3", token="hf_noaccess_0123456789")


def test_gated_with_access_downloads(fake_hub, tmp_path):
    fake_hub.add_token("hf_access_0123456789", can_access_gated=True)
    result = _download(repo_id="gated/sam3", token="hf_access_0123456789")
    assert {f.path for f in result.manifest.files} == TRANSFORMERS_FILES


def test_invalid_token(fake_hub):
    with pytest.raises(InvalidTokenError) as info:
        _download(token="hf_not_a_real_token_123")
    assert "settings/tokens" in info.value.one_line()


def test_unknown_repo_and_revision(fake_hub):
    with pytest.raises(RepoNotFoundError, match="nobody/nothing not found"):
        _download(repo_id="nobody/nothing")
    with pytest.raises(RevisionNotFoundError, match="'v9' not found"):
        _download(revision="v9")


def test_revision_can_be_a_commit_sha(fake_hub, tmp_path):
    sha = fake_hub.repo_sha(REPO)
    assert _download(revision=sha).manifest.commit == sha


def test_no_network(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(HubUnreachableError, match="cannot reach the hub"):
        hub.download(repo_id=REPO, output=tmp_path / "out", endpoint=closed)


def test_offline_mode(fake_hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE"):
        _download()


def test_short_disk_refused_before_any_byte(capsys, fake_hub, monkeypatch, tmp_path):
    full = types.SimpleNamespace(total=10**12, used=10**12 - 1000, free=1000)  # what shutil.disk_usage gives
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: full)
    code, _, err = run_cli(capsys, "download", "--output", "out")
    assert code == 1 and "not enough disk space" in err and "GB free" in err
    assert _resolve_gets(fake_hub) == []
    assert _last_run().info.status == "FAILED"


def test_disk_full_during_download(fake_hub, tmp_path):
    """The part file of sam3.pt is /dev/full, where every write fails with ENOSPC as on a full disk."""
    part = transfer.part_path(tmp_path / "out", "sam3.pt", fake_hub.file(REPO, "sam3.pt").etag)
    part.parent.mkdir(parents=True)
    part.symlink_to("/dev/full")
    with pytest.raises(DiskSpaceError, match="disk filled up"):
        _download(include="pt")
    assert not (tmp_path / "out" / MANIFEST_NAME).exists() and not (tmp_path / "out" / "sam3.pt").exists()


@pytest.mark.parametrize(("status", "error", "line"), [
    (403, HubAccessError, "may not read facebook/sam3 (403)"),
    (401, InvalidTokenError, "rejected the Hugging Face token (401)"),
    (404, HubUnreachableError, "the hub answered HTTP 404"),
])
def test_refused_transfer_is_translated_by_status(fake_hub, status, error, line):
    """The metadata request succeeds; the GET of the bytes is refused (a CDN or mirror that says no)."""
    fake_hub.fail_with("model.safetensors", status)
    with pytest.raises(error, match=re.escape(line)):
        _download()
    assert [r.status for r in _resolve_gets(fake_hub, "model.safetensors")] == [status]  # not retried


def test_server_that_keeps_answering_503_gives_up_with_the_part_kept(fake_hub, repo_folder, tmp_path):
    part = transfer.part_path(tmp_path / "out", "sam3.pt", fake_hub.file(REPO, "sam3.pt").etag)
    part.parent.mkdir(parents=True)
    part.write_bytes((repo_folder / "sam3.pt").read_bytes()[: 1024 * 1024])  # what an earlier run got
    fake_hub.fail_with("sam3.pt", 503, times=100)
    policy = resumable.RetryPolicy(http_retries=1, stalled_attempts=2, backoff_s=0.01)
    with pytest.raises(HubUnreachableError, match="download interrupted: sam3.pt.*RetryError") as info:
        _download(include="pt", retry=policy)
    assert "resumes" in info.value.one_line()
    assert [(r.status, r.range) for r in _resolve_gets(fake_hub, "sam3.pt")] == [(503, f"bytes={1024 * 1024}-")] * 4
    assert transfer.partial_bytes(tmp_path / "out", "sam3.pt") == 1024 * 1024


def test_part_paths_are_per_version(tmp_path):
    assert transfer.part_path(tmp_path, "sub/model.safetensors", '"abc/123"').name == "model.safetensors.abc123.part"
    assert transfer.partial_bytes(tmp_path, "sub/model.safetensors") == 0


def _leaks(text_or_bytes) -> bool:
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    return CANARY.encode() in data


@pytest.mark.slow
def test_token_never_leaks(fake_hub, tmp_path):
    """A canary token, used for a good and a failing download, is nowhere in the db, artifacts or output."""
    fake_hub.add_token(CANARY, can_access_gated=True)
    # The hub's bars show on a terminal; TQDM_POSITION=-1 is huggingface_hub's switch to show them on a pipe.
    env = subprocess_env(HF_ENDPOINT=fake_hub.url, HF_TOKEN=CANARY, SAM3OPS_DEBUG="1", TQDM_POSITION="-1")
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS")
    good = subprocess.run([sys.executable, "-m", "sam3ops", "download", "--repo-id", "gated/sam3", "--output", "good"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr
    assert "model.safetensors" in good.stderr and "100%" in good.stderr  # the hub's progress bars
    fake_hub.remove_token(CANARY)  # now the same token is rejected: the error path must not leak it either
    bad = subprocess.run([sys.executable, "-m", "sam3ops", "download", "--token", CANARY, "--output", "bad"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "rejected the Hugging Face token" in bad.stderr
    for stream in (good.stdout, good.stderr, bad.stdout, bad.stderr):
        assert not _leaks(stream)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not _leaks(path.read_bytes()), f"token found in {path}"
    runs = mlflow.search_runs(experiment_names=["sam3-download"], output_format="list")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]


@pytest.mark.slow
def test_progress_bars_turn_off_with_the_hubs_variable(fake_hub, tmp_path):
    env = subprocess_env(HF_ENDPOINT=fake_hub.url, HF_HUB_DISABLE_PROGRESS_BARS="1", TQDM_POSITION="-1")
    done = subprocess.run([sys.executable, "-m", "sam3ops", "download", "--output", "quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "100%" not in done.stderr and "it/s" not in done.stderr


@pytest.mark.slow
def test_mlflow_run_download_entry_point(fake_hub, tmp_path):
    """`mlflow run . -e download --env-manager local` end to end against the fake hub."""
    out = tmp_path / "via-mlflow-run"
    env = subprocess_env(HF_ENDPOINT=fake_hub.url)
    done = subprocess.run(
        ["mlflow", "run", str(REPO_ROOT), "-e", "download", "--env-manager", "local",
         "--experiment-name", "sam3-download", "-P", f"output={out}", "-P", "include=pt"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = _last_run()
    assert run.info.status == "FINISHED"
    assert run.data.params["include"] == "pt" and run.data.params["repo_id"] == REPO
    assert run.data.tags["mlflow.project.entryPoint"] == "download"
    assert run.data.metrics["bytes_downloaded"] > 12 * 1024 * 1024
    assert run.data.tags["weights_commit"] == fake_hub.repo_sha(REPO)
    assert Manifest.read(out).problems(out) == []


# -- a mirror whose listing carries no sizes or hashes (item 9 of issue 14) ---------------------------------------


def test_listing_without_sizes_or_hashes_downloads_with_sizes_from_each_files_metadata(
        capsys, fake_hub, repo_folder, tmp_path):
    fake_hub.strip_listing_metadata()
    code, _, err = run_cli(capsys, "download", "--output", "out")
    assert code == 0, err
    manifest = Manifest.read(tmp_path / "out")
    assert {f.path for f in manifest.files} == TRANSFORMERS_FILES
    for entry in manifest.files:  # the sha256 is still computed and recorded
        assert entry.size == (repo_folder / entry.path).stat().st_size
        assert entry.sha256 == file_hashes(repo_folder / entry.path)[0]
    assert {r.file for r in fake_hub.heads() if "/resolve/" in r.path} == TRANSFORMERS_FILES  # one metadata each
    run = _last_run()
    assert run.info.status == "FINISHED"
    # said in the run, not claimed checked
    assert set(run.data.tags["weights_unverified"].split(",")) == TRANSFORMERS_FILES
    assert "publishes no checksum" in err

    fake_hub.clear_requests()  # a rerun keeps the files the manifest of this commit recorded
    again = _download()
    assert again.bytes_downloaded == 0 and again.fetched == [] and set(again.unverified) == TRANSFORMERS_FILES
    assert _resolve_gets(fake_hub) == []


def test_listing_without_hashes_refetches_a_changed_local_file(fake_hub, tmp_path):
    fake_hub.strip_listing_metadata()
    _download()
    config = tmp_path / "out" / "config.json"
    config.write_bytes(bytes(b ^ 1 for b in config.read_bytes()))  # same size, other bytes
    again = _download()
    assert again.fetched == ["config.json"]
    assert again.manifest.problems(tmp_path / "out") == []


def test_normal_listing_marks_nothing_unverified(fake_hub):
    assert _download().unverified == []


@pytest.mark.parametrize("short_by", [1, 0])
def test_listing_without_sizes_still_checks_disk_space(fake_hub, repo_folder, monkeypatch, tmp_path, short_by):
    fake_hub.strip_listing_metadata()
    needed = sum((repo_folder / f).stat().st_size for f in TRANSFORMERS_FILES) + hub.DISK_MARGIN_BYTES
    free = needed - short_by
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: types.SimpleNamespace(total=10**12, used=0, free=free))
    if short_by:
        with pytest.raises(DiskSpaceError, match="not enough disk space"):
            _download()
        assert _resolve_gets(fake_hub) == []
    else:
        assert _download().manifest.problems(tmp_path / "out") == []


@pytest.mark.parametrize("path", ["model.safetensors", "config.json"])
def test_no_size_anywhere_is_refused_in_one_line(capsys, fake_hub, tmp_path, path):
    fake_hub.strip_listing_metadata()
    fake_hub.hide_size(path)
    code, _, err = run_cli(capsys, "download", "--output", "out")
    assert code == 1
    line = [x for x in err.splitlines() if "no size" in x]
    assert len(line) == 1 and path in line[0] and "hint:" in line[0] and "HF_ENDPOINT" in line[0]
    assert "Traceback" not in err and "TypeError" not in err
    assert _resolve_gets(fake_hub) == []  # refused before any byte
    assert _last_run().info.status == "FAILED"


def test_size_in_the_listing_needs_no_metadata_request(fake_hub):
    fake_hub.hide_size("config.json")  # the listing has it: never asked
    assert _download().manifest.problems("out") == []
