"""The TensorRT core's side of the runtime API, against the fake ``tensorrt`` module.

Most tests need no GPU: the fake runs on host memory, so the engines take CPU tensors, and the CUDA
calls of the stream ordering and device guard are replaced by recording fakes. One GPU test (it
skips without CUDA; TensorRT is not needed) runs the real streams with the fake engine's work
enqueued late on the core's stream. The GPU tests in tests/convert/tensorrt/test_build.py run
real engines.
"""

import logging

import pytest
import torch

from sam3ops.errors import TensorRTError
from sam3ops.inference import trt_core
from sam3ops.inference.trt_engine import ALIGNMENT, Engine, aligned, aligned_empty
from tests.support.fake_tensorrt import FakeTensorRT, plan

PROFILE = [[2, 3], [4, 3], [4, 3]]  # batch 2..4 of 3 floats


def _plan(version="10.15.1"):
    return plan(version, {"x": {"dtype": "float32", "profile": PROFILE}},
                {"y": {"dtype": "float32", "of": "x", "op": "add1"},
                 "s": {"dtype": "float32", "of": "x", "op": "rowsum"}})


def _engine(tmp_path, fake, blob=None):
    path = tmp_path / "toy.engine"
    path.write_bytes(blob or _plan(fake.__version__))
    return Engine(fake, fake.Runtime(None), path)


class _Order:
    """Stands in for StreamOrder: records each ready() and hands out a stream handle."""

    def __init__(self, calls):
        self.calls, self.held = calls, []

    def ready(self, buffers):
        self.held.extend(buffers)
        self.calls.append(("ready",))
        return 7


def _executed(fake):
    return [c[2]["x"] for c in fake.calls if c[0] == "execute"]


@pytest.mark.parametrize("batch, enqueued", [
    (1, [(2, 3)]),  # under the profile minimum: padded to 2, sliced back to 1
    (2, [(2, 3)]), (4, [(4, 3)]),
    (5, [(4, 3), (2, 3)]),  # over the maximum: chunks of 4, the last one (1) padded
    (9, [(4, 3), (4, 3), (2, 3)]),
])
def test_every_batch_size_runs_padded_or_chunked(tmp_path, caplog, batch, enqueued):
    fake = FakeTensorRT()
    engine = _engine(tmp_path, fake)
    assert (engine.min_batch, engine.max_batch) == (2, 4)
    x = torch.randn(batch, 3)
    with caplog.at_level(logging.WARNING):
        out = engine.run({"x": x, "unused": torch.zeros(1)}, torch.device("cpu"), _Order(fake.calls))
        engine.run({"x": x}, torch.device("cpu"), _Order(fake.calls))
    torch.testing.assert_close(out["y"], x + 1)
    torch.testing.assert_close(out["s"], x.sum(1, keepdim=True))
    assert _executed(fake) == enqueued * 2
    warned = [r.message for r in caplog.records if "outside the engine's profile 2..4" in r.message]
    assert len(warned) == (0 if 2 <= batch <= 4 else 1)  # once per engine, not per call


def test_unaligned_input_is_copied_to_an_aligned_buffer(tmp_path):
    fake = FakeTensorRT()
    engine = _engine(tmp_path, fake)
    base = aligned_empty((5, 3), torch.float32, "cpu").copy_(torch.randn(5, 3))
    x = base[1:]  # starts 12 bytes into the allocation: TensorRT would refuse the address
    assert x.data_ptr() % ALIGNMENT != 0 and aligned(x).data_ptr() % ALIGNMENT == 0
    out = engine.run({"x": x}, torch.device("cpu"), _Order(fake.calls))
    torch.testing.assert_close(out["y"], x + 1)
    assert all(t.data_ptr() % ALIGNMENT == 0 for t in out.values())


def test_aligned_empty_is_aligned_for_every_dtype():
    for dtype in (torch.float32, torch.float16, torch.int64, torch.bool):
        for shape in ((1,), (3, 5), (0, 4)):
            tensor = aligned_empty(shape, dtype, "cpu")
            assert tensor.shape == shape and tensor.dtype == dtype and tensor.data_ptr() % ALIGNMENT == 0


def test_what_the_api_refuses_is_one_clear_error(tmp_path, monkeypatch):
    fake = FakeTensorRT()
    with pytest.raises(TensorRTError, match="toy.engine cannot be loaded by TensorRT 10.15.1 on this GPU"):
        _engine(tmp_path, fake, blob=_plan("10.0.1"))  # built by another version: None from the runtime
    with pytest.raises(TensorRTError, match="could not create an execution context"):
        _engine(tmp_path, FakeTensorRT(fail={"context"}))
    engine = _engine(tmp_path, fake)
    cpu, order = torch.device("cpu"), _Order(fake.calls)
    with pytest.raises(TensorRTError, match=r"input x of shape \(2, 4\) is outside the engine's optimization profile"):
        engine.run({"x": torch.zeros(2, 4)}, cpu, order)
    monkeypatch.setattr(engine.context, "set_tensor_address", lambda name, memory: False)
    with pytest.raises(TensorRTError, match="refused the address of x .*256-byte aligned"):
        engine.run({"x": torch.zeros(2, 3)}, cpu, order)
    failing = _engine(tmp_path, FakeTensorRT(fail={"execute"}))
    with pytest.raises(TensorRTError, match="toy.engine: TensorRT failed to enqueue the engine"):
        failing.run({"x": torch.zeros(2, 3)}, cpu, order)


