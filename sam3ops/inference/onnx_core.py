"""The model core on ONNX Runtime: the three exported graphs behind the same three calls.

CUDA execution provider when the device is ``cuda`` and onnxruntime-gpu can use it, else CPU.
Outputs come back as torch tensors on the CPU; the shared post-processing does the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sam3ops.checkpoint.layout import ONNX_GRAPHS
from sam3ops.errors import UsageError
from sam3ops.inference.core import Outputs, VisionFeatures


def providers_for(device: str) -> list[str]:
    """ONNX Runtime execution providers for ``device`` (CUDA first when asked for and present)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available or not torch.cuda.is_available():
            raise UsageError("ONNX on cuda needs onnxruntime-gpu and a GPU", hint="use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxCore:
    """``encode_image`` / ``encode_text`` / ``decode`` on ONNX Runtime sessions."""

    def __init__(self, folder: Path, *, device: str = "cpu"):
        import onnxruntime as ort

        providers = providers_for(device)
        self.sessions = {name: ort.InferenceSession(str(Path(folder) / name), providers=providers)
                         for name in ONNX_GRAPHS}
        self.device, self.dtype = torch.device("cpu"), torch.float32  # I/O is numpy on the host
        self.providers = providers

    def _run(self, graph: str, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        session = self.sessions[graph]
        # The exporter drops inputs a graph never reads (the decoder uses one position encoding).
        wanted = {i.name: feeds[i.name].detach().cpu().numpy() for i in session.get_inputs()}
        return [torch.from_numpy(np.asarray(out)) for out in session.run(None, wanted)]

    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures:
        return VisionFeatures(*self._run("vision.onnx", {"pixel_values": pixel_values.float()}))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._run("text.onnx", {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        feeds = {**vision._asdict(), "text_features": text_features, "attention_mask": attention_mask}
        return Outputs(*self._run("decoder.onnx", feeds))
