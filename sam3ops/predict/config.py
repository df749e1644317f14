"""The predict stage's defaults and choices, for the CLI, the MLproject file and :func:`predict_stage`.

This module imports nothing, so ``sam3ops predict --help`` never imports torch. The image loader's
own limit (``sam3ops.inference.images.DEFAULT_MAX_PIXELS``, behind a torch import) must equal
:data:`DEFAULT_MAX_PIXELS`; a test keeps them equal.
"""

PRECISIONS = ("fp32", "fp16", "bf16")  # the torch precisions a Segmenter runs at
DEFAULT_PRECISION = "fp32"
DEFAULT_DEVICE = "cpu"
DEFAULT_WEIGHTS = "weights/sam3"  # where `sam3ops download` puts the weights
DEFAULT_OUTPUT = "predictions"
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5
DEFAULT_MAX_PIXELS = 64_000_000  # decompression-bomb guard
