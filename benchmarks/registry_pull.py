"""Benchmark: pulling a registered version from a loopback `mlflow server` vs curl of the same bytes.

A version whose weights hold a >= 1 GB file is registered on an `mlflow server` (sqlite backend,
artifacts through its proxy, one uvicorn worker, job runner off) on 127.0.0.1. Then, interleaved,
ROUNDS times, with a `sync` before each client:

- curl: a plain HTTP GET of that file's proxy URL (`-o file`), curl's own `speed_download`;
- sam3ops pull (library): `sam3ops.registry.pull()` in this process, from resolving the alias to a
  verified, renamed DEST (every file's sha256 checked, MODEL_INFO.json written): bytes / seconds;
- mlflow's client: `HttpArtifactRepository.download_artifacts` of the same file (no verification),
  with MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=true to show what that setting does here;
- `sam3ops pull` as a command (a fresh process: interpreter and imports included), end to end.

Target: the library pull at >= 80% of curl's throughput. Appends a section to benchmarks/REPORT.md.
Run: `.venv/bin/python -m benchmarks.registry_pull` (a few minutes, ~4x FILE_BYTES of disk).
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

from benchmarks._measure import ROOT, commit_label

REPORT = ROOT / "benchmarks" / "REPORT.md"
BIN = Path(sys.executable).parent
FILE_BYTES = int(os.environ.get("SAM3OPS_BENCH_FILE_BYTES", 1_200_000_000))
ROUNDS = int(os.environ.get("SAM3OPS_BENCH_ROUNDS", 5))
NAME = "sam3-bench"


def _weights(work: Path) -> Path:
    """The tiny preset's folder with its model.safetensors replaced by FILE_BYTES of random bytes
    (nothing on the path can compress them), and a manifest that lists them."""
    from sam3ops.checkpoint.manifest import Manifest, entries_for
    from sam3ops.weights.presets import init_weights

    folder = init_weights(preset="tiny", output=work / "weights", seed=0).output
    chunk = os.urandom(64 * 1024 * 1024)
    with open(folder / "model.safetensors", "wb") as handle:
        for start in range(0, FILE_BYTES, len(chunk)):
            handle.write(chunk[: min(len(chunk), FILE_BYTES - start)])
    files = [p.name for p in folder.iterdir() if p.is_file() and p.name != "manifest.json"]
    Manifest.read(folder).with_files(entries_for(folder, files)).write(folder)
    return folder


def _register(folder: Path) -> tuple[str, str]:
    """A convert-like run holding ``folder``, registered and promoted; return (version, file URL)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from sam3ops import tracking
    from sam3ops.registry import promote, register
    from sam3ops.registry.client import client as registry_client

    client = registry_client()
    run = client.create_run(tracking.ensure_experiment("sam3-convert"),
                            tags={tracking.STAGE_TAG: "convert", "format": "fp16", "precision": "fp16",
                                  "parity": "pass", "weights_random": "true"})
    client.log_artifacts(run.info.run_id, str(folder), "weights")
    client.set_terminated(run.info.run_id, "FINISHED")
    version = register(run_id=run.info.run_id, name=NAME).version
    promote(version=version, name=NAME, allow_random=True, reason="benchmark")
    model_uri = client.get_model_version_download_uri(NAME, version)
    return version, get_artifact_repository(model_uri).artifact_uri + "/artifacts/weights/model.safetensors"


def _curl(url: str, dest: Path) -> float:
    out = subprocess.run(["curl", "-sS", "-o", str(dest), "-w", "%{speed_download}", url],
                         capture_output=True, text=True, check=True).stdout
    dest.unlink()
    return float(out) / 1e6


def _pull_library(dest: Path) -> tuple[float, float]:
    """(MB/s, seconds) of an in-process pull, resolve to verified DEST."""
    from sam3ops.registry import pull

    started = time.perf_counter()
    result = pull(dest=dest, name=NAME, alias="production")
    seconds = time.perf_counter() - started
    shutil.rmtree(dest)
    return result.bytes_fetched / 1e6 / seconds, seconds


def _mlflow_download(url: str, work: Path) -> float:
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    folder, name = url.rsplit("/", 1)
    out = work / "mlflow-dl"
    out.mkdir()
    started = time.perf_counter()
    HttpArtifactRepository(folder).download_artifacts(name, str(out))
    seconds = time.perf_counter() - started
    size = (out / name).stat().st_size
    shutil.rmtree(out)
    return size / 1e6 / seconds


