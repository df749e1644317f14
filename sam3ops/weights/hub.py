"""Download SAM3 weights from the Hugging Face hub (``sam3ops download``).

huggingface_hub talks to the hub (metadata, auth, redirects, errors); ``transfer`` moves the bytes
and resumes them across runs. This module adds what both leave to the caller: the revision pinned
to a commit sha, a free-space check before the first byte, sha256 (LFS) or git-sha1 checks of every
file against the hub's metadata, skipping files that are already intact, one clear error per
failure, and ``manifest.json``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint import manifest as manifest_lib
from sam3ops.errors import (
    DiskSpaceError,
    HubAccessError,
    HubUnreachableError,
    IntegrityError,
    InvalidTokenError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UsageError,
)
from sam3ops.weights import transfer

log = logging.getLogger(__name__)

DEFAULT_REPO = "facebook/sam3"
INCLUDE_PATTERNS: dict[str, list[str] | None] = {
    # config, processor and tokenizer files (json, merges.txt) and the safetensors weights
    "transformers": ["*.json", "*.txt", "*.safetensors"],
    # plus Meta's original checkpoint
    "pt": ["*.json", "*.txt", "*.safetensors", "*.pt"],
    "all": None,
}
# Keep this much free beyond the files themselves: the filesystem and our manifest need room too.
DISK_MARGIN_BYTES = 64 * 1024 * 1024
_HUB_CACHE = Path(".cache") / "huggingface"


@dataclass(frozen=True)
class RemoteFile:
    """A file of the repo at the pinned commit, with the checksum the hub publishes for it."""

    path: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str | None  # regular git files

    def matches(self, sha256: str, git_sha1: str) -> bool:
        """True when local hashes agree with the hub's."""
        return sha256 == self.sha256 if self.sha256 else git_sha1 == self.git_sha1


