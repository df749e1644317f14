"""What the benchmark scripts share: the commit measured, a command's time and peak RSS, and the report."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benchmarks" / "REPORT.md"


def append_to_report(section: str) -> None:
    """Append ``section`` (markdown, ending in a blank line) to benchmarks/REPORT.md."""
    with open(REPORT, "a") as handle:
        handle.write(section)


def commit_label() -> str:
    """The short commit of this checkout, ``+dirty`` when tracked files have changes."""
    from sam3ops.tracking.sysinfo import git_commit

    commit = git_commit(ROOT)
    if not commit:
        return "unknown (no git here)"
    return commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")


def run_with_peak_rss(command: list[str], *, env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """Run ``command``; return wall seconds, peak RSS of its process tree (polled every 20 ms),
    exit code and stdout. Its stderr is discarded unless it fails (then it ends the benchmark)."""
    started = time.perf_counter()
    proc = psutil.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    if proc.returncode:
        print(err.decode()[-2000:])
    return time.perf_counter() - started, peak, proc.returncode, out.decode()
