"""What one conversion makes and how its parity gate judges it, validated once.

:class:`ConvertConfig` carries the options of ``sam3ops convert`` (and of the pipeline's
conversions) from the stage to its helpers; it checks itself on creation, each bad value a
:class:`UsageError` with a hint. The formats, precisions, TensorRT profile and parity thresholds are
defined here once: the CLI shows them, the MLproject file repeats them (a test keeps the two equal)
and the library uses them. This module imports neither torch nor mlflow, so ``sam3ops --help``
can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam3ops.errors import UsageError

AUTO = "auto"
FORMATS = ("fp16", "bf16", "fp32", "onnx", "tensorrt", "aoti")
# What each format can make; the first one is what ``auto`` gives.
FORMAT_PRECISIONS = {"fp16": ("fp16",), "bf16": ("bf16",), "fp32": ("fp32",), "onnx": ("fp32", "fp16"),
                     "tensorrt": ("fp16", "bf16", "fp32"), "aoti": ("fp32", "bf16", "fp16")}
# Where the weights go: transformers' layout (config + safetensors) or Meta's (``sam3.pt``).
LAYOUTS = ("transformers", "meta")
WEIGHT_FORMATS = ("fp16", "bf16", "fp32")  # the formats that can be written in either layout
PRECISION_CHOICES = (AUTO, "fp32", "fp16", "bf16")

DEFAULT_OPSET = 17
MIN_OPSET = 17
DEFAULT_BATCH_PROFILE = (1, 8, 16)  # TensorRT min / opt / max batch (AOTInductor: min and max)
DEFAULT_WORKSPACE_GB = 8.0
DEFAULT_TIMING_CACHE = "weights/trt-timing.cache"  # what the CLI passes; the library builds without one by default

DEFAULT_MIN_MASK_IOU = 0.98
DEFAULT_MAX_SCORE_DIFF = 0.02
DEFAULT_PARITY_IMAGES = ("astronaut", "chelsea")  # scikit-image sample photos
DEFAULT_PARITY_PROMPTS = ("person", "cat", "cup")

_CHECKPOINT_SUFFIXES = (".pt", ".pth")


def is_meta_input(source: Path) -> bool:
    """True when ``source`` is Meta's checkpoint: a ``.pt``/``.pth`` file, or a Meta-layout folder (``sam3.pt``,
    no ``config.json``)."""
    source = Path(source)
    if source.is_file():
        return source.suffix in _CHECKPOINT_SUFFIXES
    return (source / "sam3.pt").is_file() and not (source / "config.json").is_file()


def check_batch_profile(batch: tuple[int, ...]) -> None:
    """:class:`UsageError` unless ``batch`` is a TensorRT profile of whole numbers 1 <= min <= opt <= max."""
    if len(batch) != 3 or not all(isinstance(b, int) for b in batch) or not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise UsageError(f"batch profile min/opt/max {'/'.join(map(str, batch))} is not 1 <= min <= opt <= max",
                         hint="e.g. --min-batch 1 --opt-batch 8 --max-batch 16")


def check_batch_range(min_batch: int, max_batch: int) -> None:
    """:class:`UsageError` unless the AOTInductor batch range is whole numbers 1 <= min <= max."""
    if not all(isinstance(b, int) for b in (min_batch, max_batch)) or not 1 <= min_batch <= max_batch:
        raise UsageError(f"batch range {min_batch}-{max_batch} is not 1 <= min <= max",
                         hint="e.g. --min-batch 1 --max-batch 16")


def check_workspace(workspace_gb: float) -> None:
    """:class:`UsageError` unless the TensorRT workspace limit is positive."""
    if not workspace_gb > 0:
        raise UsageError(f"--workspace-gb must be positive, got {workspace_gb}")


@dataclass(frozen=True)
class ConvertConfig:
    """One conversion of ``input_dir`` to ``format`` in ``output``, and its parity gate.

    After creation the values are resolved: ``precision`` is what the conversion makes (never
    ``auto``), ``device`` is a CUDA device for TensorRT (engines and their parity check run there),
    ``reference`` is ``None`` for "the input itself", and empty parity lists are the defaults.

    Args:
        input_dir: a weights folder (safetensors; for tensorrt also ONNX graphs), or Meta's
            checkpoint (``sam3.pt``, flat or under ``"model"``, or a Meta-layout folder).
        format: one of :data:`FORMATS`.
        output: the destination folder (must be empty unless ``overwrite``).
        layout: ``transformers`` or ``meta`` (``sam3.pt``; formats fp32, fp16, bf16 only).
        precision: ``auto`` or one of :data:`FORMAT_PRECISIONS` for the format.
        opset: ONNX opset (onnx, tensorrt), at least :data:`MIN_OPSET`.
        overwrite: replace a non-empty ``output``.
        device: where the parity check runs (aoti: also what the packages are compiled for).
        min_batch, opt_batch, max_batch: the TensorRT batch profile (aoti: the batch range min..max).
        workspace_gb: the TensorRT builder's workspace limit.
        timing_cache: a TensorRT timing cache file (``None``: none).
        reference: what the gate compares with (``None`` or ``auto``: ``input_dir``): an fp32 weights
            folder, or a Meta checkpoint (``sam3.pt`` or a folder holding it) run on Meta's own model.
        min_mask_iou, max_score_diff: the gate's thresholds.
        parity_images, parity_prompts: what the gate runs on.

    Raises:
        UsageError: an unknown format or layout, a precision the format cannot make, Meta's layout
            for ONNX, TensorRT or AOTInductor, fp32 from fp32 in one layout, an old opset, a bad
            TensorRT profile or workspace, a bad aoti batch range, thresholds out of range.
    """

    input_dir: str
    format: str
    output: str
    layout: str = "transformers"
    precision: str = AUTO
    opset: int = DEFAULT_OPSET
    overwrite: bool = False
    device: str = "cpu"
    min_batch: int = DEFAULT_BATCH_PROFILE[0]
    opt_batch: int = DEFAULT_BATCH_PROFILE[1]
    max_batch: int = DEFAULT_BATCH_PROFILE[2]
    workspace_gb: float = DEFAULT_WORKSPACE_GB
    timing_cache: str | None = None
    reference: str | None = None
    min_mask_iou: float = DEFAULT_MIN_MASK_IOU
    max_score_diff: float = DEFAULT_MAX_SCORE_DIFF
    parity_images: tuple[str, ...] = DEFAULT_PARITY_IMAGES
    parity_prompts: tuple[str, ...] = DEFAULT_PARITY_PROMPTS

    def __post_init__(self) -> None:
        self._check_format()
        self._check_input()
        if self.format in ("onnx", "tensorrt") and self.opset < MIN_OPSET:
            raise UsageError(f"opset {self.opset} is too old", hint=f"use opset {MIN_OPSET} or newer")
        if self.format == "tensorrt":
            self._check_tensorrt()
        if self.format == "aoti":
            check_batch_range(self.min_batch, self.max_batch)
        if not 0.0 <= self.min_mask_iou <= 1.0:
            raise UsageError(f"--min-mask-iou must be from 0 to 1, got {self.min_mask_iou}")
        if not self.max_score_diff >= 0.0:
            raise UsageError(f"--max-score-diff must be 0 or more, got {self.max_score_diff}")
        resolved = {
            "precision": FORMAT_PRECISIONS[self.format][0] if self.precision == AUTO else self.precision,
            # engines run on the GPU, and so does their parity check
            "device": "cuda" if self.format == "tensorrt" and not self.device.startswith("cuda") else self.device,
            "reference": None if self.reference == AUTO else self.reference,
            "parity_images": tuple(self.parity_images) or DEFAULT_PARITY_IMAGES,
            "parity_prompts": tuple(self.parity_prompts) or DEFAULT_PARITY_PROMPTS,
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)  # frozen: resolved once, here

    def _check_format(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown --format {self.format!r}", hint=f"choose one of: {', '.join(FORMATS)}")
        allowed = FORMAT_PRECISIONS[self.format]
        if self.precision != AUTO and self.precision not in allowed:
            several = len(allowed) > 1
            raise UsageError(f"--format {self.format} cannot make precision {self.precision!r}",
                             hint=f"use --precision {' or '.join(allowed)}" if several
                             else "drop --precision: the format is the precision")

    def _check_input(self) -> None:
        if self.layout not in LAYOUTS:
            raise UsageError(f"unknown --layout {self.layout!r}", hint=f"choose one of: {', '.join(LAYOUTS)}")
        if self.layout == "meta" and self.format not in WEIGHT_FORMATS:
            raise UsageError(f"--format {self.format} has no Meta layout (Meta's sam3.pt holds PyTorch weights)",
                             hint=f"use --format {', '.join(WEIGHT_FORMATS)} with --layout meta")
        source = Path(self.input_dir)
        if self.format == "fp32" and self.layout == "transformers" and not is_meta_input(source):
            raise UsageError(f"{self.input_dir} is already in the transformers layout: fp32 to fp32 changes nothing",
                             hint="--format fp32 converts between layouts: add --layout meta, or give Meta's sam3.pt")

    def _check_tensorrt(self) -> None:
        check_batch_profile(self.batch)
        check_workspace(self.workspace_gb)

    @property
    def batch(self) -> tuple[int, int, int]:
        """The TensorRT batch profile (min, opt, max)."""
        return (self.min_batch, self.opt_batch, self.max_batch)

    @property
    def reference_dir(self) -> Path:
        """What the parity gate compares with: ``reference`` (a folder, or Meta's ``sam3.pt``), else the input."""
        return Path(self.reference or self.input_dir)

    def params(self) -> dict[str, Any]:
        """The run's params: what every conversion logs, plus the format's own options."""
        params: dict[str, Any] = {"input": self.input_dir, "format": self.format, "output": self.output,
                                  "layout": self.layout,
                                  "precision": self.precision, "device": self.device,
                                  "min_mask_iou": self.min_mask_iou, "max_score_diff": self.max_score_diff}
        if self.format in ("onnx", "tensorrt"):
            params["opset"] = self.opset
        if self.format == "tensorrt":
            params.update(min_batch=self.min_batch, opt_batch=self.opt_batch, max_batch=self.max_batch,
                          workspace_gb=self.workspace_gb, timing_cache=self.timing_cache or "none")
        if self.format == "aoti":
            params.update(min_batch=self.min_batch, max_batch=self.max_batch)
        return params