class _FakeCuda:
    """torch.cuda's Stream, device guard and current_stream, recording into one list."""

    def __init__(self, calls):
        self.calls, self.current = calls, 0
        cuda = self

        class Stream:
            def __init__(self, device=None, handle=None):
                self.device = device
                self.cuda_stream = handle if handle is not None else 1000 + len(calls)
                calls.append(("new_stream", self.cuda_stream, str(device)))

            def wait_stream(self, other):
                calls.append(("wait", self.cuda_stream, other.cuda_stream))

        class Guard:
            def __init__(self, device):
                self.device = torch.device(device)

            def __enter__(self):
                calls.append(("enter", self.device.index))

            def __exit__(self, *exc):
                calls.append(("exit", self.device.index))

        self.Stream, self.device = Stream, Guard
        self.caller = Stream.__new__(Stream)
        self.caller.cuda_stream = 0  # the default stream: what TensorRT must not be enqueued on
        self.current_stream = lambda device=None: cuda.caller

    def install(self, monkeypatch):
        for name in ("Stream", "device", "current_stream"):
            monkeypatch.setattr(torch.cuda, name, getattr(self, name))


def test_own_stream_waits_for_the_caller_and_the_caller_for_it(tmp_path, monkeypatch):
    fake = FakeTensorRT()
    cuda = _FakeCuda(fake.calls)
    cuda.install(monkeypatch)
    engine = _engine(tmp_path, fake)
    order = trt_core.StreamOrder(torch.device("cuda", 1))
    own = order.stream.cuda_stream
    fake.calls.clear()
    with order.guard() as ready:
        out = engine.run({"x": torch.randn(5, 3)}, torch.device("cpu"), ready)
        assert len(order._held) == 2 * 3  # x, y, s of both enqueues, held until the caller waits
    assert [c[:2] for c in fake.calls] == [
        ("enter", 1),
        ("wait", own), ("execute", own),  # each enqueue on our stream, after it waited for the caller's
        ("wait", own), ("execute", own),
        ("wait", 0), ("exit", 1),  # then the caller's stream waits for ours, inside the guard
    ]
    assert [c[2] for c in fake.calls if c[0] == "wait"] == [0, 0, own] and order._held == []
    assert out["y"].shape == (5, 3)


def test_the_caller_waits_even_when_the_engine_fails(tmp_path, monkeypatch):
    fake = FakeTensorRT(fail={"execute"})
    cuda = _FakeCuda(fake.calls)
    cuda.install(monkeypatch)
    engine = _engine(tmp_path, fake)
    order = trt_core.StreamOrder(torch.device("cuda", 0))
    fake.calls.clear()
    with pytest.raises(TensorRTError), order.guard() as ready:
        engine.run({"x": torch.randn(2, 3)}, torch.device("cpu"), ready)
    assert fake.calls[-2:] == [("wait", 0, order.stream.cuda_stream), ("exit", 0)]


def test_core_pins_its_gpu_and_loads_engines_under_its_guard(tmp_path, monkeypatch):
    fake = FakeTensorRT()
    _FakeCuda(fake.calls).install(monkeypatch)
    monkeypatch.setattr(trt_core, "require_tensorrt", lambda: fake)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    loaded = []
    runtime = fake.Runtime
    monkeypatch.setattr(fake, "Runtime", lambda logger: type("R", (), {"deserialize_cuda_engine": lambda self, blob: (
        loaded.append(fake.calls[-1]) or runtime(logger).deserialize_cuda_engine(blob))})())
    for name in trt_core.ENGINES:
        (tmp_path / name).write_bytes(_plan())
    core = trt_core.TrtCore(tmp_path, device="cuda")  # "cuda" alone: the current device, pinned
    assert core.device == torch.device("cuda", 1) and core.order.device == core.device
    assert loaded == [("enter", 1)] * 3  # every engine deserialized with GPU 1 current
    assert core.order.stream.cuda_stream != 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA is not available)")
def test_real_streams_order_inputs_and_outputs_without_a_host_sync(tmp_path):
    """Inputs written late on the caller's stream are read, and outputs written late on the core's
    stream are seen, in order, with no synchronize between them."""
    fake = FakeTensorRT(device="cuda", delay_cycles=200_000_000)  # ~0.1 s of GPU spin before the engine writes
    engine = _engine(tmp_path, fake)
    order = trt_core.StreamOrder(torch.device("cuda", torch.cuda.current_device()))
    caller = torch.cuda.current_stream()
    x = torch.zeros(5, 3, device="cuda")
    torch.cuda._sleep(200_000_000)  # the caller's stream is busy ...
    x.add_(torch.arange(15, dtype=torch.float32, device="cuda").view(5, 3))  # ... then writes the input
    with order.guard() as ready:
        out = engine.run({"x": x}, x.device, ready)
    check = (out["y"] - (x + 1)).abs().max()  # queued on the caller's stream right after the call
    handles = {c[1] for c in fake.calls if c[0] == "execute"}
    assert handles == {order.stream.cuda_stream} and caller.cuda_stream not in handles
    assert check.item() == 0  # .item() syncs only now, after everything was queued
    torch.testing.assert_close(out["s"], x.sum(1, keepdim=True))
