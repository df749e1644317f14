"""fp16 / bf16 copies of a safetensors checkpoint, one tensor at a time.

safetensors writes a file from tensors that are all in memory at once; for a 3.4 GB checkpoint that
is the whole model. Its format is simple and documented (an 8-byte little-endian header length, a
JSON header of names, dtypes, shapes and byte offsets, then the raw bytes), so the header is written
first from the source's metadata and each tensor is read, cast and appended on its own. Reading
goes through ``safe_open``, reopened every ``CHUNK_BYTES`` because its memory map keeps every page
read resident until it is closed. The result is read back with ``safe_open`` and checked.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from sam3ops.errors import WeightsError

CHUNK_BYTES = 64 * 1024 * 1024
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


def _chunks(infos: list[TensorInfo]) -> list[list[TensorInfo]]:
    groups, current, size = [], [], 0
    for info in infos:
        current.append(info)
        size += info.nbytes
        if size >= CHUNK_BYTES:
            groups.append(current)
            current, size = [], 0
    return groups + ([current] if current else [])


def cast_file(source: Path, destination: Path, target: str) -> int:
    """Write ``source`` with its floating-point tensors cast to ``target`` (``fp16``/``bf16``); return bytes."""
    from safetensors import safe_open

    dtype = TARGETS[target][0]
    infos, metadata = read_layout(source, target)
    header = _header(infos, metadata)
    with open(destination, "wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        for group in _chunks(infos):
            with safe_open(str(source), framework="pt") as handle:
                for info in group:
                    tensor = handle.get_tensor(info.name)
                    if info.source_dtype in _FLOATS:
                        tensor = tensor.to(dtype)
                    # Raw bytes without a copy: view as uint8, hand numpy's buffer to write().
                    out.write(tensor.contiguous().view(torch.uint8).numpy().data)
                    del tensor
    return destination.stat().st_size


def verify_cast(source: Path, destination: Path, target: str) -> None:
    """Read ``destination`` back with safetensors: same names and shapes, target dtype, finite values
    wherever the source was finite, and the same values up to the cast's rounding.

    Raises:
        WeightsError: any mismatch.
    """
    from safetensors import safe_open

    expected, _ = read_layout(source, target)
    written, _ = read_layout(destination, target)
    if [(i.name, i.shape, i.target_dtype) for i in expected] != [(i.name, i.shape, i.source_dtype) for i in written]:
        raise WeightsError(f"{destination} does not hold the tensors of {source}")
    for group in _chunks(expected):
        with safe_open(str(source), framework="pt") as src, safe_open(str(destination), framework="pt") as dst:
            for info in group:
                original, cast = src.get_tensor(info.name), dst.get_tensor(info.name)
                if info.source_dtype in _FLOATS and not torch.equal(original.to(cast.dtype), cast):
                    raise WeightsError(f"{destination}: tensor {info.name} differs from the cast of the source")
                if info.source_dtype not in _FLOATS and not torch.equal(original, cast):
                    raise WeightsError(f"{destination}: tensor {info.name} differs from the source")


@dataclass
class CastResult:
    """What ``cast_weights`` wrote."""

    output: Path
    precision: str
    bytes_written: int
    manifest: "object"


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
    import shutil
    import tempfile

    from sam3ops import manifest as manifest_lib
    from sam3ops.errors import UsageError
    from sam3ops.inference.segmenter import check_weights_dir

    if precision not in TARGETS:
        raise UsageError(f"cannot cast to {precision!r}", hint=f"choose one of: {', '.join(TARGETS)}")
    source, output = check_weights_dir(Path(source)), Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise UsageError(f"{output} is not empty", hint="choose an empty --output, or pass --overwrite")
    source_manifest = manifest_lib.Manifest.read(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.cast-"))
    try:
        staging.chmod(0o777 & ~manifest_lib.current_umask())
        written = 0
        for path in sorted(source.iterdir()):
            if path.name == manifest_lib.MANIFEST_NAME or not path.is_file():
                continue
            if path.suffix == ".safetensors":
                written += cast_file(path, staging / path.name, precision)
                verify_cast(path, staging / path.name, precision)
            elif path.name == "config.json":
                config = json.loads(path.read_text())
                config["dtype"] = str(TARGETS[precision][0]).removeprefix("torch.")
                (staging / path.name).write_text(json.dumps(config, indent=2) + "\n")
            elif path.suffix in (".json", ".txt", ".model"):
                shutil.copy(path, staging / path.name)
        entries = manifest_lib.entries_for(staging, [p.name for p in staging.iterdir() if p.is_file()])
        manifest = manifest_lib.Manifest(
            repo_id=source_manifest.repo_id, revision=source_manifest.revision, commit=source_manifest.commit,
            random=source_manifest.random, preset=source_manifest.preset, seed=source_manifest.seed, files=entries,
        )
        manifest.write(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return CastResult(output, precision, written, manifest)
