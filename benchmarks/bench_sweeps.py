"""The benchmark stage's own figures, for benchmarks/REPORT.md.

    python -m benchmarks.bench_sweeps cpu                 # this machine: tiny default sweep, full preset batch 1
    python -m benchmarks.bench_sweeps gpu --proc-dir weights/sam3-full-proc --photos samples --out $OUT
    python -m benchmarks.bench_sweeps report DIR --note "..."  # JSON from a GPU host -> a report section

``gpu`` is the one prepared script for a lent GPU host (torch and transformers, no mlflow, no
scikit-image, no network): it writes random full-preset weights from the carried config and
processor files, then measures torch fp32/bf16/fp16 at batch 1/4/8/16 (one prompt per image, the
figure Meta quotes), bf16 with 4 prompts per image, and torch.compile bf16, each as a results JSON
that ``sam3ops bench --from-json`` logs to MLflow later.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from pathlib import Path

from benchmarks._gpu_host import write_random_full
from benchmarks._measure import append_to_report, commit_label
from sam3ops.bench.config import BenchConfig
from sam3ops.bench.results import BenchResults
from sam3ops.bench.runner import run_benchmark

GPU_PLAN = (  # (name, config overrides): about 5 minutes on an H100/H200 (estimate; cold compile included)
    ("torch_fp32_bf16_fp16_p1", dict(precisions="fp32,bf16,fp16", batches="1,4,8,16", prompts_per_image=1)),
    ("torch_bf16_p4", dict(precisions="bf16", batches="1,8", prompts_per_image=4)),
    ("torch_compile_bf16_p1", dict(runtime="torch-compile", precisions="bf16", batches="1,8", prompts_per_image=1)),
)


def gpu(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    weights = write_random_full(Path(args.proc_dir), Path(args.weights), device=args.device)
    print(f"weights ready in {time.perf_counter() - started:.0f} s", flush=True)
    for name, overrides in GPU_PLAN[: args.plans]:
        try:
            config = BenchConfig(weights=str(weights), device=args.device, image_size=1008, warmup=3,
                                 iterations=args.iterations, photos=args.photos, **overrides)
            results = run_benchmark(config)
            results.write(out / f"{name}.json")
            for row in results.rows():
                print(name, {k: row.get(k) for k in ("runtime", "precision", "batch", "status", "ms_per_image",
                                                      "latency_p50_ms", "vram_peak_mb", "parity_mask_iou")}, flush=True)
        except Exception:  # one failed plan must not lose the others' numbers
            (out / f"{name}.error.txt").write_text(traceback.format_exc())
            print(f"{name} FAILED:\n{traceback.format_exc()[-1500:]}", flush=True)
        print(f"{name} done at {time.perf_counter() - started:.0f} s", flush=True)


def section(results: list[BenchResults], title: str, note: str = "") -> str:
    """A markdown section: one table row per (configuration, batch size)."""
    env = results[0].environment
    lines = [f"## {title} — {dt.date.today().isoformat()}, commit {commit_label()}", "",
             f"Machine: {env.get('gpu_name')} ({env.get('cpu')}, {env.get('cpu_count')} torch threads); torch "
             f"{env.get('torch_version')}, CUDA {env.get('cuda_version')}, driver {env.get('driver_version', '-')}. "
             f"Weights: {'RANDOM ' if results[0].weights.get('random') else ''}{results[0].weights.get('preset') or ''}"
             f" ({results[0].weights.get('commit')}).", ""]
    if note:
        lines += [note, ""]
    lines += ["| runtime | precision | prompts/img | batch | p50 ms | p99 ms | ms/image | images/s | vision ms "
              "| text ms | decoder ms | pre+post ms | peak VRAM MB | peak RSS MB | mask IoU vs fp32 | load s "
              "| first call s |", "|" + "---|" * 17]
    fmt = lambda v: "-" if v is None else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"  # noqa: E731
    for result in results:
        for config in result.configs:
            iou = config.parity["mask_iou_mean"] if config.parity else None
            for b in config.batches:
                if b.status != "ok":
                    lines.append(f"| {config.runtime} | {config.precision} | {result.config['prompts_per_image']} "
                                 f"| {b.batch} | {b.status} |" + " |" * 12)
                    continue
                s = b.stages_ms
                lines.append(
                    f"| {config.runtime} | {config.precision} | {result.config['prompts_per_image']} | {b.batch} "
                    f"| {fmt(b.latency.p50_ms)} | {fmt(b.latency.p99_ms)} | {fmt(b.ms_per_image)} "
                    f"| {fmt(b.throughput_img_s)} | {fmt(s.get('vision'))} | {fmt(s.get('text'))} "
                    f"| {fmt(s.get('decoder'))} | {fmt(s.get('preprocess', 0) + s.get('postprocess', 0))} "
                    f"| {fmt(b.vram_peak_mb)} | {fmt(b.host_rss_peak_mb)} | {'-' if iou is None else f'{iou:.4f}'} "
                    f"| {fmt(config.load_s)} | {fmt(config.first_call_s)} |")
    return "\n".join(lines) + "\n\n"


def cpu(args) -> None:
    from sam3ops.weights.presets import init_weights

    tiny = init_weights(preset="tiny", output=Path(args.workdir) / "sam3-tiny", seed=0).output
    started = time.perf_counter()
    sweep = run_benchmark(BenchConfig(weights=str(tiny), precisions="fp32,bf16"))  # the CLI's default sweep
    sweep_s = time.perf_counter() - started
    text = section([sweep], "Benchmark stage: tiny preset, default sweep, CPU",
                   f"`sam3ops bench --weights <tiny> --precision fp32,bf16` with every other setting at its default "
                   f"(batch 1/4/8/16, 4 prompts per image, 1008 px photos, warm-up 2, 10 calls): whole sweep, both "
                   f"precisions, fp32 reference for the bf16 accuracy included: **{sweep_s:.0f} s** (target < 60 s).")
    if args.full:
        full = init_weights(preset="full", output=Path(args.workdir) / "sam3-full", seed=0).output
        started = time.perf_counter()
        result = run_benchmark(BenchConfig(weights=str(full), precisions="fp32", batches="1",
                                           prompts_per_image=1, warmup=0, iterations=2))
        text += section([result], "Benchmark stage: full preset, CPU (slow, but the same code path)",
                        f"fp32, batch 1, 1 prompt, no warm-up beyond the timed first call, 2 calls; "
                        f"{time.perf_counter() - started:.0f} s in all.")
    print(text)
    append_to_report(text)


def report(args) -> None:
    paths = sorted(Path(args.folder).glob("*.json"))
    results = [BenchResults.read(p) for p in paths if not p.name.startswith("gpu")]
    text = section(results, f"Benchmark stage on {results[0].environment.get('gpu_name')}", args.note)
    print(text)
    append_to_report(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("cpu")
    c.add_argument("--workdir", default="/tmp/sam3ops-bench")
    c.add_argument("--full", action="store_true", help="also the full preset at batch 1 (minutes)")
    g = sub.add_parser("gpu")
    g.add_argument("--proc-dir", default="weights/sam3-full-proc")
    g.add_argument("--weights", default="/tmp/sam3-full")
    g.add_argument("--photos", default=None, help="folder of photos (the GPU host has no scikit-image)")
    g.add_argument("--device", default="cuda")
    g.add_argument("--iterations", type=int, default=10)
    g.add_argument("--plans", type=int, default=len(GPU_PLAN))
    g.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("folder")
    r.add_argument("--note", default="")
    args = parser.parse_args()
    {"cpu": cpu, "gpu": gpu, "report": report}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
