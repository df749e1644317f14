"""The two layouts in a conversion: Meta's ``sam3.pt`` in, Meta's ``sam3.pt`` out.

A conversion reads Meta's checkpoint (a ``.pt`` file or a Meta-layout folder) by first writing it
in the transformers layout at fp32 in a temporary folder beside the output: that folder is what
the ONNX, TensorRT and AOTInductor paths read, and the parity gate's fp32 reference. A conversion
to Meta's layout is gated on the tensors it wrote: ``sam3.pt`` is read back into a temporary
transformers folder at its own precision, which the gate runs. Both temporary folders go when the run ends.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sam3ops.convert.config import ConvertConfig, is_meta_input


@dataclass(frozen=True)
class Sources:
    """What a conversion reads (``source``) and what its gate compares with (``reference``)."""

    source: Path
    reference: Path


@contextlib.contextmanager
def sources(config: ConvertConfig) -> Iterator[Sources]:
    """The conversion's source and reference folders; a Meta input imported to fp32 for the run."""
    given = Path(config.input_dir)
    if not is_meta_input(given):
        yield Sources(given, config.reference_dir)
        return
    from sam3ops.meta.convert import to_transformers_dir

    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.meta-fp32-", dir=output.parent) as scratch:
        imported = to_transformers_dir(source=given, output=Path(scratch) / "fp32", precision="fp32").output
        yield Sources(imported, Path(config.reference) if config.reference else imported)


def writes_meta(config: ConvertConfig, source: Path) -> bool:
    """True when this conversion is one of :mod:`sam3ops.meta.convert`'s (a layout change at a precision)."""
    meta_side = config.layout == "meta" or is_meta_input(Path(config.input_dir))
    return config.format in ("fp32", "fp16", "bf16") and meta_side


def convert(config: ConvertConfig):
    """Write ``config.output`` in ``config.layout`` at ``config.precision`` from ``config.input_dir``."""
    from sam3ops.meta.convert import to_meta_dir, to_transformers_dir

    write = to_meta_dir if config.layout == "meta" else to_transformers_dir
    return write(source=Path(config.input_dir), output=Path(config.output), precision=config.precision,
                 overwrite=config.overwrite)


@contextlib.contextmanager
def candidate(config: ConvertConfig) -> Iterator[Path]:
    """The folder the gate runs: the output, or for Meta's layout its ``sam3.pt`` read back."""
    output = Path(config.output)
    if config.layout != "meta":
        yield output
        return
    from sam3ops.meta.convert import to_transformers_dir

    with tempfile.TemporaryDirectory(prefix=f".{output.name}.gate-", dir=output.parent) as scratch:
        yield to_transformers_dir(source=output, output=Path(scratch) / "readback", precision=config.precision).output
