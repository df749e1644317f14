"""What a weights folder holds, told from the folder itself.

A folder is a SAM3 checkpoint when it has ``config.json`` and ``processor_config.json`` (the layout of
the ``facebook/sam3`` hub repo, see the README's "Weights folders" section) and the weights in one
of four kinds: safetensors (transformers), the three ONNX graphs, the three TensorRT engines, or
the three AOTInductor packages.
A folder in Meta's layout holds ``sam3.pt`` and ``manifest.json`` instead (:func:`is_meta_dir`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from sam3ops.checkpoint.layout import AOTI_PACKAGES, AOTI_SIDECAR, ENGINES, META_CHECKPOINT, ONNX_GRAPHS, REQUIRED_FILES
from sam3ops.errors import UsageError, WeightsError, WeightsNotFoundError


def require_empty(output: Path, *, overwrite: bool) -> None:
    """:class:`UsageError` when ``output`` holds files and ``overwrite`` is False."""
    if Path(output).exists() and any(Path(output).iterdir()) and not overwrite:
        raise UsageError(f"{output} is not empty", hint="choose an empty --output, or pass --overwrite")


def is_onnx_dir(weights_dir: Path) -> bool:
    """True when the folder holds the three ONNX graphs of ``sam3ops convert --format onnx``."""
    return all((Path(weights_dir) / name).is_file() for name in ONNX_GRAPHS)


def is_engine_dir(weights_dir: Path) -> bool:
    """True when the folder holds the three TensorRT engines of ``sam3ops convert --format tensorrt``."""
    return all((Path(weights_dir) / name).is_file() for name in ENGINES)


def is_aoti_dir(weights_dir: Path) -> bool:
    """True when the folder holds the three AOTInductor packages of ``sam3ops convert --format aoti``."""
    return all((Path(weights_dir) / name).is_file() for name in AOTI_PACKAGES)


def aoti_sidecar(weights_dir: Path) -> dict:
    """The build record of an AOTInductor folder (torch version, device, GPU, batch range), or ``{}``."""
    with contextlib.suppress(ValueError, OSError):
        data = json.loads((Path(weights_dir) / AOTI_SIDECAR).read_text())
        if isinstance(data, dict):
            return data
    return {}


def is_meta_dir(weights_dir: Path) -> bool:
    """True when the folder is in Meta's layout: ``sam3.pt`` (what Meta's builder loads), no ``config.json``."""
    folder = Path(weights_dir)
    return (folder / META_CHECKPOINT).is_file() and not (folder / "config.json").is_file()


def layout_of(weights_dir: Path) -> str:
    """``meta`` for a folder in Meta's layout, else ``transformers`` (safetensors, ONNX, engines or
    AOTInductor packages)."""
    return "meta" if is_meta_dir(weights_dir) else "transformers"


def engine_sidecar(weights_dir: Path) -> dict:
    """The build record of an engine folder (TensorRT version, GPU, precision, profiles), or ``{}``.

    Every engine has a ``<engine>.json`` sidecar; they share versions and GPU, so the vision
    engine's (or the first readable one's) speaks for the folder.
    """
    for name in ENGINES:
        with contextlib.suppress(ValueError, OSError):
            data = json.loads((Path(weights_dir) / f"{name}.json").read_text())
            if isinstance(data, dict) and "tensorrt_version" in data:
                return data
    return {}


def check_weights_dir(weights_dir: Path) -> Path:
    """``weights_dir`` if it holds a SAM3 checkpoint (safetensors, ONNX, engines or AOTInductor packages);
    :class:`WeightsError` otherwise."""
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise WeightsNotFoundError(f"weights folder {weights_dir} not found")
    if is_meta_dir(weights_dir):
        raise WeightsError(f"{weights_dir} holds Meta's sam3.pt, not the transformers layout this needs",
                           hint=f"convert it: sam3ops convert --input {weights_dir} --format fp32 --output <folder>")
    missing = [name for name in REQUIRED_FILES if not (weights_dir / name).is_file()]
    has_weights = (any(weights_dir.glob("*.safetensors")) or is_onnx_dir(weights_dir) or is_engine_dir(weights_dir)
                   or is_aoti_dir(weights_dir))
    if missing or not has_weights:
        raise WeightsError(f"{weights_dir} is not a complete SAM3 checkpoint "
                           f"(missing {', '.join(missing) or 'weights'})")
    return weights_dir
