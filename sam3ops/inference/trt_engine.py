"""One TensorRT engine behind a call: shapes set, addresses bound, enqueued on a given stream.

What TensorRT asks of its caller, and how it is met here:

- every I/O address must be 256-byte aligned (``set_tensor_address`` returns False otherwise):
  tensors are bound as they are when aligned (torch's CUDA allocations are) and copied into an
  aligned buffer when not (a slice that starts mid-allocation);
- each input shape must lie inside the optimization profile (``set_input_shape`` returns False
  otherwise): a batch over the profile's maximum runs in chunks of the maximum, a batch (or last
  chunk) under its minimum is **padded** to the minimum by repeating its last item, and the
  outputs are sliced back, so every batch size from 1 up runs; a warning says so once per engine;
- ``execute_async_v3`` only enqueues (it returns False when it cannot): the buffers must stay alive
  until the stream has run. Here inputs and outputs are allocated on the caller's stream, the
  engine's stream waits for the caller's (inputs ready) right before each enqueue, and the caller's
  stream waits for the engine's after the call (see :class:`~sam3ops.inference.trt_core.StreamOrder`),
  so nothing is read too early, nor freed or reused while TensorRT still uses it.

Every False the TensorRT API returns becomes a :class:`TensorRTError` naming the engine and tensor.
This module imports torch only; the ``tensorrt`` module is passed in (a fake one in the tests).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from sam3ops.errors import TensorRTError

log = logging.getLogger(__name__)

ALIGNMENT = 256  # bytes: TensorRT's requirement for every I/O tensor address


def torch_dtype(trt, dtype) -> torch.dtype:
    """The torch dtype of a TensorRT ``DataType``."""
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8, trt.uint8: torch.uint8}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    if dtype not in table:
        raise TensorRTError(f"engine tensor type {dtype} has no torch equivalent here")
    return table[dtype]


def aligned_empty(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """An uninitialised tensor whose data starts on an :data:`ALIGNMENT`-byte boundary."""
    tensor = torch.empty(shape, dtype=dtype, device=device)
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    nbytes = math.prod(shape) * tensor.element_size()
    raw = torch.empty(nbytes + ALIGNMENT, dtype=torch.uint8, device=device)
    offset = -raw.data_ptr() % ALIGNMENT
    return raw[offset:offset + nbytes].view(dtype).view(tuple(shape))


def aligned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` if it is contiguous and aligned, else an aligned contiguous copy."""
    tensor = tensor.contiguous()
    if tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    return aligned_empty(tuple(tensor.shape), tensor.dtype, tensor.device).copy_(tensor)


def _pad(tensor: torch.Tensor, size: int) -> torch.Tensor:
    # Repeat the last item: real data through every layer, so no NaN from an all-zero attention mask.
    extra = tensor[-1:].expand(size - tensor.shape[0], *tensor.shape[1:])
    return torch.cat([tensor, extra])


class Engine:
    """One deserialized engine, its execution context, I/O names and batch range (profile 0)."""

    def __init__(self, trt, runtime, path: Path):
        self.path = Path(path)
        self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise TensorRTError(f"{self.path} cannot be loaded by TensorRT {trt.__version__} on this GPU",
                                hint="an engine runs only on the TensorRT version and GPU model that built it "
                                     "(see its .json sidecar): convert again on this machine")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise TensorRTError(f"{self.path.name}: TensorRT could not create an execution context",
                                hint="the GPU may be out of memory: free it, or rebuild with a smaller --max-batch")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        # get_tensor_profile_shape(name, profile) -> [min, opt, max] shapes: the batch range all inputs allow
        profiles = [self.engine.get_tensor_profile_shape(n, 0) for n in self.inputs]
        self.min_batch = max(p[0][0] for p in profiles)
        self.max_batch = min(p[2][0] for p in profiles)
        self._warned = False

    def run(self, feeds: dict[str, torch.Tensor], device: torch.device, order) -> dict[str, torch.Tensor]:
        """Outputs by name for ``feeds`` (inputs the engine does not take are ignored).

        ``order.ready(buffers)`` is called right before each enqueue with the tensors bound; it returns
        the CUDA stream handle to enqueue on and holds the buffers until the caller's stream has
        waited (see :class:`~sam3ops.inference.trt_core.StreamOrder`).
        """
        batch = feeds[self.inputs[0]].shape[0]
        if not self.min_batch <= batch <= self.max_batch:
            self._warn(batch)
        parts = []
        for start in range(0, batch, self.max_batch):
            chunk = {n: feeds[n][start:start + self.max_batch] for n in self.inputs}
            size = chunk[self.inputs[0]].shape[0]
            if size < self.min_batch:
                chunk = {n: _pad(t, self.min_batch) for n, t in chunk.items()}
            out = self._enqueue(chunk, device, order)
            parts.append({n: t[:size] for n, t in out.items()})
        if len(parts) == 1:
            return parts[0]
        return {name: torch.cat([part[name] for part in parts]) for name in self.outputs}

    def _warn(self, batch: int) -> None:
        if not self._warned:
            how = "running it in chunks" if batch > self.max_batch else "padding it to the minimum"
            log.warning("%s: batch %d is outside the engine's profile %d..%d: %s", self.path.name, batch,
                        self.min_batch, self.max_batch, how)
            self._warned = True

    def _bind(self, name: str, tensor: torch.Tensor) -> None:
        if not self.context.set_tensor_address(name, tensor.data_ptr()):
            raise TensorRTError(f"{self.path.name}: TensorRT refused the address of {name} (it needs "
                                f"{ALIGNMENT}-byte aligned memory on the engine's GPU)")

    def _enqueue(self, feeds: dict[str, torch.Tensor], device: torch.device, order) -> dict[str, torch.Tensor]:
        bound = {}
        for name in self.inputs:
            tensor = aligned(feeds[name].to(device=device, dtype=self.dtypes[name]))
            if not self.context.set_input_shape(name, tuple(tensor.shape)):
                raise TensorRTError(f"{self.path.name}: input {name} of shape {tuple(tensor.shape)} is outside "
                                    "the engine's optimization profile",
                                    hint="see the profiles in the engine's .json sidecar; "
                                         "rebuild with other batch sizes")
            self._bind(name, tensor)
            bound[name] = tensor
        outputs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise TensorRTError(f"{self.path.name}: output {name} has a data-dependent shape {shape}")
            outputs[name] = aligned_empty(shape, self.dtypes[name], device)
            self._bind(name, outputs[name])
        if not self.context.execute_async_v3(order.ready([*bound.values(), *outputs.values()])):
            raise TensorRTError(f"{self.path.name}: TensorRT failed to enqueue the engine")
        return outputs
