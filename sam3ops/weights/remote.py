"""The files of a hub repo at a commit, and whether a local copy of one is the hub's.

Some mirrors answer the listing (model info with ``files_metadata``) without sizes or hashes: a
file's size then comes from its own metadata request (``HEAD /resolve``), and a file with no
published hash is marked :attr:`RemoteFile.verified` False rather than claimed checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sam3ops.checkpoint.manifest import file_hashes
from sam3ops.errors import HubError
from sam3ops.weights.config import INCLUDE_PATTERNS


@dataclass(frozen=True)
class RemoteFile:
    """A file of the repo at the pinned commit, with the checksum the hub publishes for it."""

    path: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str | None  # regular git files

    @property
    def verified(self) -> bool:
        """Whether the hub published a checksum to check this file against (else only its size is)."""
        return bool(self.sha256 or self.git_sha1)

    @property
    def published(self) -> str:
        """The checksum the hub published, or ``"none"``."""
        return self.sha256 or self.git_sha1 or "none"

    def matches(self, sha256: str, git_sha1: str) -> bool:
        """True when local hashes agree with the hub's (always, when the hub published none)."""
        if self.sha256:
            return sha256 == self.sha256
        return git_sha1 == self.git_sha1 if self.git_sha1 else True

    def check(self, local: Path) -> tuple[bool, str, str]:
        """Whether ``local`` (which exists) is this file: (intact, its sha256, the checksum that was compared).

        With no published checksum only the size is compared (see :attr:`verified`).
        """
        sha256, git_sha1 = file_hashes(local)
        intact = local.stat().st_size == self.size and self.matches(sha256, git_sha1)
        return intact, sha256, git_sha1 if self.git_sha1 and not self.sha256 else sha256


def list_remote_files(api, repo_id: str, revision: str, include: str) -> tuple[str, list[RemoteFile]]:
    """The commit sha ``revision`` resolves to, and the repo's files selected by ``include``.

    Args:
        api: an ``HfApi``.
        include: a key of :data:`INCLUDE_PATTERNS`.

    Returns:
        (commit sha, files sorted by path).

    A file the listing gives no size for (some mirrors) gets it from its own metadata request.

    Raises:
        HubError: the hub gives no size for a file, neither in the listing nor in its metadata, or
            that metadata is of another commit.
        huggingface_hub errors (not found, gated, unreachable): translate them with ``hub_errors.hub_error``.
    """
    from huggingface_hub.utils import filter_repo_objects

    info = api.model_info(repo_id, revision=revision, files_metadata=True)
    siblings = filter_repo_objects(info.siblings or [], allow_patterns=INCLUDE_PATTERNS[include],
                                   key=lambda s: s.rfilename)
    files = []
    for s in siblings:
        size = s.lfs.size if s.lfs else s.size
        files.append(RemoteFile(
            path=s.rfilename,
            size=int(size) if size is not None else _size_from_metadata(api, repo_id, info.sha, s.rfilename),
            sha256=s.lfs.sha256 if s.lfs else None,
            git_sha1=None if s.lfs else s.blob_id,
        ))
    return info.sha, sorted(files, key=lambda f: f.path)


def _size_from_metadata(api, repo_id: str, commit: str, path: str) -> int:
    """The size of ``path`` at ``commit`` from its own metadata request (``HEAD /resolve``)."""
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(repo_id, path, revision=commit, endpoint=api.endpoint)
    metadata = api.get_hf_file_metadata(url=url)
    where = f"{repo_id}@{commit[:12]}"
    if metadata.commit_hash and metadata.commit_hash != commit:
        raise HubError(f"the hub answered {path} of {repo_id} at commit {metadata.commit_hash[:12]}, not {commit[:12]}",
                       hint="the mirror behind HF_ENDPOINT serves another commit: point it at huggingface.co or "
                            "pass --revision <that commit>")
    if metadata.size is None:
        raise HubError(f"the hub gives no size for {path} of {where}, neither in its file listing nor in the "
                       "file's own metadata, so it cannot be downloaded safely",
                       hint="the mirror behind HF_ENDPOINT does not send file sizes: unset HF_ENDPOINT or use a "
                            "mirror that does")
    return int(metadata.size)


def local_copy(output: Path, remote: RemoteFile, recorded: str | None = None) -> str | None:
    """The sha256 of ``output/remote.path`` when it is complete and matches the hub, else None.

    Args:
        recorded: the sha256 an earlier download of the same commit recorded for this file. A file
            the hub publishes no checksum for is kept only when its sha256 is that one.
    """
    local = output / remote.path
    if not local.is_file() or local.stat().st_size != remote.size:
        return None  # missing or partial: not worth hashing
    if not remote.verified and recorded is None:
        return None  # nothing to tell a complete copy from a stale one of the same size
    intact, sha256, _ = remote.check(local)
    return sha256 if intact and (remote.verified or sha256 == recorded) else None
