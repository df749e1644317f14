"""``manifest.json``: what a weights folder holds and where it came from.

Written by ``download`` and ``init`` alike, read by every later stage: repo id, revision, commit,
the random-weights flag and preset, and each file's path, size and sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sam3ops.errors import WeightsError

MANIFEST_NAME = "manifest.json"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    """One file of a weights folder."""

    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """Identity and content of a weights folder."""

    repo_id: str
    revision: str
    commit: str
    random: bool
    preset: str | None = None
    seed: int | None = None
    files: list[FileEntry] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def to_json(self) -> str:
        """The manifest as pretty JSON."""
        return json.dumps(asdict(self), indent=2) + "\n"

    def write(self, folder: Path) -> Path:
        """Write ``manifest.json`` into ``folder`` atomically; return its path."""
        return atomic_write_text(Path(folder) / MANIFEST_NAME, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> "Manifest":
        """Load ``folder/manifest.json``; :class:`WeightsError` if missing or malformed."""
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            data["files"] = [FileEntry(**entry) for entry in data.get("files", [])]
            return cls(**data)
        except FileNotFoundError:
            raise WeightsError(f"{folder} has no {MANIFEST_NAME}: it is not a sam3ops weights folder") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise WeightsError(f"{path} is not a valid manifest ({exc})") from None

    def with_files(self, files: list[FileEntry]) -> "Manifest":
        """The same identity (repo, commit, random flag, preset) for a derived folder's ``files``."""
        return replace(self, files=files, created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def problems(self, folder: Path) -> list[str]:
        """Files of the manifest that are missing or whose size or sha256 differ; empty if intact."""
        found = []
        for entry in self.files:
            path = Path(folder) / entry.path
            if not path.is_file():
                found.append(f"{entry.path}: missing")
            elif path.stat().st_size != entry.size:
                found.append(f"{entry.path}: {path.stat().st_size} bytes, expected {entry.size}")
            elif file_hashes(path)[0] != entry.sha256:
                found.append(f"{entry.path}: sha256 differs from the manifest")
        return found


def file_hashes(path: Path) -> tuple[str, str]:
    """sha256 and git blob sha1 of a file, in one pass (the hub publishes one or the other)."""
    sha256 = hashlib.sha256()
    git_sha1 = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            git_sha1.update(chunk)
    return sha256.hexdigest(), git_sha1.hexdigest()


def entries_for(folder: Path, paths: list[str], *, known: dict[str, str] | None = None) -> list[FileEntry]:
    """Manifest entries (size, sha256) for ``paths`` relative to ``folder``.

    ``known`` maps paths to sha256s already computed (while the file was written), to skip a re-read.
    """
    known = known or {}
    return [
        FileEntry(path=rel, size=(Path(folder) / rel).stat().st_size,
                  sha256=known.get(rel) or file_hashes(Path(folder) / rel)[0])
        for rel in sorted(paths)
    ]


def current_umask() -> int:
    """The process umask (reading it means setting it, so set it back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file and a rename, so readers never see half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
