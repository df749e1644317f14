"""SAM3 as an MLflow pyfunc model: what every registered version is.

``mlflow.pyfunc.load_model("models:/sam3@production").predict(...)`` and ``mlflow models serve`` run
this class. The weights folder travels inside the model as the artifact ``weights`` (raw files a
backend can also use directly); loading checks it against its ``manifest.json`` and runs it on the
runtime its files call for (PyTorch, ONNX Runtime, TensorRT) through :class:`Segmenter`.

Input, one row per image: ``image`` (PNG/JPEG/... bytes; base64 text is accepted too) and
``prompts`` (a list of text prompts). Params: ``score_threshold``, ``mask_threshold``.
Output, one dict per image: ``height``, ``width``, ``prompts``, and per instance ``labels``,
``scores``, ``boxes`` (xyxy pixels) and ``masks`` (COCO RLE, as ``sam3ops predict`` writes them).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
from pathlib import Path

import mlflow

from sam3ops.errors import ImageError, UsageError

WEIGHTS_ARTIFACT = "weights"
DEVICE_ENV = "SAM3OPS_DEVICE"
# Where the models-from-code entry lives: logged with each version, so no pickled object is loaded.
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


def signature():
    """The model signature: image bytes and prompts in; thresholds as params."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image"), ColSpec(Array("string"), "prompts")]),
        params=ParamSchema([ParamSpec("score_threshold", "double", 0.5),
                            ParamSpec("mask_threshold", "double", 0.5)]),
    )


def default_device() -> str:
    """``SAM3OPS_DEVICE`` if set, else ``cuda`` where torch sees a GPU, else ``cpu``."""
    import torch

    return os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")


def runtime_precision(precision: str, device: str) -> str:
    """The precision to load safetensors in: the artifact's own, except half precision on a CPU.

    fp16/bf16 weights are exact in fp32, and CPUs run fp32 much faster than half precision.
    """
    return "fp32" if device == "cpu" else (precision if precision in ("fp16", "bf16") else "fp32")


def decode_image(value, *, max_pixels: int | None = None):
    """An RGB PIL image from encoded bytes (or their base64 text), with the predict stage's guards.

    Raises:
        ImageError: not an image, corrupt, or over the pixel limit.
    """
    from sam3ops.inference.images import DEFAULT_MAX_PIXELS, load_image

    data = value.encode() if isinstance(value, str) else bytes(value)
    if not data:
        raise ImageError("image: empty")
    if not _looks_like_image(data):
        # JSON carries bytes as base64; mlflow decodes it for some input formats but not all.
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ImageError("image: neither image bytes nor base64 of them") from None
    # load_image owns the guards (decompression bombs, EXIF, odd modes): hand it a file.
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        try:
            return load_image(Path(handle.name), max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
        except ImageError as exc:
            raise ImageError(exc.message.replace(handle.name, "image"), hint=exc.hint or None) from None


_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*", b"P5", b"P6")


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_MAGIC)


def encode_result(result) -> dict:
    """A :class:`Result` as plain JSON types: labels, scores, boxes and COCO RLE masks."""
    from sam3ops.predict.write import coco_rle

    return {
        "height": int(result.size[0]),
        "width": int(result.size[1]),
        "prompts": list(result.prompts),
        "labels": list(result.labels),
        "scores": [round(float(s), 6) for s in result.scores],
        "boxes": [[round(float(v), 2) for v in box] for box in result.boxes],
        "masks": [coco_rle(mask) for mask in result.masks],
    }


def _rows(model_input) -> list[dict]:
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict("records")
    if isinstance(model_input, dict):
        return [model_input]
    return list(model_input)


def _prompts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if value is None:
        return []
    return [str(p) for p in list(value)]


class Sam3PyFunc(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a registered SAM3 version (see the module docstring for input and output)."""

    def load_context(self, context) -> None:
        from sam3ops.checkpoint.manifest import verify_folder
        from sam3ops.inference.segmenter import Segmenter

        weights = Path(context.artifacts[WEIGHTS_ARTIFACT])
        config = context.model_config or {}
        # The same check as `sam3ops pull`: the manifest is the one registered, the files match it.
        verify_folder(weights, what="the model's weights folder", manifest_sha256=config.get("manifest_sha256"),
                      hint="the artifact store was altered: register the version again")
        self.device = default_device()
        self.segmenter = Segmenter.from_dir(weights, device=self.device,
                                            precision=runtime_precision(config.get("precision", "fp32"), self.device))
        self._lock = threading.Lock()  # the scoring server may call predict from several threads

    def predict(self, context, model_input, params=None) -> list[dict]:
        params = params or {}
        results = []
        with self._lock:
            segmenter = self.segmenter
            saved = segmenter.score_threshold, segmenter.mask_threshold
            try:
                for name in ("score_threshold", "mask_threshold"):
                    value = float(params.get(name, getattr(segmenter, name)))
                    if not 0.0 <= value <= 1.0:
                        raise UsageError(f"{name} must be between 0 and 1, got {value}")
                    setattr(segmenter, name, value)
                for index, row in enumerate(_rows(model_input)):
                    prompts = _prompts(row.get("prompts"))
                    image = decode_image(row.get("image") if row.get("image") is not None else b"")
                    result = segmenter.segment([image], prompts, names=[str(index)])[0]
                    results.append(encode_result(result))
            finally:
                segmenter.score_threshold, segmenter.mask_threshold = saved
        return results
