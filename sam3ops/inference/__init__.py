"""The inference core: shared pre/post-processing over runtime-specific model cores."""

from sam3ops.inference.core import ModelCore, Outputs, TorchCore, VisionFeatures
from sam3ops.inference.images import collect_images, load_image
from sam3ops.inference.result import Result
from sam3ops.inference.segmenter import Segmenter

__all__ = ["ModelCore", "Outputs", "Result", "Segmenter", "TorchCore", "VisionFeatures", "collect_images",
           "load_image"]
