"""A fake of the ``tensorrt`` Python module (10.x / 11.x), for testing our side of the API without a GPU.

It has the real names, signatures and failure style: TensorRT reports most failures by returning
``False`` (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``, ``set_timing_cache``) or
``None`` (``create_timing_cache`` for a cache of another TensorRT version, ``deserialize_cuda_engine``
for an engine of another version, ``build_serialized_network``, ``create_execution_context``) after
logging, not by raising. Facts it models, from NVIDIA's API reference: TF32 is on by default
(``BuilderFlag.TF32``); I/O addresses must be 256-byte aligned; a shape outside the optimization
profile is refused; TensorRT 11 has no FP16/BF16 builder flags.

The runtime half runs a "plan" made by :func:`plan`: each output is a simple function of one
input (``add1``: input + 1, ``rowsum``: sum over the non-batch axes), computed on the memory at
the bound addresses, and every enqueue is recorded in ``calls``. With ``device="cpu"`` (default)
that is host memory (the tests bind CPU tensors); with ``device="cuda"`` it is GPU memory, and the
work is enqueued with torch on the stream handle given to ``execute_async_v3``, after a spin of
``delay_cycles`` GPU cycles, so a caller that does not order its streams reads too early.
Not TensorRT: the GPU tests check the real thing.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np

ALIGNMENT = 256
_TYPESTR = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "int64": "<i8", "bool": "|b1"}


def plan(version: str, inputs: dict, outputs: dict) -> bytes:
    """The bytes of a fake engine: ``inputs`` name -> {"dtype", "profile": [min, opt, max] shapes},
    ``outputs`` name -> {"dtype", "of": an input, "op": "add1" | "rowsum"}."""
    return b"FAKEPLAN " + version.encode() + b"\n" + json.dumps({"inputs": inputs, "outputs": outputs}).encode()


def _host_array(address: int, shape, dtype: str) -> np.ndarray:
    holder = types.SimpleNamespace(__array_interface__={"data": (address, False), "shape": tuple(shape),
                                                         "typestr": _TYPESTR[dtype], "version": 3})
    return np.asarray(holder)


def _device_array(address: int, shape, dtype: str):
    import torch

    holder = types.SimpleNamespace(__cuda_array_interface__={"data": (address, False), "shape": tuple(shape),
                                                              "typestr": _TYPESTR[dtype], "version": 2})
    return torch.as_tensor(holder, device="cuda")


def _compute_on_gpu(stream_handle: int, delay_cycles: int, jobs) -> None:
    import torch

    with torch.cuda.stream(torch.cuda.ExternalStream(stream_handle)):
        torch.cuda._sleep(delay_cycles)
        for op, source, target in jobs:
            target.copy_(source + 1 if op == "add1" else source.reshape(len(source), -1).sum(1, keepdim=True))


class FakeTensorRT:
    """``fake = FakeTensorRT(flags=("FP16", "BF16"), version="10.15.1")``; pass it where ``tensorrt`` goes.

    ``calls`` records what the builder and contexts were told; ``fail`` names calls that fail
    (``"parse"``, ``"build"``, ``"context"``, ``"execute"``).
    """

    def __init__(self, *, flags=("FP16", "BF16"), version="10.15.1", fail=(), device="cpu", delay_cycles=0):
        self.__version__, self.calls, self.parsed, self.fail = version, [], [], set(fail)
        self.device, self.delay_cycles = device, delay_cycles
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
        self.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
        self.BuilderFlag = types.SimpleNamespace(**{f: f for f in (*flags, "TF32")})
        self.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
        for name in ("float32", "float16", "bfloat16", "int8", "int32", "int64", "bool", "uint8"):
            setattr(self, name, f"DataType.{name}")
        self.Builder, self.OnnxParser = _builder_classes(self)
        self.Runtime = _runtime_class(self)

    def cache_header(self) -> bytes:
        return f"timing cache of TensorRT {self.__version__}\n".encode()


def _builder_classes(fake: FakeTensorRT):
    class Cache:
        def __init__(self, entries):
            self.entries = list(entries)

        def serialize(self):  # the real one returns IHostMemory, which has the buffer protocol
            return memoryview(fake.cache_header() + "".join(f"{e};" for e in self.entries).encode())

    class Config:
        def __init__(self):
            self.flags, self.cache = {"TF32"}, None  # TF32 is on by default

        def set_memory_pool_limit(self, pool, size):
            fake.calls.append(("pool", pool, size))

        def set_flag(self, flag):
            fake.calls.append(("flag", flag))
            self.flags.add(flag)

        def clear_flag(self, flag):
            fake.calls.append(("clear_flag", flag))
            self.flags.discard(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def create_timing_cache(self, blob):
            blob = bytes(blob)
            fake.calls.append(("cache_in", blob))
            if not blob:
                return Cache([])
            if not blob.startswith(fake.cache_header()):
                return None  # another TensorRT version's cache: logged, and None returned
            return Cache(e for e in blob[len(fake.cache_header()):].decode().split(";") if e)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            fake.calls.append(("profile", profile.shapes))
            return 0

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            fake.calls.append(("network_flags", flags))
            return types.SimpleNamespace(inputs=[], num_inputs=0, name="", get_input=lambda i: network.inputs[i])

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            profile = types.SimpleNamespace(shapes={})
            profile.set_shape = lambda name, *shapes: profile.shapes.__setitem__(name, shapes)
            return profile

        def build_serialized_network(self, network, config):
            if "build" in fake.fail:
                return None
            fake.calls.append(("built", network.name, sorted(config.flags)))
            config.cache.entries.append(network.name)
            return memoryview(plan(fake.__version__, {}, {}))

    network = types.SimpleNamespace(inputs=[])

    class OnnxParser:
        def __init__(self, net, logger):
            self.network, self.num_errors = net, 0

        def parse_from_file(self, path):
            import onnx

            from sam3ops.convert.onnx.fp16 import is_fp16_graph

            if "parse" in fake.fail:
                self.num_errors = 1
                return False
            model = onnx.load(path, load_external_data=False)
            fake.parsed.append((Path(path), is_fp16_graph(Path(path))))
            network.inputs[:] = [types.SimpleNamespace(name=v.name, shape=[
                d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim])
                for v in model.graph.input]
            self.network.num_inputs, self.network.name = len(network.inputs), Path(path).name
            return True

        def get_error(self, index):
            return "In node 0 (parseGraph): INVALID_NODE: fake parse failure"

    return Builder, OnnxParser


def _runtime_class(fake: FakeTensorRT):
    class Context:
        def __init__(self, spec):
            self.spec, self.shapes, self.addresses = spec, {}, {}

        def _profile(self, name):
            return self.spec["inputs"][name]["profile"]

        def set_input_shape(self, name, shape):
            if name not in self.spec["inputs"]:
                return False
            low, _, high = self._profile(name)
            shape = tuple(shape)
            if len(shape) != len(low) or not all(a <= s <= b for a, s, b in zip(low, shape, high)):
                return False  # outside the profile: TensorRT logs an error and returns False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name):
            if name in self.spec["inputs"]:
                return self.shapes.get(name, (-1, *self._profile(name)[0][1:]))
            out = self.spec["outputs"][name]
            shape = self.shapes.get(out["of"], (-1, *self._profile(out["of"])[0][1:]))
            return shape if out["op"] == "add1" else (shape[0], 1)

        def set_tensor_address(self, name, memory):
            if name not in self.spec["inputs"] and name not in self.spec["outputs"] or memory % ALIGNMENT:
                return False
            self.addresses[name] = memory
            return True

        def execute_async_v3(self, stream_handle):
            names = {*self.spec["inputs"], *self.spec["outputs"]}
            unset = set(self.shapes) != set(self.spec["inputs"]) or set(self.addresses) != names
            if "execute" in fake.fail or unset:
                return False
            fake.calls.append(("execute", stream_handle, dict(self.shapes)))
            view = _device_array if fake.device == "cuda" else _host_array
            jobs = []
            for name, out in self.spec["outputs"].items():
                of = out["of"]
                source = view(self.addresses[of], self.shapes[of], self.spec["inputs"][of]["dtype"])
                jobs.append((out["op"], source, view(self.addresses[name], self.get_tensor_shape(name), out["dtype"])))
            if fake.device == "cuda":
                _compute_on_gpu(stream_handle, fake.delay_cycles, jobs)
                return True
            for op, source, target in jobs:
                target[...] = source + 1 if op == "add1" else source.reshape(len(source), -1).sum(1, keepdims=True)
            return True

    class Engine:
        def __init__(self, spec):
            self.spec, self.names = spec, [*spec["inputs"], *spec["outputs"]]
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, index):
            return self.names[index]

        def get_tensor_mode(self, name):
            return fake.TensorIOMode.INPUT if name in self.spec["inputs"] else fake.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return getattr(fake, {**self.spec["inputs"], **self.spec["outputs"]}[name]["dtype"])

        def get_tensor_profile_shape(self, name, profile_index):
            return [tuple(s) for s in self.spec["inputs"][name]["profile"]]

        def create_execution_context(self):
            return None if "context" in fake.fail else Context(self.spec)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, serialized_engine):
            head, _, body = bytes(serialized_engine).partition(b"\n")
            if head != b"FAKEPLAN " + fake.__version__.encode():
                return None  # another TensorRT version's engine (or not an engine): logged, None returned
            return Engine(json.loads(body))

    return Runtime
