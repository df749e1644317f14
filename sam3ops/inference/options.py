"""The choices and limits a user gives a model run: its precisions and the image pixel limit.

Plain values, no imports: the CLI's ``--help`` and the stage config modules read them without torch.
"""

PRECISIONS = ("fp32", "fp16", "bf16")  # the precisions a torch model runs at
DEFAULT_MAX_PIXELS = 64_000_000  # decompression-bomb guard: larger images are refused before decoding
