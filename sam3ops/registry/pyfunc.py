"""SAM3 as an MLflow pyfunc model: what every registered version is.

``mlflow.pyfunc.load_model("models:/sam3@production").predict(...)`` and ``mlflow models serve`` run
this class. The weights folder travels inside the model as the artifact ``weights`` (raw files a
backend can also use directly); loading checks it against its ``manifest.json`` and runs it on the
runtime its files call for (PyTorch, ONNX Runtime, TensorRT) through :class:`Segmenter`.

Input, one row per image: ``image`` (PNG/JPEG/... bytes; base64 text is accepted too) and
``prompts`` (a list of text prompts). Params: ``score_threshold``, ``mask_threshold``.
Output, one dict per image: ``height``, ``width``, ``prompts``, and per instance ``labels``,
``scores``, ``boxes`` (xyxy pixels) and ``masks`` (COCO RLE, as ``sam3ops predict`` writes them).

The explicit :func:`signature` is what MLflow enforces (and what lets ``mlflow models serve`` take
``dataframe_records``); ``predict`` is type-hinted with ``pd.DataFrame``, the one hint MLflow takes
without inferring a second signature that would replace it. A request that cannot be used (no
image, not an image, no prompts, an empty or blank prompt, a threshold out of range) raises
:class:`InvalidRequest`: HTTP 400 from the scoring server, with one line that never repeats the input.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from sam3ops.errors import ImageError, PromptsError

WEIGHTS_ARTIFACT = "weights"
DEVICE_ENV = "SAM3OPS_DEVICE"
# Where the models-from-code entry lives: logged with each version, so no pickled object is loaded.
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


DEFAULT_PARAMS = {"score_threshold": 0.5, "mask_threshold": 0.5}
# The input example: a crop of scikit-image's astronaut (left, upper, right, lower), and its prompt.
EXAMPLE_CROP = (192, 96, 224, 128)
EXAMPLE_PROMPTS = ["person"]


def signature():
    """The model signature: image bytes and prompts in; thresholds as params.

    Both columns are optional to MLflow's schema check so that a row missing one reaches
    ``predict``, which refuses it with one clear line (MLflow's own refusal quotes the whole input).
    Versions registered before keep their signature (both columns required); they load as before.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image", required=False),
                       ColSpec(Array("string"), "prompts", required=False)]),
        params=ParamSchema([ParamSpec(name, "double", value) for name, value in DEFAULT_PARAMS.items()]),
    )


def input_example() -> tuple[pd.DataFrame, dict[str, float]]:
    """The input example logged with each version: one 32x32 PNG crop of the astronaut (about 2 KB)
    with one prompt, and the default params. MLflow runs the model on it once while logging."""
    import io

    from sam3ops.predict.samples import sample_image

    buffer = io.BytesIO()
    sample_image("astronaut").crop(EXAMPLE_CROP).save(buffer, format="PNG")
    return pd.DataFrame({"image": [buffer.getvalue()], "prompts": [list(EXAMPLE_PROMPTS)]}), dict(DEFAULT_PARAMS)


