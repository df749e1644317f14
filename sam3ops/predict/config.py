"""The predict stage's defaults and choices, for the CLI, the MLproject file and :func:`predict_stage`.

Torch-free (the precisions and the pixel limit are the inference core's own plain values), so
``sam3ops predict --help`` never imports torch.
"""

from sam3ops.inference.options import DEFAULT_MAX_PIXELS, PRECISIONS
from sam3ops.weights.config import DEFAULT_OUTPUT as DEFAULT_WEIGHTS_DIR

__all__ = ["AUTO", "DEFAULT_DEVICE", "DEFAULT_MASK_THRESHOLD", "DEFAULT_MAX_PIXELS", "DEFAULT_OUTPUT",
           "DEFAULT_PRECISION", "DEFAULT_RUNTIME", "DEFAULT_SCORE_THRESHOLD", "DEFAULT_TOP_K", "DEFAULT_WEIGHTS", "OFF",
           "PRECISIONS", "RANDOM_TOP_K", "RUNTIMES", "top_k_for"]
DEFAULT_PRECISION = "fp32"
DEFAULT_DEVICE = "cpu"
DEFAULT_WEIGHTS = DEFAULT_WEIGHTS_DIR  # where `sam3ops download` puts the weights
DEFAULT_OUTPUT = "predictions"
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5
RUNTIMES = ("auto", "meta")  # as Segmenter.from_dir: auto from the folder; meta: Meta's own model
DEFAULT_RUNTIME = "auto"
DEFAULT_TOP_K = None  # predict keeps the instances above the score threshold unless --top-k is given
RANDOM_TOP_K = 3  # the demo and the notebook on random weights: the 3 best per prompt (none pass a threshold)
OFF, AUTO = "off", "auto"  # --top-k words: the threshold; RANDOM_TOP_K on random weights, else the threshold


def top_k_for(choice: int | str | None, *, random: bool) -> int | None:
    """The top-k to segment with: ``auto`` is :data:`RANDOM_TOP_K` on random weights and None (the score
    threshold) on real ones; ``off`` and None are None; a number is itself (the segmenter checks it)."""
    if choice == AUTO:
        return RANDOM_TOP_K if random else None
    return None if choice in (None, OFF) else choice
