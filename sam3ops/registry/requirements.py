"""What a serving environment needs to load and run a version: pip requirements per format.

A version ships its own code (the ``sam3ops`` package, as MLflow ``code_paths``), so its
``requirements.txt`` lists only the third-party packages that code imports on the way to a
prediction of that format: the shared decode/encode path (pandas, numpy, pillow, pycocotools),
torch and transformers (the processor and tokenizer, which every runtime uses, and the model for
safetensors folders) and the runtime of the format (safetensors, ONNX Runtime, TensorRT). Nothing
of the workspace (plotly, scikit-image, click, onnx, ...). Versions are pinned to what made the
model, as MLflow pins what it infers; the engine's TensorRT to the one it was built with.

A version in Meta's layout (``sam3.pt``) runs on Meta's own ``sam3`` package. ``sam3`` 0.1.4 pins
``numpy<2.4`` (and ``huggingface-hub<2``, ``tqdm<4.68``), which a version made with numpy 2.4 pins
against, so one ``pip install -r`` of it all cannot resolve. ``requirements.txt`` therefore lists the modules
Meta's image model imports (and open_clip, which carries the tokenizer's vocabulary), and
:func:`no_deps_requirements` the package itself, to install after them with ``pip install --no-deps``
(the model's ``requirements-no-deps.txt``), as ``make setup`` installs it.
"""

from __future__ import annotations

import contextlib
from importlib import metadata

# Imported by every format's serving path (pyfunc decode/encode, the processor, the result).
COMMON = ("mlflow", "pandas", "numpy", "pillow", "pycocotools", "torch", "torchvision", "transformers")
# What each runtime adds; ONNX Runtime ships as one of two distributions of the same module.
BY_RUNTIME = {
    "torch": ("safetensors",),
    "onnx": (("onnxruntime-gpu", "onnxruntime"),),
    "tensorrt": ("tensorrt",),
    # Meta's image model and its tokenizer (sam3ops.meta.package), not sam3 itself: see NO_DEPS.
    "meta": ("einops", "iopath", "timm", "ftfy", "regex", "open_clip_torch"),
}
# Installed after the rest with --no-deps: their own pins contradict the pinned requirements.
NO_DEPS = {"meta": ("sam3",)}
TORCH_FORMATS = ("fp32", "fp16", "bf16", "compiled")


def runtime_of(format: str) -> str:
    """The runtime a format's files run on: ``torch``, ``onnx`` or ``tensorrt``."""
    if format in ("onnx", "tensorrt"):
        return format
    return "torch"


def _serving_runtime(format: str, layout: str) -> str:
    return "meta" if layout == "meta" else runtime_of(format)


def pip_requirements(format: str, *, layout: str = "transformers", trt_version: str | None = None) -> list[str]:
    """The pinned pip requirements of a version in ``format`` (fp32, fp16, bf16, onnx, tensorrt, ...).

    Args:
        format: the version's format tag.
        layout: ``meta`` for Meta's ``sam3.pt`` (it runs on Meta's model), else ``transformers``.
        trt_version: for an engine, the TensorRT it was built with (it only runs on that one).
    """
    wanted: list[str | tuple[str, ...]] = [*COMMON, *BY_RUNTIME[_serving_runtime(format, layout)]]
    out = []
    for dist in wanted:
        if dist == "tensorrt" and trt_version and trt_version != "unknown":
            out.append(f"tensorrt=={trt_version}")
        else:
            out.append(_pinned(dist))
    return out


def no_deps_requirements(format: str, *, layout: str = "transformers") -> list[str]:
    """The pinned requirements to install after :func:`pip_requirements` with ``pip install --no-deps``
    (``sam3`` for Meta's layout; none for the others)."""
    return [_pinned(dist) for dist in NO_DEPS.get(_serving_runtime(format, layout), ())]


def _pinned(dist: str | tuple[str, ...]) -> str:
    """``name==version`` of the first of ``dist`` installed here (local labels such as +cpu dropped,
    so a CUDA build satisfies a CPU one), else the bare name."""
    choices = (dist,) if isinstance(dist, str) else dist
    for name in choices:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{name}=={metadata.version(name).split('+')[0]}"
    return choices[-1]
