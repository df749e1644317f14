"""The stage split: CUDA events recorded on the stream, never a host synchronisation inside a call."""

from __future__ import annotations

import pytest
import torch

from sam3ops.inference import Segmenter
from sam3ops.inference import timing as timing_module
from sam3ops.inference.timing import Timings
from sam3ops.predict.samples import sample_image


class FakeEvent:
    """A CUDA event on a fake GPU clock: done once the test says the GPU got that far."""

    clock = {"now_ms": 0.0, "done_up_to": 0}
    made: list[FakeEvent] = []

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.index, self.at_ms, self.waited = len(FakeEvent.made), None, False
        FakeEvent.made.append(self)

    def record(self, stream):
        assert stream == "stream"
        self.at_ms = FakeEvent.clock["now_ms"]

    def query(self):
        return self.index < FakeEvent.clock["done_up_to"]

    def synchronize(self):
        self.waited = True

    def elapsed_time(self, end):
        return end.at_ms - self.at_ms


@pytest.fixture
def fake_cuda(monkeypatch):
    FakeEvent.made.clear()
    FakeEvent.clock.update(now_ms=0.0, done_up_to=0)
    monkeypatch.setattr(timing_module.torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(timing_module.torch.cuda, "current_stream", lambda device=None: "stream")
    monkeypatch.setattr(timing_module.torch.cuda, "synchronize",
                        lambda *a: pytest.fail("the stage split synchronised the GPU"))
    return FakeEvent.clock


def test_cuda_stages_record_events_and_wait_only_when_read(fake_cuda):
    timings = Timings("cuda")
    for stage, ms in (("vision", 20.0), ("decoder", 5.0), ("vision", 30.0)):
        with timings.stage(stage):
            fake_cuda["now_ms"] += ms
    assert timings.calls == {"vision": 2, "decoder": 1}
    assert not any(e.waited for e in FakeEvent.made)  # recording never waits for the GPU
    fake_cuda["done_up_to"] = 2  # the GPU finished the first stage: folded in without waiting
    with timings.stage("text"):
        fake_cuda["now_ms"] += 1.0
    assert timings._seconds == {"vision": pytest.approx(0.020)} and len(timings._pending) == 3
    assert not any(e.waited for e in FakeEvent.made)
    # Reading the totals (after the calls) waits for what is left.
    assert timings.seconds == {"vision": pytest.approx(0.050), "decoder": pytest.approx(0.005),
                               "text": pytest.approx(0.001)}
    assert timings.mean_ms() == {"vision": pytest.approx(25.0), "text": pytest.approx(1.0),
                                 "decoder": pytest.approx(5.0)}
    assert timings._pending == []


def test_a_server_that_never_reads_keeps_a_bounded_list(fake_cuda, monkeypatch):
    monkeypatch.setattr(timing_module, "_MAX_PENDING", 3)
    timings = Timings("cuda")
    for _ in range(5):
        with timings.stage("vision"):
            fake_cuda["now_ms"] += 1.0
    assert len(timings._pending) <= 3 and timings.calls["vision"] == 5
    assert timings.seconds["vision"] == pytest.approx(0.005)


def test_cpu_stages_use_the_host_clock(tiny_weights):
    seg = Segmenter.from_dir(tiny_weights)
    assert not seg.timings.cuda
    seg.segment([sample_image("chelsea")], ["cat", "dog"])
    ms = seg.timings.mean_ms()
    assert set(ms) == {"preprocess", "vision", "text", "decoder", "postprocess"} and all(v > 0 for v in ms.values())
    seg.reset_timings()
    assert seg.timings.mean_ms() == {}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_a_cuda_call_never_synchronises(tiny_weights, monkeypatch):
    seg = Segmenter.from_dir(tiny_weights, device="cuda")
    seg.segment([sample_image("chelsea")], ["cat"])  # warm: lazy initialisation may synchronise
    calls = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append(a))
    seg.reset_timings()
    seg.segment([sample_image("chelsea")], ["dog"])
    assert calls == []
    real()
    assert seg.timings.mean_ms()["vision"] > 0
