"""Files and folders that appear whole or not at all.

Every stage that writes a folder (init, convert, predict, pull) builds it beside its destination and
renames it into place, and every small file (manifests, sidecars, caches) is written to a uniquely
named temporary file and renamed, so an interrupted or failed write never leaves half of either
behind, and two writers of the same path never share a temporary name.

A process killed outright (SIGKILL, the OOM killer) runs no cleanup, so every staging folder carries
its process id in its name (``.<dest>.<label>-<pid>-<random>``) and its name prefix is announced,
before the folder is made, to the listeners added with :func:`add_staging_listener` (the run helper
records it on the run), so that :mod:`sam3ops.tracking.reaper` can later remove what a dead process
left, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple


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


# ".<dest>.<label>-<pid>-<mkdtemp's random part, which has no '-'>"
_STAGING_NAME = re.compile(r"^\.(?P<dest>.+)\.(?P<label>[A-Za-z0-9_]+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")
_listeners: list[Callable[[Path], None]] = []


def staging_prefix(destination: Path) -> str:
    """The name prefix of the staging folders :func:`staged_folder` makes for ``destination``."""
    return f".{Path(destination).name}."


def add_staging_listener(listener: Callable[[Path], None]) -> None:
    """Call ``listener(prefix)`` before every staging folder made from now on, with the folder's path
    up to its random part (``<parent>/.<dest>.<label>-<pid>-``): announced before it exists, a kill
    cannot come between the folder and its record. A listener that raises is ignored."""
    if listener not in _listeners:
        _listeners.append(listener)


class StagingName(NamedTuple):
    """What a staging folder's name says: the destination it is for, its label, the pid that made it."""

    destination: Path
    label: str
    pid: int


def staging_owner(path: Path) -> StagingName | None:
    """What the name of a staging folder made by this module says (None for any other name)."""
    path = Path(path)
    if not (match := _STAGING_NAME.match(path.name)):
        return None
    return StagingName(path.parent / match["dest"], match["label"], int(match["pid"]))


def _make_staging(destination: Path, label: str) -> Path:
    """A new empty folder beside ``destination``, named with ``label`` and our pid, announced to the listeners."""
    prefix = f"{staging_prefix(destination)}{label}-{os.getpid()}-"
    for listener in list(_listeners):
        with contextlib.suppress(Exception):  # recording it is a courtesy to a later cleanup, never a failure
            listener(destination.parent / prefix)
    return Path(tempfile.mkdtemp(dir=destination.parent, prefix=prefix))


@contextlib.contextmanager
def staged_folder(destination: Path, label: str = "tmp") -> Iterator[Path]:
    """Yield an empty folder beside ``destination``; on success it replaces ``destination``,
    on any error it is removed and the error goes on."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = _make_staging(destination, label)
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
        # Announced like a staging folder: a kill between the two renames leaves the only copy here.
        old = _make_staging(destination, "old")
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
