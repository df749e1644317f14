"""fp16 / bf16 copies of a safetensors checkpoint, one tensor at a time.

safetensors writes a file from tensors that are all in memory at once; for a 3.4 GB checkpoint that
is the whole model. Its format is simple and documented (an 8-byte little-endian header length, a
JSON header of names, dtypes, shapes and byte offsets, then the raw bytes), so the header is written
first from the source's metadata and each tensor is read, cast and appended on its own, large ones in
blocks of rows. Reading goes through ``safe_open``, reopened every ``CHUNK_BYTES`` because its
memory map keeps every page read resident until it is closed. The result is read back with
``safe_open`` and each tensor's CRC-32 compared with the bytes that were written.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from sam3ops.errors import WeightsError

CHUNK_BYTES = 64 * 1024 * 1024  # source bytes read between two reopenings of the memory map
BLOCK_BYTES = 16 * 1024 * 1024  # tensors larger than this are read in blocks of rows
_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
          "F8_E4M3": 1, "F8_E5M2": 1}
_FLOATS = {"F64", "F32", "F16", "BF16"}
TARGETS = {"fp16": (torch.float16, "F16"), "bf16": (torch.bfloat16, "BF16")}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the source file and what it becomes."""

    name: str
    shape: tuple[int, ...]
    source_dtype: str
    target_dtype: str

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * _BYTES[self.target_dtype]


