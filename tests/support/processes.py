"""Peak memory of processes a test starts: a command run to its end, or a server still running."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import psutil

POLL_S = 0.2


def run_measured(command: list[str], *, env: dict[str, str], cwd: Path,
                 timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``command`` like ``subprocess.run(capture_output=True, text=True, timeout=...)``; also return its
    peak RSS in MB, polled while it runs.

    Not the kernel's ``ru_maxrss`` for the child: a child forked from a large test process reports that
    process's peak (the high-water mark survives fork and exec).
    """
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, peak = time.monotonic() + timeout, 0
    while True:
        try:
            out, err = proc.communicate(timeout=POLL_S)
            return subprocess.CompletedProcess(command, proc.returncode, out, err), peak
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError, psutil.Error):  # it may exit between two reads
                peak = max(peak, peak_rss_mb(proc.pid))
            if time.monotonic() > deadline:
                proc.kill()
                proc.communicate()
                raise


def peak_rss_mb(pid: int) -> int:
    """The largest peak RSS (``VmHWM``) among a running process and its descendants, in MB (0 once exited)."""
    root = psutil.Process(pid)
    peaks = [0]
    for proc in [root, *root.children(recursive=True)]:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        if "VmHWM:" in status:  # a zombie (exited, not yet reaped) has no memory left to report
            peaks.append(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    return max(peaks)