class InvalidRequest(MlflowException):
    """A request the model cannot use: ``INVALID_PARAMETER_VALUE`` (HTTP 400 from ``mlflow models serve``).

    Its message is one line and stays that line: the scoring server rewrites the message of any
    MlflowException from ``predict`` to ``Failed to predict data '<the whole input>'...``, which would
    send the request's image back in the error; later assignments are ignored.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()), error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_line"):
            self._line = value


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
    if isinstance(model_input, pd.DataFrame):
        return model_input.to_dict("records")
    if isinstance(model_input, dict):
        return [model_input]
    return list(model_input)


def _missing(value) -> bool:
    """None, or the NaN pandas puts in a column that some rows lack."""
    return value is None or (isinstance(value, float) and value != value)


def _prompts(value, where: str) -> list[str]:
    from sam3ops.inference.prompts import validate_prompt

    example = '["person", "cup"]'
    if _missing(value):
        raise InvalidRequest(f"{where}: no prompts: give `prompts`, a list of text prompts such as {example}")
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidRequest(f"{where}: `prompts` must be a list of text prompts such as {example}, "
                             f"got {type(value).__name__}")
    prompts = list(value)
    if not prompts:
        raise InvalidRequest(f"{where}: `prompts` is an empty list: give at least one, such as {example}")
    try:
        return [validate_prompt(p, where=f"prompt {i + 1}") for i, p in enumerate(prompts)]
    except PromptsError as exc:
        raise InvalidRequest(f"{where}: {exc.one_line()}") from None


def _image(value, where: str):
    if _missing(value):
        raise InvalidRequest(f"{where}: no image: give `image`, PNG/JPEG bytes (base64 text in JSON)")
    if not isinstance(value, (bytes, bytearray, memoryview, str)):
        raise InvalidRequest(f"{where}: `image` must be PNG/JPEG bytes (base64 text in JSON), "
                             f"got {type(value).__name__}")
    try:
        return decode_image(value)
    except ImageError as exc:
        raise InvalidRequest(f"{where}: {exc.one_line()}") from None


def _threshold(params: dict, name: str) -> float | None:
    """The param ``name`` checked, or None when the request leaves it to the model's default."""
    if _missing(params.get(name)):
        return None
    try:
        value = float(params[name])
    except (TypeError, ValueError):
        raise InvalidRequest(f"param {name} must be a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(f"param {name} must be between 0 and 1, got {value}")
    return value


def shipped_metadata(weights: Path) -> dict:
    """``format``, ``precision`` and ``manifest_sha256`` of the model whose artifact is ``weights``:
    the ``sam3ops`` metadata of its ``MLmodel`` (``<model>/artifacts/weights``); {} when none."""
    import yaml

    mlmodel = weights.parent.parent / "MLmodel"
    try:
        metadata = yaml.safe_load(mlmodel.read_text()).get("metadata") or {}
    except (OSError, AttributeError, yaml.YAMLError):
        return {}
    found = metadata.get("sam3ops")
    return dict(found) if isinstance(found, dict) else {}


class Sam3PyFunc(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a registered SAM3 version (see the module docstring for input and output)."""

    def load_context(self, context) -> None:
        from sam3ops.checkpoint.manifest import verify_folder
        from sam3ops.inference.segmenter import Segmenter

        weights = Path(context.artifacts[WEIGHTS_ARTIFACT])
        # Versions logged before carry these in model_config; logged models in the MLmodel's metadata.
        config = context.model_config or shipped_metadata(weights)
        # The same check as `sam3ops pull`: the manifest is the one registered, the files match it.
        verify_folder(weights, what="the model's weights folder", manifest_sha256=config.get("manifest_sha256"),
                      hint="the artifact store was altered: register the version again")
        self.device = default_device()
        self.segmenter = Segmenter.from_dir(weights, device=self.device,
                                            precision=runtime_precision(config.get("precision", "fp32"), self.device))
        self._lock = threading.Lock()  # the scoring server may call predict from several threads

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One result per row (see the module docstring); the whole request is checked before any runs.

        Raises:
            InvalidRequest: a row without an image or prompts, not an image, an empty prompt list,
                a blank prompt, or a threshold outside [0, 1]; the message names the row.
        """
        params = params or {}
        thresholds = {name: _threshold(params, name) for name in DEFAULT_PARAMS}
        checked = []
        for index, row in enumerate(_rows(model_input)):
            where = f"row {index}"
            if not isinstance(row, dict):
                raise InvalidRequest(f"{where}: give a record with `image` and `prompts`, got {type(row).__name__}")
            checked.append((_image(row.get("image"), where), _prompts(row.get("prompts"), where)))
        results = []
        with self._lock:
            segmenter = self.segmenter
            saved = segmenter.score_threshold, segmenter.mask_threshold
            try:
                for name, value in thresholds.items():
                    if value is not None:
                        setattr(segmenter, name, value)
                for index, (image, prompts) in enumerate(checked):
                    result = segmenter.segment([image], prompts, names=[str(index)])[0]
                    results.append(encode_result(result))
            finally:
                segmenter.score_threshold, segmenter.mask_threshold = saved
        return results
