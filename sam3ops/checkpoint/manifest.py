"""``manifest.json``: what a weights folder holds and where it came from.

Written by ``download`` and ``init`` alike, read by every later stage: repo id, revision, commit,
the random-weights flag and preset, and each file's path, size and sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sam3ops.checkpoint.atomic import atomic_write
from sam3ops.checkpoint.layout import MANIFEST_NAME
from sam3ops.errors import IntegrityError, WeightsError, WeightsNotFoundError

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
        return atomic_write(Path(folder) / MANIFEST_NAME, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """Load ``folder/manifest.json``; :class:`WeightsError` if missing or malformed."""
        path = Path(folder) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
            data["files"] = [FileEntry(**entry) for entry in data.get("files", [])]
            return cls(**data)
        except FileNotFoundError:
            raise WeightsNotFoundError(f"{folder} has no {MANIFEST_NAME}: it is not a sam3ops weights folder") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise WeightsError(f"{path} is not a valid manifest ({exc})") from None

    def with_files(self, files: list[FileEntry]) -> Manifest:
        """The same identity (repo, commit, random flag, preset) for a derived folder's ``files``."""
        return replace(self, files=files, created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def problems(self, folder: Path, *, known: dict[str, str] | None = None) -> list[str]:
        """Files of the manifest that are missing or whose size or sha256 differ; empty if intact.

        ``known`` maps paths to sha256s already computed (while the files were written), to skip a re-read.
        """
        known = known or {}
        found = []
        for entry in self.files:
            path = Path(folder) / entry.path
            if not path.is_file():
                found.append(f"{entry.path}: missing")
            elif path.stat().st_size != entry.size:
                found.append(f"{entry.path}: {path.stat().st_size} bytes, the manifest says {entry.size}")
            elif (known.get(entry.path) or file_hashes(path)[0]) != entry.sha256:
                found.append(f"{entry.path}: sha256 differs from the manifest")
        return found


def verify_folder(folder: Path, *, what: str = "the weights folder", manifest_sha256: str | None = None,
                  known: dict[str, str] | None = None, only_listed: bool = False, ignore: tuple[str, ...] = (),
                  hint: str = "write the folder again (convert, download or pull): its files changed after "
                              "they were written") -> dict[str, str]:
    """Check ``folder`` against its ``manifest.json``; return path -> sha256 of every listed file.

    The one check of the weights-folder contract (see the README's "Weights folders" section), used by
    every stage that takes a folder it did not just write.

    Args:
        what: how the folder is named in the error.
        manifest_sha256: the manifest's own sha256 as recorded elsewhere (a registry tag), if any.
        known: sha256s already computed while the files were written (no second read).
        only_listed: also refuse files the manifest does not list (``ignore`` names excepted).

    Raises:
        WeightsError: the folder has no readable manifest.
        IntegrityError: a file is missing, differs, or (``only_listed``) is not listed.
    """
    folder, known = Path(folder), known or {}
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise WeightsNotFoundError(f"{what} has no {MANIFEST_NAME}: it is not a sam3ops weights folder")
    own = known.get(MANIFEST_NAME) or file_hashes(manifest_path)[0]
    if manifest_sha256 and own != manifest_sha256:
        raise IntegrityError(f"{what}: {MANIFEST_NAME} differs from the one recorded (manifest_sha256)", hint=hint)
    manifest = Manifest.read(folder)
    problems = manifest.problems(folder, known=known)
    if only_listed:
        listed = {entry.path for entry in manifest.files} | {MANIFEST_NAME, *ignore}
        problems += [f"{rel}: not in the manifest" for rel in sorted(
            p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if rel not in listed]
    if problems:
        raise IntegrityError(f"{what} does not match its manifest: {'; '.join(problems[:3])}", hint=hint)
    return {MANIFEST_NAME: own, **{entry.path: entry.sha256 for entry in manifest.files}}


def identity(folder: Path) -> dict:
    """Commit, random flag and preset of a weights folder, from its manifest; ``unknown`` / False /
    None for a folder without one (a run still logs where its weights came from)."""
    if not (Path(folder) / MANIFEST_NAME).is_file():
        return {"commit": "unknown", "random": False, "preset": None}
    manifest = Manifest.read(folder)
    return {"commit": manifest.commit, "random": manifest.random, "preset": manifest.preset}


def is_intact(folder: Path) -> bool:
    """True when ``folder`` has a manifest and every file it lists is there with its size and sha256."""
    try:
        verify_folder(folder)
    except (WeightsError, IntegrityError):
        return False
    return True


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


