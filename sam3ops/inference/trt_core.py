"""The model core on TensorRT: the three engines of ``convert --format tensorrt`` behind the same calls.

Inputs and outputs are torch CUDA tensors: each input's shape is set on the execution context,
every tensor's device address is bound (``set_tensor_address``) and the engine is enqueued with
``execute_async_v3`` on torch's current stream, so TensorRT's work is ordered with torch's and no
extra copies or synchronisations are needed. A batch larger than an engine's optimization profile
allows is run in chunks of the profile's maximum (with a warning), not refused.

Engines are tied to the TensorRT version and GPU model that built them (see the ``.json`` sidecar
beside each one).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from sam3ops.checkpoint.layout import ENGINES
from sam3ops.errors import TensorRTError, TensorRTUnavailableError, UsageError
from sam3ops.inference.core import Outputs, VisionFeatures

log = logging.getLogger(__name__)



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


def torch_dtype(trt, dtype) -> torch.dtype:
    """The torch dtype of a TensorRT ``DataType``."""
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8, trt.uint8: torch.uint8}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise TensorRTError(f"engine tensor type {dtype} has no torch equivalent here")
    return table[dtype]


class _Engine:
    """One deserialized engine, its execution context and I/O names."""

    def __init__(self, trt, runtime, path: Path):
        self.path = path
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise TensorRTError(f"{path} cannot be loaded by TensorRT {trt.__version__} on this GPU",
                                hint="an engine runs only on the TensorRT version and GPU model that built it "
                                     "(see its .json sidecar): convert again on this machine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        # get_tensor_profile_shape -> [min, opt, max] of profile 0
        self.max_batch = min(self.engine.get_tensor_profile_shape(n, 0)[2][0] for n in self.inputs)
        self._warned = False

    def run(self, feeds: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        """Outputs by name for ``feeds`` (inputs the engine does not take are ignored)."""
        batch = feeds[self.inputs[0]].shape[0]
        if batch <= self.max_batch:
            return self._enqueue(feeds, device)
        if not self._warned:
            log.warning("%s: batch %d is over the engine's profile maximum %d: running it in chunks",
                        self.path.name, batch, self.max_batch)
            self._warned = True
        parts = [self._enqueue({n: feeds[n][i:i + self.max_batch] for n in self.inputs}, device)
                 for i in range(0, batch, self.max_batch)]
        return {name: torch.cat([part[name] for part in parts]) for name in self.outputs}

    def _enqueue(self, feeds: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        bound = {}  # referenced until enqueued; torch's allocator orders reuse on this stream
        for name in self.inputs:
            tensor = feeds[name].to(device=device, dtype=self.dtypes[name]).contiguous()
            if not self.context.set_input_shape(name, tuple(tensor.shape)):
                raise TensorRTError(f"{self.path.name}: input {name} of shape {tuple(tensor.shape)} is outside "
                                    "the engine's optimization profile",
                                    hint="see the profiles in the engine's .json sidecar; "
                                         "rebuild with other batch sizes")
            self.context.set_tensor_address(name, tensor.data_ptr())
            bound[name] = tensor
        outputs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise TensorRTError(f"{self.path.name}: output {name} has a data-dependent shape {shape}")
            outputs[name] = torch.empty(shape, dtype=self.dtypes[name], device=device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(device).cuda_stream):
            raise TensorRTError(f"{self.path.name}: TensorRT failed to run the engine")
        return outputs


class TrtCore:
    """``encode_image`` / ``encode_text`` / ``decode`` on TensorRT engines, torch CUDA tensors in and out.

    Raises:
        UsageError: ``device`` is not a CUDA device.
        TensorRTUnavailableError: no ``tensorrt`` module or no GPU.
        TensorRTError: an engine this TensorRT or GPU cannot load.
    """

    def __init__(self, folder: Path, *, device: str = "cuda"):
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise UsageError(f"TensorRT engines run on an NVIDIA GPU, not on {device!r}", hint="use --device cuda")
        trt = require_tensorrt()
        self.trt_version = trt.__version__
        runtime = trt.Runtime(trt_logger(trt))
        with torch.cuda.device(self.device):
            self.engines = {name: _Engine(trt, runtime, Path(folder) / name) for name in ENGINES}
        self.dtype = torch.float32  # float I/O: the graphs keep float32 inputs and outputs

    def encode_image(self, pixel_values: torch.Tensor) -> VisionFeatures:
        out = self.engines["vision.engine"].run({"pixel_values": pixel_values.float()}, self.device)
        return VisionFeatures(*(out[name].float() for name in VisionFeatures._fields))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.engines["text.engine"].run({"input_ids": input_ids, "attention_mask": attention_mask},
                                               self.device)
        return out["text_features"].float()

    def decode(self, vision: VisionFeatures, text_features: torch.Tensor, attention_mask: torch.Tensor) -> Outputs:
        feeds = {**vision._asdict(), "text_features": text_features.float(), "attention_mask": attention_mask}
        out = self.engines["decoder.engine"].run(feeds, self.device)
        return Outputs(*(out[name] for name in Outputs._fields))
