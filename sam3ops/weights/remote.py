"""The files of a hub repo at a commit, and whether a local copy of one is the hub's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint.manifest import file_hashes
from sam3ops.weights.config import INCLUDE_PATTERNS


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

    def check(self, local: Path) -> tuple[bool, str, str]:
        """Whether ``local`` (which exists) is this file: (intact, its sha256, the checksum that was compared)."""
        sha256, git_sha1 = file_hashes(local)
        intact = local.stat().st_size == self.size and self.matches(sha256, git_sha1)
        return intact, sha256, sha256 if self.sha256 else git_sha1


def list_remote_files(api, repo_id: str, revision: str, include: str) -> tuple[str, list[RemoteFile]]:
    """The commit sha ``revision`` resolves to, and the repo's files selected by ``include``.

    Args:
        api: an ``HfApi``.
        include: a key of :data:`INCLUDE_PATTERNS`.

    Returns:
        (commit sha, files sorted by path).

    Raises:
        huggingface_hub errors (not found, gated, unreachable): translate them with ``hub_errors.hub_error``.
    """
    from huggingface_hub.utils import filter_repo_objects

    info = api.model_info(repo_id, revision=revision, files_metadata=True)
    siblings = filter_repo_objects(info.siblings or [], allow_patterns=INCLUDE_PATTERNS[include],
                                   key=lambda s: s.rfilename)
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


def local_copy(output: Path, remote: RemoteFile) -> str | None:
    """The sha256 of ``output/remote.path`` when it is complete and matches the hub, else None."""
    local = output / remote.path
    if not local.is_file() or local.stat().st_size != remote.size:
        return None  # missing or partial: not worth hashing
    intact, sha256, _ = remote.check(local)
    return sha256 if intact else None
