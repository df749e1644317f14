"""The model core on TensorRT: the three engines of ``convert --format tensorrt`` behind the same calls.

Inputs and outputs are torch CUDA tensors (see :mod:`sam3ops.inference.trt_engine` for shapes,
addresses, padding and chunking). Streams: TensorRT adds device-wide synchronisation when it is
enqueued on the default stream (torch's current stream unless the caller chose another), so the
core enqueues on a stream of its own, ordered with the caller's current stream by events and
never by a host sync: the core's stream waits for the caller's work before the engine runs (the
inputs are ready), and the caller's stream waits for the engine before anything after it (the
outputs are ready, and no buffer is freed or reused while TensorRT still reads or writes it).
Every call runs under a device guard for the core's GPU, so ``cuda:1`` works whatever the
current device is.

Engines are tied to the TensorRT version and GPU model that built them (see the ``.json`` sidecar
beside each one).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

from sam3ops.checkpoint.layout import ENGINES
from sam3ops.errors import TensorRTUnavailableError, UsageError
from sam3ops.inference.core import Outputs, VisionFeatures
from sam3ops.inference.trt_engine import Engine, torch_dtype

__all__ = ["ENGINES", "StreamOrder", "TrtCore", "require_tensorrt", "torch_dtype", "trt_logger"]


def require_tensorrt():
    """The ``tensorrt`` module, when TensorRT can run here.

    Raises:
        TensorRTUnavailableError: ``tensorrt`` cannot be imported, or there is no CUDA GPU.
    """
    try:
        import tensorrt
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but its CUDA libraries are not
        raise TensorRTUnavailableError(f"TensorRT is not available here ({type(exc).__name__}: {exc})") from None
    if not torch.cuda.is_available():
        raise TensorRTUnavailableError(f"TensorRT {tensorrt.__version__} is installed but there is no NVIDIA GPU "
                                       "(CUDA is not available here)")
    return tensorrt


@functools.cache
def trt_logger(trt):
    """One TensorRT logger (warnings and errors) for every builder and runtime of a ``tensorrt`` module."""
    return trt.Logger(trt.Logger.WARNING)


class StreamOrder:
    """The core's own CUDA stream on ``device``, ordered with the caller's current stream by events.

    :meth:`guard` wraps one call of the core; :meth:`ready` is called by the engine right before
    each enqueue, after its inputs were prepared (copied, cast, padded) on the caller's stream.
    """

    def __init__(self, device: torch.device):
        self.device = device
        with torch.cuda.device(device):
            self.stream = torch.cuda.Stream(device)
        self._caller, self._held = None, []

    @contextlib.contextmanager
    def guard(self) -> Iterator[StreamOrder]:
        """The device guard for one call; at the end the caller's stream waits for the core's stream
        (also when the call raised: the buffers of an engine already enqueued must outlive it)."""
        with torch.cuda.device(self.device):
            self._caller = torch.cuda.current_stream(self.device)
            try:
                yield self
            finally:
                self._caller.wait_stream(self.stream)  # an event recorded on ours, waited on by the caller's
                self._caller, self._held = None, []  # now the caller's stream may reuse their memory

    def ready(self, buffers) -> int:
        """Make the core's stream wait for all work queued so far on the caller's stream; its handle.

        ``buffers`` (the tensors bound for this enqueue) are held until the caller's stream has waited:
        freed earlier, the caching allocator could hand their memory to the caller's next kernel while
        TensorRT still reads it.
        """
        self._held.extend(buffers)
        self.stream.wait_stream(self._caller)
        return self.stream.cuda_stream


class TrtCore:
    """``encode_image`` / ``encode_text`` / ``decode`` on TensorRT engines, torch CUDA tensors in and out.

    Raises:
        UsageError: ``device`` is not a CUDA device.
        TensorRTUnavailableError: no ``tensorrt`` module or no GPU.
        TensorRTError: an engine this TensorRT or GPU cannot load.
    """

    def __init__(self, folder: Path, *, device: str = "cuda"):
        device = torch.device(device)
        if device.type != "cuda":
            raise UsageError(f"TensorRT engines run on an NVIDIA GPU, not on {str(device)!r}", hint="use --device cuda")
        trt = require_tensorrt()
        # "cuda" alone means the current device now: pinned, so later calls go to the same GPU
        self.device = device if device.index is not None else torch.device("cuda", torch.cuda.current_device())
        self.trt_version = trt.__version__
        runtime = trt.Runtime(trt_logger(trt))
        with torch.cuda.device(self.device):  # engines and contexts are created on the GPU they run on
            self.engines = {name: Engine(trt, runtime, Path(folder) / name) for name in ENGINES}
        self.order = StreamOrder(self.device)
        self.dtype = torch.float32  # float I/O: the graphs keep float32 inputs and outputs

    def _run(self, engine: str, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self.order.guard() as order:
            return self.engines[engine].run(feeds, self.device, order)

    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures:
        out = self._run("vision.engine", {"pixel_values": pixel_values.float()})
        return VisionFeatures(*(out[name].float() for name in VisionFeatures._fields))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self._run("text.engine", {"input_ids": input_ids, "attention_mask": attention_mask})
        return out["text_features"].float()

    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        feeds = {**vision._asdict(), "text_features": text_features.float(), "attention_mask": attention_mask}
        out = self._run("decoder.engine", feeds)
        return Outputs(*(out[name] for name in Outputs._fields))
