"""fp16 conversion of the full preset: peak RSS (target <= 1 GB) and wall time against a plain copy
of the same checkpoint on the same disk (target <= 2x). Appends a section to benchmarks/REPORT.md.

    python -m benchmarks.convert_cast [--source weights/sam3-full]   (made by `sam3ops init --preset full`)
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks._measure import ROOT, append_to_report, commit_label, run_with_peak_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT / "weights" / "sam3-full"))
    args = parser.parse_args()
    commit = commit_label()
    source = Path(args.source)
    checkpoint = source / "model.safetensors"
    with tempfile.TemporaryDirectory(dir=source.parent, prefix=".bench-") as tmp:
        copy_s = time.perf_counter()
        shutil.copyfile(checkpoint, Path(tmp) / "copy.safetensors")
        copy_s = time.perf_counter() - copy_s
        (Path(tmp) / "copy.safetensors").unlink()
        code = (f"import time; from pathlib import Path; from sam3ops.convert.cast import cast_weights; "
                f"t = time.perf_counter(); "
                f"cast_weights(source=Path({str(source)!r}), output=Path({str(Path(tmp) / 'fp16')!r}), "
                f"precision='fp16'); "
                f"print(time.perf_counter() - t)")
        baseline_s, baseline_rss, _, _ = run_with_peak_rss(
            [sys.executable, "-c", "import torch, safetensors, sam3ops.convert.cast"])
        process_s, cast_rss, code_exit, out = run_with_peak_rss([sys.executable, "-c", code])
        if code_exit:
            raise SystemExit(f"cast_weights failed with exit code {code_exit}")
        cast_s = float(out.split()[-1])
    section = f"""
## fp16 conversion of the full preset — {dt.date.today().isoformat()}, commit {commit}

{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU. Source
{checkpoint.stat().st_size / 1e9:.2f} GB fp32; `cast_weights` (cast tensor by tensor, then read back and
compare every tensor), in its own process.

| | seconds | peak RSS |
|---|---|---|
| `shutil.copyfile` of the checkpoint (same disk) | {copy_s:.1f} | - |
| `cast_weights(..., precision="fp16")` (the call; manifest sha256s included) | {cast_s:.1f} | {cast_rss / 1e9:.2f} GB |
| the whole process (Python start, imports, the call) | {process_s:.1f} | |
| a process importing torch and safetensors only | {baseline_s:.1f} | {baseline_rss / 1e9:.2f} GB |

Time {cast_s / copy_s:.2f}x the copy (target 2x: {'met' if cast_s <= 2 * copy_s else 'NOT met'}); peak RSS
{cast_rss / 1e9:.2f} GB (target 1 GB: {'met' if cast_rss <= 1e9 else 'NOT met'}).
"""
    print(section)
    append_to_report(section)


if __name__ == "__main__":
    main()