def read_layout(path: Path, target: str) -> tuple[list[TensorInfo], dict[str, str]]:
    """Tensors of ``path`` in file order, with the dtype each becomes, and the file's metadata.

    Floating-point tensors become ``target``; integer and boolean ones are kept as they are.

    Raises:
        WeightsError: the file is not a readable safetensors file (corrupt or truncated).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            infos = []
            for name in handle.offset_keys():
                sliced = handle.get_slice(name)
                dtype = sliced.get_dtype()
                infos.append(TensorInfo(name, tuple(sliced.get_shape()), dtype,
                                        TARGETS[target][1] if dtype in _FLOATS else dtype))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})",
                           hint="the file is corrupt or truncated: download or init it again") from None
    return infos, metadata


def _header(infos: list[TensorInfo], metadata: dict[str, str]) -> bytes:
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for info in infos:
        header[info.name] = {"dtype": info.target_dtype, "shape": list(info.shape),
                             "data_offsets": [offset, offset + info.nbytes]}
        offset += info.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces


def read_plan(infos: list[TensorInfo]) -> Iterator[tuple[TensorInfo, slice | None, bool]]:
    """The reads a cast makes, in file order: (tensor, rows or None for all, reopen-before-this).

    Tensors over ``BLOCK_BYTES`` are read in blocks of rows, and the memory map is reopened every
    ``CHUNK_BYTES``, so the peak memory of a cast stays bounded whatever the checkpoint size.
    """
    read = 0
    for info in infos:
        source_bytes = math.prod(info.shape) * _BYTES[info.source_dtype]
        rows = info.shape[0] if info.shape else 1
        if source_bytes <= BLOCK_BYTES or len(info.shape) == 0:
            blocks = [None]
        else:
            step = max(1, rows * BLOCK_BYTES // source_bytes)
            blocks = [slice(i, min(i + step, rows)) for i in range(0, rows, step)]
        for block in blocks:
            size = source_bytes if block is None else source_bytes * (block.stop - block.start) // rows
            reopen = read + size > CHUNK_BYTES
            read = size if reopen else read + size
            yield info, block, reopen


def _read_piece(handle, info: TensorInfo, block: slice | None):
    return handle.get_tensor(info.name) if block is None else handle.get_slice(info.name)[block]


def cast_file(source: Path, destination: Path, target: str) -> tuple[int, dict[str, int], str]:
    """Write ``source`` with its floating-point tensors cast to ``target`` (``fp16``/``bf16``).

    Returns:
        Bytes written, the CRC-32 of each tensor's bytes as written, and the file's sha256 (hashed
        while writing, so the manifest needs no second pass over the file).
    """
    import hashlib

    from safetensors import safe_open

    dtype = TARGETS[target][0]
    infos, metadata = read_layout(source, target)
    header = _header(infos, metadata)
    crcs: dict[str, int] = {}
    digest = hashlib.sha256()
    handle = None
    try:
        with open(destination, "wb") as out:
            for part in (struct.pack("<Q", len(header)), header):
                out.write(part)
                digest.update(part)
            for info, block, reopen in read_plan(infos):
                if handle is None or reopen:
                    if handle is not None:
                        handle.__exit__(None, None, None)
                    handle = safe_open(str(source), framework="pt").__enter__()
                tensor = _read_piece(handle, info, block)
                if info.source_dtype in _FLOATS:
                    tensor = tensor.to(dtype)
                # Raw bytes without a copy: view as uint8, hand numpy's buffer to write().
                data = tensor.contiguous().view(torch.uint8).numpy().data
                out.write(data)
                digest.update(data)
                crcs[info.name] = zlib.crc32(data, crcs.get(info.name, 0))
                del tensor, data
    finally:
        if handle is not None:
            handle.__exit__(None, None, None)
    return destination.stat().st_size, crcs, digest.hexdigest()


def verify_cast(source: Path, destination: Path, target: str, crcs: dict[str, int]) -> None:
    """Read ``destination`` back with safetensors and check it: the source's tensor names, shapes
    and order, the target dtype, and each tensor's CRC-32 equal to the bytes written.

    Raises:
        WeightsError: any mismatch.
    """
    from safetensors import safe_open

    expected, _ = read_layout(source, target)
    written, _ = read_layout(destination, target)
    if [(i.name, i.shape, i.target_dtype) for i in expected] != [(i.name, i.shape, i.source_dtype) for i in written]:
        raise WeightsError(f"{destination} does not hold the tensors of {source}")
    found: dict[str, int] = {}
    handle = None
    try:
        for info, block, reopen in read_plan(written):
            if handle is None or reopen:
                if handle is not None:
                    handle.__exit__(None, None, None)
                handle = safe_open(str(destination), framework="pt").__enter__()
            data = _read_piece(handle, info, block).contiguous().view(torch.uint8).numpy().data
            found[info.name] = zlib.crc32(data, found.get(info.name, 0))
    finally:
        if handle is not None:
            handle.__exit__(None, None, None)
    if bad := [name for name in crcs if found.get(name) != crcs[name]]:
        raise WeightsError(f"{destination}: {len(bad)} tensors read back differently from what was written "
                           f"(first: {bad[0]})", hint="the disk or filesystem corrupted the file; convert again")


@dataclass
class CastResult:
    """What ``cast_weights`` wrote."""

    output: Path
    precision: str
    bytes_written: int
    manifest: object


def cast_weights(*, source: Path, output: Path, precision: str, overwrite: bool = False) -> CastResult:
    """Write an fp16/bf16 copy of the weights folder ``source`` into ``output``.

    Safetensors files are cast tensor by tensor (``cast_file``) and checked (``verify_cast``); the
    config gets the new dtype; processor and tokenizer files are copied; ``manifest.json`` keeps
    the source's identity (repo, commit, random flag) and lists the new files. Everything is built
    in a temporary folder beside ``output`` and renamed into place: nothing partial is left.

    Raises:
        WeightsError: ``source`` is not a weights folder or holds a corrupt safetensors file.
        UsageError: unknown precision, or ``output`` is not empty and ``overwrite`` is False.
    """
    from sam3ops.checkpoint.derive import derived_folder
    from sam3ops.checkpoint.kinds import check_weights_dir
    from sam3ops.errors import UsageError

    if precision not in TARGETS:
        raise UsageError(f"cannot cast to {precision!r}", hint=f"choose one of: {', '.join(TARGETS)}")
    source, output = check_weights_dir(Path(source)), Path(output)
    written = 0
    with derived_folder(source, output, label="cast", overwrite=overwrite) as derived:
        for path in sorted(source.glob("*.safetensors")):
            size, crcs, derived.known[path.name] = cast_file(path, derived.staging / path.name, precision)
            verify_cast(path, derived.staging / path.name, precision, crcs)
            written += size
        config = json.loads((source / "config.json").read_text())
        config["dtype"] = str(TARGETS[precision][0]).removeprefix("torch.")
        (derived.staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return CastResult(output, precision, written, derived.manifest)
