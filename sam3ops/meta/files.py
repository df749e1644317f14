"""Reading Meta's ``sam3.pt`` safely, and writing both layouts' weight files without holding them twice.

``sam3.pt`` is read as Meta's loader reads it (``torch.load(weights_only=True)``, a flat dict or
one under ``"model"``, the keys that contain ``detector`` with ``detector.`` stripped) but memory-
mapped, so its 3.4 GB stay on disk until each tensor is read. A file that needs full unpickling
is refused: ``weights_only=False`` would run whatever code the file carries.

safetensors files are read through a memory map too (``torch.frombuffer`` on the file's bytes, the
format's documented header giving each tensor's place), and written tensor by tensor after a
header made from the tensors' shapes: ``safetensors.torch.save_file`` first copies every tensor
into one buffer, which for the full model is the whole checkpoint a second time.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import torch

from sam3ops.errors import WeightsError
from sam3ops.meta.mapping import META_PREFIX

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


class MetaCheckpointError(WeightsError):
    """A ``.pt`` file that is not a usable SAM3 checkpoint in Meta's layout."""

    hint = "give Meta's sam3.pt (from the facebook/sam3 hub repo) or a folder converted to Meta's layout"


def load_image_state(path: Path) -> dict[str, torch.Tensor]:
    """The image model's tensors of Meta's checkpoint ``path`` (``detector.`` stripped), memory-mapped.

    Raises:
        MetaCheckpointError: unreadable or truncated, needs full unpickling, not a dict of tensors,
            or holds no ``detector`` keys (a tracker-only checkpoint is named as such).
    """
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise MetaCheckpointError(f"{path} holds Python objects besides tensors: loading it needs full unpickling, "
                                  "which can run code from the file, so it is refused",
                                  hint="re-save it as a plain state dict (torch.save(model.state_dict(), ...))"
                                  ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise MetaCheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt: "
                                  f"{str(exc).splitlines()[0][:120]})",
                                  hint="download sam3.pt again; its size on the hub is 3.45 GB") from None
    state = loaded["model"] if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict) else loaded
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MetaCheckpointError(f"{path} is not a state dict of tensors")
    image = {key.replace(META_PREFIX, ""): value for key, value in state.items() if "detector" in key}
    if not image:
        if any(key.startswith("tracker.") for key in state):
            raise MetaCheckpointError(f"{path} holds only the video tracker (tracker.* keys), not the image model "
                                      "(detector.* keys) this project converts")
        first = ", ".join(sorted(state)[:3]) or "nothing"
        raise MetaCheckpointError(f"{path} is not a SAM3 checkpoint: no detector.* keys (it holds {first})")
    return image


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file as views of its memory map (nothing is read until used).

    Raises:
        WeightsError: the file is not a complete safetensors file.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        (length,) = struct.unpack("<Q", mapped[:8])
        header = json.loads(mapped[8:8 + length])
        start = 8 + length
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            if start + end > len(mapped):
                raise ValueError(f"{name} runs past the end of the file")
            dtype = _DTYPES[info["dtype"]]
            with warnings.catch_warnings():  # read-only map: these tensors are only ever read
                warnings.simplefilter("ignore", UserWarning)
                count = (end - begin) // dtype.itemsize
                flat = (torch.frombuffer(mapped, dtype=dtype, offset=start + begin, count=count)
                        if count else torch.zeros(0, dtype=dtype))
            tensors[name] = flat.reshape(info["shape"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})",
                           hint="the file is corrupt or truncated: convert or download it again") from None
    return tensors


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], *, dtype: torch.dtype | None = None) -> str:
    """Write ``tensors`` (floating ones cast to ``dtype`` when given) to ``path`` one at a time; its sha256."""
    plan, offset = {}, 0
    for name, tensor in tensors.items():
        target = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
        size = tensor.numel() * target.itemsize
        plan[name] = {"dtype": _NAMES[target], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header = json.dumps(plan, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads its header to 8 bytes
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for part in (struct.pack("<Q", len(header)), header):
            out.write(part)
            digest.update(part)
        for name, tensor in tensors.items():
            piece = tensor.to(_DTYPES[plan[name]["dtype"]]).contiguous()
            data = piece.view(torch.uint8).numpy().data if piece.numel() else b""
            out.write(data)
            digest.update(data)
            del piece, data
    return digest.hexdigest()


def write_meta_checkpoint(path: Path, image_state: dict[str, torch.Tensor], *,
                          dtype: torch.dtype | None = None) -> None:
    """Write ``image_state`` as Meta's flat ``sam3.pt`` (``detector.`` keys), real floats cast to ``dtype``.

    Complex tensors (the RoPE tables) stay complex64, as in Meta's own checkpoint.
    """
    def cast(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor

    torch.save({META_PREFIX + name: cast(tensor) for name, tensor in image_state.items()}, path)
