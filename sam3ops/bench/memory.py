"""Memory and power probes: host peak RSS, torch's CUDA peaks, and NVML's view of the GPU.

Used as context managers around one batch size's measured calls:

- :class:`HostPeak` resets the kernel's high-water mark of this process (``/proc/self/clear_refs``)
  and reads ``VmHWM`` after, so each batch size gets its own peak, not the process lifetime's.
- :class:`GpuProbe` resets torch's peak counters and, where NVML is available, samples this
  process's GPU memory, utilisation and power in a thread, and reads the energy counter before and
  after. NVML numbers its devices differently from torch under ``CUDA_VISIBLE_DEVICES``; the probe
  finds torch's device in NVML by its UUID.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import threading
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _vm_hwm_mb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


class HostPeak:
    """Peak resident memory of this process inside the ``with`` block, in MB.

    On Linux the peak is reset on entry; elsewhere (or where the reset is refused) it is the
    process lifetime's peak, and ``reset`` says so.
    """

    def __init__(self):
        self.peak_mb: float | None = None
        self.reset = False

    def __enter__(self) -> HostPeak:
        try:
            _CLEAR_REFS.write_text("5")  # 5: reset the peak RSS to the current RSS (Linux >= 4.0)
            self.reset = True
        except OSError:
            self.reset = False
        return self

    def __exit__(self, *exc) -> None:
        peak = _vm_hwm_mb()
        # ru_maxrss is KiB on Linux, bytes on macOS: only a fallback.
        self.peak_mb = peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _nvml_handle(device_index: int):
    """The NVML handle of torch's CUDA device ``device_index`` (matched by UUID), or None."""
    try:
        import pynvml
        import torch

        pynvml.nvmlInit()
        uuid = str(torch.cuda.get_device_properties(device_index).uuid)
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception as exc:  # no driver library, no permission, old torch: NVML numbers are optional
        log.info("NVML unavailable (%s): GPU memory, power and energy come from torch only", exc)
        return None


@dataclass
class GpuReading:
    """What one :class:`GpuProbe` block saw on the GPU."""

    allocated_peak_mb: float | None = 0.0  # None where the runtime allocates outside torch
    reserved_peak_mb: float | None = 0.0
    nvml_process_peak_mb: float | None = None
    utilization_mean_pct: float | None = None
    power_mean_w: float | None = None
    energy_j: float | None = None
    samples: int = 0
    extra: dict = field(default_factory=dict)


class NvmlSampler:
    """NVML counters sampled every ``interval_s`` on a thread inside the ``with`` block: this process's
    GPU memory (else the device's), utilization, power, and the energy counter at both ends."""

    def __init__(self, handle, *, interval_s: float = 0.02):
        self.handle, self.interval_s = handle, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._memory: list[float] = []
        self._device_used: list[float] = []
        self._pid_mismatch_logged = False
        self._util: list[float] = []
        self._power: list[float] = []
        self._energy_start: float | None = None
        self._energy_end: float | None = None

    def __enter__(self) -> NvmlSampler:
        self._energy_start = self._energy_mj()
        self._thread = threading.Thread(target=self._sample, name="nvml-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._energy_end = self._energy_mj()

    def _sample(self) -> None:
        import pynvml

        pid = os.getpid()
        while not self._stop.is_set():
            # Each counter on its own: a GPU or container that lacks one still gives the others.
            with contextlib.suppress(Exception):
                processes = pynvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
                mine = [p.usedGpuMemory for p in processes if p.pid == pid and p.usedGpuMemory]
                if mine:
                    self._memory.append(mine[0] / 2**20)
                elif not self._pid_mismatch_logged:
                    # In a container NVML reports host PIDs: fall back to the device's used memory.
                    self._pid_mismatch_logged = True
                    log.info("NVML does not list this process (PID namespace?): "
                             "vram_nvml_mb is the device's used memory")
            with contextlib.suppress(Exception):
                self._device_used.append(pynvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20)
            with contextlib.suppress(Exception):
                self._util.append(pynvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            with contextlib.suppress(Exception):
                self._power.append(pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)  # mW
            self._stop.wait(self.interval_s)

    def _energy_mj(self) -> float | None:
        try:
            import pynvml

            return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:
            return None

    def fold_into(self, reading: GpuReading) -> GpuReading:
        """Write the samples' peak memory, means and energy into ``reading``; return it."""
        if self._energy_start is not None and self._energy_end is not None:
            reading.energy_j = (self._energy_end - self._energy_start) / 1000.0
        used = self._memory or self._device_used  # this process, else the whole device (see _sample)
        reading.nvml_process_peak_mb = max(used) if used else None
        reading.extra["nvml_memory_source"] = "process" if self._memory else "device" if used else "none"
        reading.utilization_mean_pct = sum(self._util) / len(self._util) if self._util else None
        reading.power_mean_w = sum(self._power) / len(self._power) if self._power else None
        return reading


class GpuProbe:
    """torch's CUDA memory peaks plus NVML sampling (every ``interval_s``) for one block."""

    def __init__(self, device: str, *, interval_s: float = 0.02):
        import torch

        self.device = torch.device(device)
        self.index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        handle = _nvml_handle(self.index)
        self.sampler = NvmlSampler(handle, interval_s=interval_s) if handle is not None else None
        self.reading = GpuReading()

    def __enter__(self) -> GpuProbe:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        if self.sampler is not None:
            self.sampler.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        self.reading.allocated_peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.reading.reserved_peak_mb = torch.cuda.max_memory_reserved(self.device) / 2**20
        if self.sampler is not None:
            self.sampler.__exit__(*exc)
            self.sampler.fold_into(self.reading)
