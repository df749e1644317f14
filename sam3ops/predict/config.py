"""The predict stage's defaults and choices, for the CLI, the MLproject file and :func:`predict_stage`.

Torch-free (the precisions and the pixel limit are the inference core's own plain values), so
``sam3ops predict --help`` never imports torch.
"""

from sam3ops.inference.options import DEFAULT_MAX_PIXELS, PRECISIONS
from sam3ops.weights.config import DEFAULT_OUTPUT as DEFAULT_WEIGHTS_DIR

__all__ = ["DEFAULT_DEVICE", "DEFAULT_MASK_THRESHOLD", "DEFAULT_MAX_PIXELS", "DEFAULT_OUTPUT", "DEFAULT_PRECISION",
           "DEFAULT_RUNTIME", "DEFAULT_SCORE_THRESHOLD", "DEFAULT_WEIGHTS", "PRECISIONS", "RUNTIMES"]
DEFAULT_PRECISION = "fp32"
DEFAULT_DEVICE = "cpu"
DEFAULT_WEIGHTS = DEFAULT_WEIGHTS_DIR  # where `sam3ops download` puts the weights
DEFAULT_OUTPUT = "predictions"
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5
RUNTIMES = ("auto", "meta")  # as Segmenter.from_dir: auto from the folder; meta: Meta's own model
DEFAULT_RUNTIME = "auto"
