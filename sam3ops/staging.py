"""Folders that appear whole or not at all.

Every stage that writes a folder (init, convert, predict) builds it beside its destination and
renames it into place, so an interrupted or failed write never leaves half a folder behind.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sam3ops.errors import UsageError
from sam3ops.manifest import current_umask


def require_empty(output: Path, *, overwrite: bool) -> None:
    """:class:`UsageError` when ``output`` holds files and ``overwrite`` is False."""
    if Path(output).exists() and any(Path(output).iterdir()) and not overwrite:
        raise UsageError(f"{output} is not empty", hint="choose an empty --output, or pass --overwrite")


@contextlib.contextmanager
def staged_folder(destination: Path, label: str = "tmp") -> Iterator[Path]:
    """Yield an empty folder beside ``destination``; on success it replaces ``destination``,
    on any error it is removed and the error goes on."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.{label}-"))
    try:
        staging.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only
        yield staging
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
