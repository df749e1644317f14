"""Latency: timing one call honestly, and the statistics of many.

On a CUDA device a call is timed with CUDA events recorded on the current stream (the GPU's own
clock, no host overhead in the number) after a synchronisation, then synchronised again before the
events are read; on the CPU with ``time.perf_counter``. :func:`measure` runs warm-up calls first
(discarded; the first one is returned apart, since it holds compilation and lazy initialisation),
then measured calls until both a minimum count and a minimum duration are reached.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class LatencyStats:
    """Statistics of measured call latencies, in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    total_s: float

    @classmethod
    def from_seconds(cls, seconds: list[float]) -> LatencyStats:
        """Percentiles by linear interpolation between closest ranks (numpy's default)."""
        if not seconds:
            raise ValueError("no measured calls")
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(count=len(ms), p50_ms=float(p50), p90_ms=float(p90), p95_ms=float(p95), p99_ms=float(p99),
                   mean_ms=float(ms.mean()), std_ms=statistics.stdev(ms.tolist()) if len(ms) > 1 else 0.0,
                   min_ms=float(ms.min()), max_ms=float(ms.max()), total_s=float(ms.sum() / 1000.0))


class Timer:
    """Times calls on one device: CUDA events on a GPU, ``perf_counter`` on the CPU.

    Args:
        device: a torch device (or its string); anything but CUDA uses the host clock.
        clock: the host clock (tests pass a fake one).
    """

    def __init__(self, device="cpu", *, clock: Callable[[], float] = time.perf_counter):
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        self.clock = clock

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], object]) -> float:
        """Seconds ``fn()`` took, with the device idle before and finished after."""
        self._sync()
        if self.cuda:
            import torch

            # Record on the measured device's stream (not the current device's, for cuda:N).
            stream = torch.cuda.current_stream(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            fn()
            end.record(stream)
            end.synchronize()
            self._sync()
            return start.elapsed_time(end) / 1000.0
        started = self.clock()
        fn()
        return self.clock() - started


@dataclass
class Measurement:
    """What :func:`measure` saw: the first warm-up call apart, then the measured calls."""

    first_call_s: float | None
    warmup_s: list[float]
    seconds: list[float]

    @property
    def stats(self) -> LatencyStats:
        return LatencyStats.from_seconds(self.seconds)


def measure(call: Callable[[int], object], *, timer: Timer, warmup: int, iterations: int,
            min_duration_s: float = 0.0, max_iterations: int = 100_000,
            measuring: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> Measurement:
    """Warm up, then time ``call(i)`` until ``iterations`` calls and ``min_duration_s`` are both done.

    Args:
        call: one unit of work; ``i`` counts every call (warm-up included) so callers can rotate
            inputs and never time the same cached buffer twice in a row.
        timer: how to time a call (device-aware).
        warmup: calls run first and discarded.
        iterations, min_duration_s: the stopping rule (both must be met).
        max_iterations: a hard cap for a very fast call with a long minimum duration.
        measuring: a context manager factory entered after the warm-up and around the measured
            calls only (memory and power probes, counters to reset).
    """
    warm = [timer.time(lambda i=i: call(i)) for i in range(warmup)]
    seconds: list[float] = []
    total, index = 0.0, warmup
    with measuring():
        while len(seconds) < max_iterations and (len(seconds) < iterations or total < min_duration_s):
            seconds.append(timer.time(lambda i=index: call(i)))
            total += seconds[-1]
            index += 1
    return Measurement(first_call_s=warm[0] if warm else None, warmup_s=warm, seconds=seconds)