def _pull_command(dest: Path, uri: str) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", MLFLOW_TRACKING_URI=uri)
    started = time.perf_counter()
    subprocess.run(["sam3ops", "pull", "--name", NAME, "--dest", str(dest)], env=env, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in dest.iterdir() if p.is_file())
    shutil.rmtree(dest)
    return size / 1e6 / seconds


def bench(work: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.support.servers import MlflowServer

    server = MlflowServer(f"sqlite:///{work / 'mlflow.db'}", work / "artifacts", log=work / "server.log").start()
    os.environ["MLFLOW_TRACKING_URI"] = server.uri
    os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] = "true"  # see the report: no effect in 3.17.2
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        started = time.perf_counter()
        version, url = _register(_weights(work))
        register_s = time.perf_counter() - started
        rounds = {"curl": [], "pull": [], "mlflow": [], "pull_command": []}
        for _ in range(ROUNDS):  # interleaved: every client sees the same page cache and load
            os.sync()
            rounds["curl"].append(_curl(url, work / "curl.bin"))
            os.sync()
            rounds["pull"].append(_pull_library(work / "dest")[0])
            os.sync()
            rounds["mlflow"].append(_mlflow_download(url, work))
            os.sync()
            rounds["pull_command"].append(_pull_command(work / "dest-cli", server.uri))
            print(json.dumps({k: round(v[-1]) for k, v in rounds.items()}), flush=True)
    finally:
        server.stop()
    median = {k: statistics.median(v) for k, v in rounds.items()}
    return {"file_bytes": FILE_BYTES, "version": version, "register_s": register_s, "median": median,
            "ratio": median["pull"] / median["curl"], "rounds": rounds}


def write_report(result: dict) -> str:
    import mlflow

    machine = (f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU")
    m, rounds = result["median"], result["rounds"]
    verdict = "met" if result["ratio"] >= 0.8 else "NOT met"
    fmt = lambda values: ", ".join(f"{v:.0f}" for v in values)  # noqa: E731
    section = f"""
## Registry pull over loopback — {dt.date.today().isoformat()}, commit {commit_label()}

Machine: {machine}; Python {platform.python_version()}, mlflow {mlflow.__version__}.
Server: `mlflow server` on 127.0.0.1 (uvicorn, 1 worker, sqlite backend, `--artifacts-destination` a
local folder, so the bytes go through the artifact proxy `mlflow-artifacts:`), job runner off.
A registered version whose weights hold a {result['file_bytes'] / 1e9:.2f} GB file of random bytes (plus
the tiny preset's ~5 MB of config and tokenizer files); median of {ROUNDS} interleaved rounds, `sync`
before each client. Registering it (download from the run, upload as a pyfunc model) took
{result['register_s']:.0f} s.

| client | MB/s |
|---|---|
| curl of the file's proxy URL (`-o file`) | {m['curl']:.0f} |
| `registry.pull()`: resolve alias -> all files fetched, sha256-checked, MODEL_INFO.json, renamed | {m['pull']:.0f} |
| mlflow's `HttpArtifactRepository.download_artifacts` of the file (no check) | {m['mlflow']:.0f} |
| `sam3ops pull` command, end to end (new process: interpreter and imports included) | {m['pull_command']:.0f} |

pull / curl = **{result['ratio']:.2f}** (target 0.80: {verdict}).
Rounds (MB/s, in order): curl {fmt(rounds['curl'])}; pull {fmt(rounds['pull'])};
mlflow {fmt(rounds['mlflow'])}; pull command {fmt(rounds['pull_command'])}.

Settings: `sam3ops pull` streams each file in one HTTP request (1 MiB `readinto` buffer, sha256
computed while writing, so the check costs no second read; Range requests only to resume).
`MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD=true` was set for all clients: in mlflow 3.17.2 it changes
nothing here (no code path reads it: `HttpArtifactRepository._multipart_download` has no caller, and
the server's presigned-URL endpoint needs a cloud artifact store). `MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE`
(default 100 MiB) only applies to the Databricks and presigned-URL repositories; mlflow's proxy
download is one stream read in 1 MiB `iter_content` chunks.
"""
    with open(REPORT, "a") as handle:
        handle.write(section)
    return section


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sam3ops-bench-pull-") as tmp:
        result = bench(Path(tmp))
    print(json.dumps(result, indent=2), flush=True)
    print(write_report(result))


if __name__ == "__main__":
    main()
