"""Per-stage times of a segmentation call, measured without slowing it down.

On a CUDA device each stage is bracketed by two CUDA events recorded on the device's current
stream: recording costs microseconds and never waits for the GPU, so a served or measured call
keeps its host running ahead of the GPU. The events are read later: finished ones are folded in
as each stage ends (``Event.query``, which does not block), the rest when someone reads the
totals (then the host waits, outside the call). On the CPU, work is synchronous and
``time.perf_counter`` is exact.

An event pair measures the GPU's timeline between the two points: the stage's kernels, plus any
time the GPU sat idle waiting for the host inside the stage (host-side post-processing, say).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch

STAGES = ("preprocess", "vision", "text", "decoder", "postprocess")
_MAX_PENDING = 4096  # a bound for a server whose totals are never read: oldest pairs are waited for


class Timings:
    """Seconds spent per stage, summed over calls, on ``device`` (CUDA events there, else the host clock)."""

    def __init__(self, device: torch.device | str | None = None):
        self.cuda = device is not None and torch.device(device).type == "cuda"
        self.device = torch.device(device) if device is not None else None
        self._seconds: dict[str, float] = defaultdict(float)
        self._calls: dict[str, int] = defaultdict(int)
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    @contextlib.contextmanager
    def stage(self, name: str):
        """Time the block as stage ``name`` (never synchronises the GPU)."""
        if not self.cuda:
            started = time.perf_counter()
            try:
                yield
            finally:
                self._seconds[name] += time.perf_counter() - started
                self._calls[name] += 1
            return
        stream = torch.cuda.current_stream(self.device)
        start = torch.cuda.Event(enable_timing=True)
        start.record(stream)
        try:
            yield
        finally:
            end = torch.cuda.Event(enable_timing=True)
            end.record(stream)
            self._pending.append((name, start, end))
            self._calls[name] += 1
            self._fold(wait=len(self._pending) > _MAX_PENDING)

    def _fold(self, *, wait: bool) -> None:
        """Add finished event pairs to the totals; with ``wait``, wait for every pending one."""
        done = 0
        for name, start, end in self._pending:
            if wait:
                end.synchronize()
            elif not end.query():
                break  # events on one stream complete in order: the later ones are not done either
            self._seconds[name] += start.elapsed_time(end) / 1000.0
            done += 1
        del self._pending[:done]

    @property
    def seconds(self) -> dict[str, float]:
        """Total seconds per stage (waits for the GPU to finish what was recorded)."""
        self._fold(wait=True)
        return dict(self._seconds)

    @property
    def calls(self) -> dict[str, int]:
        """How many times each stage ran (no waiting)."""
        return defaultdict(int, self._calls)

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per call of each stage that ran."""
        seconds, calls = self.seconds, self._calls
        return {stage: 1000 * seconds[stage] / calls[stage] for stage in STAGES if calls.get(stage)}
