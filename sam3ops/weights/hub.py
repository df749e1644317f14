"""Download SAM3 weights from the Hugging Face hub (``sam3ops download``).

huggingface_hub talks to the hub (metadata, auth, redirects, errors); ``transfer`` moves the bytes
and resumes them across runs. This module adds what both leave to the caller: the revision pinned
to a commit sha and the files checked against the hub's sha256 (LFS) or git sha1 (``remote``),
a free-space check before the first byte, skipping files that are already intact, one clear error
per failure (``hub_errors``), and ``manifest.json``.

A mirror that publishes no checksum for a file (its listing carries no hashes): the file is checked
by size only, its sha256 is still computed and recorded in the manifest, and the file is named in
:attr:`DownloadResult.unverified` and in the active run's ``weights_unverified`` tag.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint import manifest as manifest_lib
from sam3ops.errors import DiskSpaceError, IntegrityError, UsageError, WeightsError
from sam3ops.weights import hub_errors, resumable, transfer
from sam3ops.weights.config import DEFAULT_OUTPUT, DEFAULT_REPO, INCLUDE_PATTERNS
from sam3ops.weights.remote import RemoteFile, list_remote_files, local_copy

log = logging.getLogger(__name__)

# Keep this much free beyond the files themselves: the filesystem and our manifest need room too.
DISK_MARGIN_BYTES = 64 * 1024 * 1024
_HUB_CACHE = Path(".cache") / "huggingface"


@dataclass
class DownloadResult:
    """What ``download`` did."""

    output: Path
    manifest: manifest_lib.Manifest
    fetched: list[str]
    bytes_downloaded: int
    seconds: float  # the whole call: metadata, checks and transfers
    transfer_seconds: float  # the transfers alone
    unverified: list[str] = dataclasses.field(default_factory=list)  # no checksum published: size checked only

    @property
    def mb_per_s(self) -> float:
        """Throughput of the transfers in this call (0 when nothing was fetched)."""
        if not self.bytes_downloaded or self.transfer_seconds <= 0:
            return 0.0
        return self.bytes_downloaded / 1e6 / self.transfer_seconds


def _remove_orphaned_partials(output: Path) -> None:
    """Delete ``*.incomplete`` files a killed run left behind on hf_hub_download's (Xet) path.

    huggingface_hub writes each call to a process-unique temp file that a later call never reuses;
    left over, they only hold disk space. (Our own ``.part`` files are resumed instead.)
    """
    for partial in (output / _HUB_CACHE).rglob("*.incomplete"):
        partial.unlink(missing_ok=True)


def _forget_file(output: Path, path: str) -> None:
    """Remove a local file and huggingface_hub's record of it, so the next run fetches it again."""
    (output / path).unlink(missing_ok=True)
    (output / _HUB_CACHE / "download" / f"{path}.metadata").unlink(missing_ok=True)


def check_disk_space(folder: Path, needed: int) -> None:
    """Raise :class:`DiskSpaceError` when ``folder``'s filesystem has less than ``needed`` bytes free."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed + DISK_MARGIN_BYTES > free:
        raise DiskSpaceError(
            f"not enough disk space in {folder}: {needed / 1e9:.2f} GB to download, {free / 1e9:.2f} GB free",
            hint="free some space or choose another --output",
        )


def _recorded_hashes(output: Path, repo_id: str, commit: str) -> dict[str, str]:
    """path -> sha256 from ``output``'s manifest when it is of ``repo_id`` at ``commit``, else empty."""
    try:
        previous = manifest_lib.Manifest.read(output)
    except WeightsError:
        return {}
    if (previous.repo_id, previous.commit, previous.random) != (repo_id, commit, False):
        return {}
    return {entry.path: entry.sha256 for entry in previous.files}


def _sort_local(output: Path, remote_files: list[RemoteFile],
                recorded: dict[str, str]) -> tuple[dict[str, str], list[RemoteFile]]:
    """(path -> sha256 of the files already intact in ``output``, the files still to fetch)."""
    hashes: dict[str, str] = {}
    missing: list[RemoteFile] = []
    for remote in remote_files:
        if (sha256 := local_copy(output, remote, recorded.get(remote.path))) is not None:
            hashes[remote.path] = sha256
        else:
            _forget_file(output, remote.path)  # a stale or corrupt copy must not be trusted
            missing.append(remote)
    return hashes, missing


