"""Folders derived from a weights folder (a cast, ONNX graphs, TensorRT engines), all by one rule.

A derived folder holds what its conversion wrote, plus the source's companion files (config,
processor and tokenizer: every ``.json``, ``.txt`` and ``.model`` file the conversion did not write
itself), plus a ``manifest.json`` that keeps the source's identity (repo, commit, random flag,
preset) and lists the new files. It is built beside its destination and appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sam3ops.checkpoint.atomic import staged_folder
from sam3ops.checkpoint.kinds import require_empty
from sam3ops.checkpoint.manifest import MANIFEST_NAME, Manifest, entries_for

COMPANION_SUFFIXES = (".json", ".txt", ".model")


@dataclass
class Derived:
    """The folder being written (``staging``), sha256s computed while writing, and the final manifest."""

    staging: Path
    known: dict[str, str] = field(default_factory=dict)
    manifest: Manifest | None = None


@contextlib.contextmanager
def derived_folder(source: Path, output: Path, *, label: str, overwrite: bool = False) -> Iterator[Derived]:
    """Yield a :class:`Derived` to write the conversion into; on success it becomes ``output``.

    On leaving: the source's companion files the conversion did not write are copied, the manifest
    is written, and the folder replaces ``output``. On any error nothing is left behind.

    Raises:
        UsageError: ``output`` is not empty and ``overwrite`` is False (checked before anything is written).
    """
    source, output = Path(source), Path(output)
    require_empty(output, overwrite=overwrite)
    source_manifest = Manifest.read(source)
    with staged_folder(output, label) as staging:
        derived = Derived(staging)
        yield derived
        for path in sorted(source.iterdir()):
            if (path.is_file() and path.suffix in COMPANION_SUFFIXES and path.name != MANIFEST_NAME
                    and not (staging / path.name).exists()):
                shutil.copy(path, staging / path.name)
        files = [p.name for p in staging.iterdir() if p.is_file()]
        derived.manifest = source_manifest.with_files(entries_for(staging, files, known=derived.known))
        derived.manifest.write(staging)
