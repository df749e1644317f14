"""The choices and limits a user gives a model run: its precisions and the image pixel limit.

Plain values, no imports: the CLI's ``--help`` and the stage config modules read them without torch.
"""

PRECISIONS = ("fp32", "fp16", "bf16")  # the precisions a torch model runs at
# Decompression-bomb guard: a small file can declare billions of pixels. 64 MP covers any camera;
# larger images are refused before they are decoded.
DEFAULT_MAX_PIXELS = 64_000_000
