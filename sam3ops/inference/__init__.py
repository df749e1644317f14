"""The inference core: shared pre/post-processing over runtime-specific model cores.

``from sam3ops.inference import Segmenter`` works as usual; the names are resolved on first use, so
importing a light module of this package (``result``, ``images``, ``prompts``) never imports torch.
"""

import importlib

_EXPORTS = {
    "ModelCore": "core", "Outputs": "core", "TorchCore": "core", "VisionFeatures": "core",
    "collect_images": "images", "load_image": "images", "Result": "result", "Segmenter": "segmenter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
