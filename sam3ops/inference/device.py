"""Where and at which precision a model runs: ``--device`` and ``--precision`` checked once."""

from __future__ import annotations

import torch

from sam3ops.errors import UsageError
from sam3ops.inference import options

PRECISIONS = dict(zip(options.PRECISIONS, (torch.float32, torch.float16, torch.bfloat16)))


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; :class:`UsageError` when CUDA is asked for but absent."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available here", hint="use --device cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {device!r}", hint="use cpu or cuda")
    return resolved


def resolve_precision(precision: str) -> torch.dtype:
    """The torch dtype of ``fp32``, ``fp16`` or ``bf16``."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"choose one of: {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]