def _fetch_missing(output: Path, missing: list[RemoteFile], hashes: dict[str, str], fetch_one: Callable[..., int],
                   translate: Callable[[BaseException], BaseException], where: str) -> tuple[int, float]:
    """Fetch and check every file of ``missing``, adding their sha256 to ``hashes``; return (bytes, seconds).

    Raises:
        IntegrityError: after the others were fetched, naming every file whose checksum is not the hub's
            (each one removed, so the next run fetches it again).
    """
    transfer_seconds = 0.0
    bytes_downloaded = 0
    corrupt: list[str] = []
    for remote in missing:
        transfer_started = time.perf_counter()
        try:
            bytes_downloaded += fetch_one(path=remote.path, expected_size=remote.size)
        except Exception as exc:
            raise translate(exc) from None
        transfer_seconds += time.perf_counter() - transfer_started
        intact, sha256, checksum = remote.check(output / remote.path)
        if not intact:
            # Remove it and go on: the other files are still worth having for the next run.
            _forget_file(output, remote.path)
            if remote.verified:
                corrupt.append(f"{remote.path} (checksum {checksum[:12]}, hub's {remote.published[:12]})")
            else:
                corrupt.append(f"{remote.path} ({(output / remote.path).stat().st_size} bytes, hub's {remote.size})")
            continue
        hashes[remote.path] = sha256
    if corrupt:
        raise IntegrityError(f"corrupt download from {where}: {'; '.join(corrupt)}")
    return bytes_downloaded, transfer_seconds


def download(
    *,
    repo_id: str = DEFAULT_REPO,
    revision: str = "main",
    output: Path = Path(DEFAULT_OUTPUT),
    include: str = "transformers",
    token: str | None = None,
    endpoint: str | None = None,
    retry: resumable.RetryPolicy | None = None,
) -> DownloadResult:
    """Download ``repo_id`` at ``revision`` into ``output`` and write its manifest.

    Files already present and matching the hub's checksums are kept; the rest are fetched (partial
    files resume) and checked. A rerun on a complete folder downloads nothing.

    Args:
        repo_id: hub repo, ``facebook/sam3`` by default.
        revision: branch, tag or commit; pinned to its commit sha before any file is fetched.
        output: destination folder, laid out like the repo.
        include: ``transformers`` (config, processor, tokenizer, safetensors), ``pt`` (adds
            ``sam3.pt``) or ``all``.
        token: Hugging Face token; None means ``HF_TOKEN`` or the huggingface_hub login.
        endpoint: hub URL; None means ``HF_ENDPOINT`` or huggingface.co.
        retry: when a plain-HTTP transfer gives up (default ``transfer.RETRY``).

    Returns:
        :class:`DownloadResult`.

    Raises:
        HubAccessError, InvalidTokenError, RepoNotFoundError, RevisionNotFoundError,
        HubUnreachableError, DiskSpaceError, IntegrityError, UsageError.
    """
    from huggingface_hub import HfApi, constants

    # huggingface_hub reads HF_ENDPOINT once, at import; read it per call and pass it everywhere.
    endpoint = endpoint or os.environ.get("HF_ENDPOINT", "").rstrip("/") or constants.ENDPOINT
    if include not in INCLUDE_PATTERNS:
        raise UsageError(f"unknown --include {include!r}", hint=f"choose one of: {', '.join(INCLUDE_PATTERNS)}")
    output = Path(output)
    api = HfApi(endpoint=endpoint, token=token)
    translate = functools.partial(hub_errors.hub_error, repo_id=repo_id, revision=revision)
    started = time.perf_counter()
    try:
        hub_errors.check_token(api)
        commit, remote_files = list_remote_files(api, repo_id, revision, include)
    except Exception as exc:
        raise translate(exc) from None
    if not remote_files:
        raise UsageError(f"{repo_id}@{revision} has no files matching --include {include}")
    log.info("%s@%s is commit %s: %d files", repo_id, revision, commit, len(remote_files))

    output.mkdir(parents=True, exist_ok=True)
    hashes, missing = _sort_local(output, remote_files, _recorded_hashes(output, repo_id, commit))
    _remove_orphaned_partials(output)
    check_disk_space(output, sum(f.size - transfer.partial_bytes(output, f.path) for f in missing))
    fetch_one = functools.partial(transfer.fetch, repo_id=repo_id, commit=commit, output=output, token=token,
                                  endpoint=endpoint, retry=retry)
    bytes_downloaded, transfer_seconds = _fetch_missing(output, missing, hashes, fetch_one, translate,
                                                        where=f"{repo_id}@{commit[:12]}")
    seconds = time.perf_counter() - started
    manifest = manifest_lib.Manifest(
        repo_id=repo_id,
        revision=revision,
        commit=commit,
        random=False,
        files=[manifest_lib.FileEntry(f.path, f.size, hashes[f.path]) for f in remote_files],
    )
    manifest.write(output)
    unverified = [f.path for f in remote_files if not f.verified]
    if unverified:
        _note_unverified(unverified, where=f"{repo_id}@{commit[:12]}")
    return DownloadResult(output, manifest, [f.path for f in missing], bytes_downloaded, seconds, transfer_seconds,
                          unverified)


def _note_unverified(paths: list[str], where: str) -> None:
    """Say that ``paths`` were checked by size only: a warning, and a tag on the active MLflow run if any."""
    log.warning("%s publishes no checksum for %d file(s), checked by size only (sha256 recorded in "
                "manifest.json): %s", where, len(paths), ", ".join(paths))
    mlflow = sys.modules.get("mlflow")  # only when the caller (the stage) tracks this download
    if mlflow is not None and mlflow.active_run() is not None:
        mlflow.set_tag("weights_unverified", ",".join(paths)[:5000])