@dataclass
class DownloadResult:
    """What ``download`` did."""

    output: Path
    manifest: manifest_lib.Manifest
    fetched: list[str]
    bytes_downloaded: int
    seconds: float  # the whole call: metadata, checks and transfers
    transfer_seconds: float  # the transfers alone

    @property
    def mb_per_s(self) -> float:
        """Throughput of the transfers in this call (0 when nothing was fetched)."""
        if not self.bytes_downloaded or self.transfer_seconds <= 0:
            return 0.0
        return self.bytes_downloaded / 1e6 / self.transfer_seconds


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exception types huggingface_hub's HTTP client raises when the network itself fails."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx", "requests"):
        try:
            module = __import__(module)
            errors.append(getattr(module, "TransportError", None) or module.RequestException)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _hub_error(exc: BaseException, repo_id: str, revision: str) -> Exception:
    """Translate a huggingface_hub / network exception into one of our one-line errors."""
    from huggingface_hub import errors as hf_errors

    page = f"https://huggingface.co/{repo_id}"
    if isinstance(exc, hf_errors.GatedRepoError):
        return HubAccessError(
            f"{repo_id} is gated and this account has no access",
            hint=f"accept the license on {page} while logged in, then set HF_TOKEN to a token of that account",
        )
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return RepoNotFoundError(
            f"repo {repo_id} not found (or it is private and the token cannot see it)",
            hint="check --repo-id, and set HF_TOKEN if the repo is private",
        )
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return RevisionNotFoundError(
            f"revision {revision!r} not found in {repo_id}", hint="use a branch, tag or full commit sha of the repo"
        )
    if isinstance(exc, hf_errors.LocalEntryNotFoundError):
        # hf_hub_download's way of saying "the hub could not be reached and no local copy exists"
        return HubUnreachableError(f"cannot reach the hub to download from {repo_id}")
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return HubUnreachableError("HF_HUB_OFFLINE is set, so the hub cannot be reached", hint="unset HF_HUB_OFFLINE")
    if isinstance(exc, hf_errors.HfHubHTTPError) and getattr(exc.response, "status_code", None) == 401:
        return InvalidTokenError("the hub rejected the Hugging Face token (401)")
    if isinstance(exc, hf_errors.HfHubHTTPError) and getattr(exc.response, "status_code", None) == 403:
        return HubAccessError(
            f"the token may not read {repo_id} (403)", hint="use a token with read access to public gated repos"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskSpaceError("the disk filled up during the download", hint="free space and rerun; finished files are kept")
    if isinstance(exc, transfer.TransferError):
        return HubUnreachableError(f"download interrupted: {exc}", hint="rerun the same command: it resumes where it stopped")
    if isinstance(exc, _transport_errors()):
        return HubUnreachableError(f"cannot reach the hub ({type(exc).__name__})")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", "?")
        return HubUnreachableError(f"the hub answered HTTP {status} for {repo_id}", hint="retry later")
    return exc  # not a hub failure we know: let it through unchanged


def _check_token(api) -> None:
    """Fail fast with a clear line when a token is configured but the hub rejects it."""
    from huggingface_hub import errors as hf_errors

    if not api.token and not _configured_token():
        return
    try:
        api.whoami()
    except hf_errors.HfHubHTTPError as exc:
        if getattr(exc.response, "status_code", None) == 401:
            raise InvalidTokenError("the hub rejected the Hugging Face token (401)") from None
        raise


def _configured_token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def list_remote_files(api, repo_id: str, revision: str, include: str) -> tuple[str, list[RemoteFile]]:
    """The commit sha ``revision`` resolves to, and the repo's files selected by ``include``."""
    from huggingface_hub.utils import filter_repo_objects

    info = api.model_info(repo_id, revision=revision, files_metadata=True)
    siblings = filter_repo_objects(info.siblings or [], allow_patterns=INCLUDE_PATTERNS[include], key=lambda s: s.rfilename)
    files = [
        RemoteFile(
            path=s.rfilename,
            size=int(s.lfs.size if s.lfs else (s.size or 0)),
            sha256=s.lfs.sha256 if s.lfs else None,
            git_sha1=None if s.lfs else s.blob_id,
        )
        for s in siblings
    ]
    return info.sha, sorted(files, key=lambda f: f.path)


def _is_intact(output: Path, remote: RemoteFile) -> tuple[bool, str | None]:
    """Whether the local copy is complete and matches the hub; its sha256 when it does."""
    local = output / remote.path
    if not local.is_file() or local.stat().st_size != remote.size:
        return False, None
    sha256, git_sha1 = manifest_lib.file_hashes(local)
    return remote.matches(sha256, git_sha1), sha256


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


def download(
    *,
    repo_id: str = DEFAULT_REPO,
    revision: str = "main",
    output: Path = Path("weights/sam3"),
    include: str = "transformers",
    token: str | None = None,
    endpoint: str | None = None,
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
    started = time.perf_counter()
    try:
        _check_token(api)
        commit, remote_files = list_remote_files(api, repo_id, revision, include)
    except Exception as exc:
        raise _hub_error(exc, repo_id, revision) from None
    if not remote_files:
        raise UsageError(f"{repo_id}@{revision} has no files matching --include {include}")
    log.info("%s@%s is commit %s: %d files", repo_id, revision, commit, len(remote_files))

    output.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    missing: list[RemoteFile] = []
    for remote in remote_files:
        intact, sha256 = _is_intact(output, remote)
        if intact:
            hashes[remote.path] = sha256
        else:
            _forget_file(output, remote.path)  # a stale or corrupt copy must not be trusted
            missing.append(remote)
    _remove_orphaned_partials(output)
    check_disk_space(output, sum(f.size - transfer.partial_bytes(output, f.path) for f in missing))

    transfer_seconds = 0.0
    bytes_downloaded = 0
    corrupt: list[str] = []
    for remote in missing:
        transfer_started = time.perf_counter()
        try:
            bytes_downloaded += transfer.fetch(repo_id=repo_id, path=remote.path, commit=commit, output=output,
                                               token=token, endpoint=endpoint, expected_size=remote.size)
        except Exception as exc:
            raise _hub_error(exc, repo_id, revision) from None
        transfer_seconds += time.perf_counter() - transfer_started
        sha256, git_sha1 = manifest_lib.file_hashes(output / remote.path)
        if (output / remote.path).stat().st_size != remote.size or not remote.matches(sha256, git_sha1):
            # Remove it and go on: the other files are still worth having for the next run.
            _forget_file(output, remote.path)
            expected = remote.sha256 or remote.git_sha1
            corrupt.append(f"{remote.path} (checksum {(sha256 if remote.sha256 else git_sha1)[:12]}, hub's {expected[:12]})")
            continue
        hashes[remote.path] = sha256
    if corrupt:
        raise IntegrityError(f"corrupt download from {repo_id}@{commit[:12]}: {'; '.join(corrupt)}")
    seconds = time.perf_counter() - started

    manifest = manifest_lib.Manifest(
        repo_id=repo_id,
        revision=revision,
        commit=commit,
        random=False,
        files=[manifest_lib.FileEntry(f.path, f.size, hashes[f.path]) for f in remote_files],
    )
    manifest.write(output)
    fetched = [f.path for f in missing]
    return DownloadResult(output, manifest, fetched, bytes_downloaded, seconds, transfer_seconds)
