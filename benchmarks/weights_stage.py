"""Benchmarks of the weights stage; appends its numbers to benchmarks/REPORT.md.

1. Download throughput over loopback: a >= 1 GB file from the fake hub (its own process), fetched
   by `sam3ops download` and by `curl` from the same URL, 3 rounds each, medians compared
   (target: sam3ops at least 80% of curl).
2. Peak RSS of `sam3ops init --preset full` against the size of the checkpoint it writes
   (target: at most 1.5x).

Run with `make perf` (several GB of disk under a temp folder, a few minutes).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks._measure import ROOT, commit_label, run_with_peak_rss

REPORT = ROOT / "benchmarks" / "REPORT.md"
BIN = Path(sys.executable).parent
FILE_BYTES = int(os.environ.get("SAM3OPS_BENCH_FILE_BYTES", 1_200_000_000))
# This VM's loopback + disk throughput swings 2-3x between identical runs: many interleaved
# rounds, a sync before each, and medians.
ROUNDS = int(os.environ.get("SAM3OPS_BENCH_ROUNDS", 7))


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.update(extra)
    return env


def _make_repo(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "sam3"}))
    chunk = os.urandom(64 * 1024 * 1024)  # random bytes: nothing on the path can compress them
    with open(folder / "model.safetensors", "wb") as handle:
        for start in range(0, FILE_BYTES, len(chunk)):
            handle.write(chunk[: min(len(chunk), FILE_BYTES - start)])


def _start_hub(folder: Path) -> tuple[subprocess.Popen, str]:
    hub = subprocess.Popen([sys.executable, "-m", "tests.support.fakehub", "--repo", f"bench/sam3={folder}"],
                           cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return hub, hub.stdout.readline().strip()


def _curl_mb_s(url: str, dest: Path) -> float:
    out = subprocess.run(["curl", "-sS", "-o", str(dest), "-w", "%{speed_download}", url],
                         capture_output=True, text=True, check=True).stdout
    dest.unlink()
    return float(out) / 1e6


def _sam3ops_mb_s(url: str, dest: Path, tracking: str) -> tuple[float, float]:
    """Transfer MB/s as the run logged it, and end-to-end MB/s (process start to verified manifest)."""
    started = time.perf_counter()
    subprocess.run(["sam3ops", "download", "--repo-id", "bench/sam3", "--output", str(dest)],
                   env=_env(HF_ENDPOINT=url, MLFLOW_TRACKING_URI=tracking), check=True, capture_output=True)
    wall = time.perf_counter() - started
    import mlflow

    mlflow.set_tracking_uri(tracking)
    run = mlflow.search_runs(experiment_names=["sam3-download"], output_format="list",
                             order_by=["start_time DESC"], max_results=1)[0]
    shutil.rmtree(dest)
    return run.data.metrics["mb_per_s"], FILE_BYTES / 1e6 / wall


def bench_download(work: Path) -> dict:
    """Median MB/s of curl and of sam3ops for the same file from the same server.

    sam3ops's number is the run's own `mb_per_s` (bytes over the time spent in transfers; the
    sha256 check that follows is timed in the end-to-end figure instead).
    """
    repo = work / "repo"
    _make_repo(repo)
    hub, url = _start_hub(repo)
    try:
        file_url = f"{url}/bench/sam3/resolve/main/model.safetensors"
        tracking = f"sqlite:///{work / 'mlflow.db'}"
        curl, ours, ours_e2e = [], [], []
        for _ in range(ROUNDS):  # interleaved, so both see the same page-cache and load conditions
            os.sync()
            curl.append(_curl_mb_s(file_url, work / "curl.bin"))
            os.sync()
            transfer, end_to_end = _sam3ops_mb_s(url, work / "out", tracking)
            ours.append(transfer)
            ours_e2e.append(end_to_end)
    finally:
        hub.terminate()
        hub.wait()
    return {
        "file_bytes": FILE_BYTES,
        "curl_mb_s": statistics.median(curl),
        "sam3ops_mb_s": statistics.median(ours),
        "sam3ops_end_to_end_mb_s": statistics.median(ours_e2e),
        "ratio": statistics.median(ours) / statistics.median(curl),
        "rounds": {"curl": curl, "sam3ops": ours, "sam3ops_end_to_end": ours_e2e},
    }


def bench_init_full(work: Path) -> dict:
    """Peak RSS of `sam3ops init --preset full` (process tree, polled every 20 ms) vs checkpoint size."""
    out = work / "full"
    seconds, peak, returncode, _ = run_with_peak_rss(
        ["sam3ops", "init", "--preset", "full", "--output", str(out)],
        env=_env(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'init.db'}"))
    if returncode != 0:
        raise SystemExit(f"init --preset full failed with exit code {returncode}")
    checkpoint = (out / "model.safetensors").stat().st_size
    return {"seconds": seconds, "peak_rss_bytes": peak, "checkpoint_bytes": checkpoint,
            "ratio": peak / checkpoint}


def _machine() -> str:
    memory_gib = psutil.virtual_memory().total / 2**30
    return f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, {memory_gib:.0f} GiB RAM, no GPU"


def write_report(download: dict, init: dict) -> str:
    """Append a dated section to benchmarks/REPORT.md; return it."""
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    section = f"""
## Weights stage — {dt.date.today().isoformat()}, commit {commit_label()}

Machine: {_machine()}; Python {platform.python_version()}.

### Download over loopback ({download['file_bytes'] / 1e9:.2f} GB file, fake hub in its own process, \
median of {ROUNDS})

| client | MB/s |
|---|---|
| curl (`-o file`) | {download['curl_mb_s']:.0f} |
| sam3ops download, transfer (the run's `mb_per_s`) | {download['sam3ops_mb_s']:.0f} |
| sam3ops download, end to end (process start to verified manifest, sha256 included) | \
{download['sam3ops_end_to_end_mb_s']:.0f} |

sam3ops / curl = **{download['ratio']:.2f}** (target 0.80: {verdict(download['ratio'] >= 0.8)}).
Rounds (MB/s, in order, each client a fresh process, `sync` before each): curl
{', '.join(f'{v:.0f}' for v in download['rounds']['curl'])}; sam3ops
{', '.join(f'{v:.0f}' for v in download['rounds']['sam3ops'])}.

### `sam3ops init --preset full`

Peak RSS {init['peak_rss_bytes'] / 1e9:.2f} GB for a {init['checkpoint_bytes'] / 1e9:.2f} GB checkpoint:
**{init['ratio']:.2f}x** (target 1.5x: {verdict(init['ratio'] <= 1.5)}), {init['seconds']:.0f} s.
"""
    if not REPORT.exists():
        REPORT.write_text("# sam3ops benchmark report\n\n"
                          "Each section: what was measured, on which machine, at which commit.\n")
    with open(REPORT, "a") as handle:
        handle.write(section)
    return section


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sam3ops-bench-") as tmp:
        work = Path(tmp)
        download = bench_download(work)
        print(json.dumps(download, indent=2), flush=True)
        init = bench_init_full(work)
        print(json.dumps(init, indent=2), flush=True)
    print(write_report(download, init))


if __name__ == "__main__":
    main()
