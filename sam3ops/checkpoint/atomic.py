"""Files and folders that appear whole or not at all.

Every stage that writes a folder (init, convert, predict, pull) builds it beside its destination and
renames it into place, and every small file (manifests, sidecars, caches) is written to a uniquely
named temporary file and renamed, so an interrupted or failed write never leaves half of either
behind, and two writers of the same path never share a temporary name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask (reading it means setting it, so set it back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text or bytes) to ``path`` through a unique temp file and a rename.

    Readers see the old file or the new one, never half of one; concurrent writers each use their
    own temporary file, and the last rename wins.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def staging_prefix(destination: Path) -> str:
    """The name prefix of the staging folders :func:`staged_folder` makes for ``destination``."""
    return f".{Path(destination).name}."


@contextlib.contextmanager
def staged_folder(destination: Path, label: str = "tmp") -> Iterator[Path]:
    """Yield an empty folder beside ``destination``; on success it replaces ``destination``,
    on any error it is removed and the error goes on."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f"{staging_prefix(destination)}{label}-"))
    try:
        staging.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only
        yield staging
        replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_folder(source: Path, destination: Path) -> None:
    """Put folder ``source`` at ``destination``; an existing ``destination`` is moved aside first and
    put back if the rename fails, so ``destination`` is always either the old folder or the new one."""
    source, destination = Path(source), Path(destination)
    old = None
    if destination.exists():
        old = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f"{staging_prefix(destination)}old-"))
        old.rmdir()
        destination.rename(old)
    try:
        source.rename(destination)
    except BaseException:
        if old is not None:
            old.rename(destination)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
