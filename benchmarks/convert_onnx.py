"""ONNX export of the full preset: wall time, peak RSS (target <= 8 GB) and graph sizes.
Appends a section to benchmarks/REPORT.md.

    python -m benchmarks.convert_onnx [--source weights/sam3-full]   (made by `sam3ops init --preset full`)
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks._measure import ROOT, append_to_report, commit_label, run_with_peak_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT / "weights" / "sam3-full"))
    args = parser.parse_args()
    commit = commit_label()
    source = Path(args.source)
    tmp = Path(tempfile.mkdtemp(dir=source.parent, prefix=".bench-onnx-"))
    try:
        code = ("from pathlib import Path; from sam3ops.convert.onnx.export import export_onnx; "
                f"export_onnx(source=Path({str(source)!r}), output=Path({str(tmp / 'onnx')!r}))")
        seconds, peak, returncode, _ = run_with_peak_rss([sys.executable, "-c", code])
        ok = returncode == 0
        sizes = {p.name: p.stat().st_size for p in (tmp / "onnx").glob("*.onnx*")} if ok else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    graphs = ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in sorted(sizes.items()))
    section = f"""
## ONNX export of the full preset — {dt.date.today().isoformat()}, commit {commit}

{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU; the three
graphs (vision, text, decoder) as `export_onnx` makes them, checker and shape inference included.

{'Exit code ' + str(returncode) + ': the export FAILED. ' if not ok else ''}Wall {seconds:.0f} s, peak RSS \
{peak / 1e9:.2f} GB (target 8 GB: {'met' if ok and peak <= 8e9 else 'NOT met'}). {graphs}
"""
    print(section)
    append_to_report(section)


if __name__ == "__main__":
    main()
