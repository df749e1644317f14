"""A plan's JSON as a benchmarks/REPORT.md section: every step's table, the targets of issue 13 checked.

    python -m benchmarks.gpu_plan_report plan.json --commit abc1234 [--report]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from benchmarks._measure import append_to_report
from sam3ops.bench.results import PlanResults, read_any

# (what, step, batch, limit in ms per image at that batch; None: compare with Meta's runtime)
TARGETS = (
    ("1 image x 1 prompt, bf16", "best_p1", 1, 15.0),
    ("batch 8 x 1 prompt, bf16, per image", "best_p1", 8, 8.0),
    ("1 image x 8 prompts, bf16", "best_p8", 1, 25.0),
)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def step_rows(plan: PlanResults) -> list[str]:
    lines = ["| step | configuration | prompts | batch | p50 ms | p90 ms | p99 ms | ms/image | images/s "
             "| VRAM torch MB | VRAM NVML MB | mask IoU vs fp32 | attention | status |", "|" + "---|" * 14]
    for step in plan.steps:
        if step.results is None and step.status == "ok":
            continue  # cold start, profile: their own lines below
        if step.results is None:
            lines.append(f"| {step.name} | | | | | | | | | | | | | {step.status}: {step.error or ''} |")
            continue
        prompts = step.results.config["prompts_per_image"]
        for config in step.results.configs:
            iou = config.parity["mask_iou_mean"] if config.parity else None
            attention = ",".join(sorted(set((config.attention or {}).values()))) or "-"
            for b in config.batches:
                lat = b.latency
                lines.append(f"| {step.name} | {config.name} | {prompts} | {b.batch} | {_fmt(lat and lat.p50_ms)} "
                             f"| {_fmt(lat and lat.p90_ms)} | {_fmt(lat and lat.p99_ms)} | {_fmt(b.ms_per_image)} "
                             f"| {_fmt(b.throughput_img_s)} | {_fmt(b.vram_peak_mb)} | {_fmt(b.vram_nvml_mb)} "
                             f"| {'-' if iou is None else f'{iou:.4f}'} | {attention} | {b.status} |")
    return lines


def best(plan: PlanResults, prompts: int, batch: int, runtimes=("torch", "torch-compile", "aoti", "onnx",
                                                                   "tensorrt")) -> tuple | None:
    """(ms per image, step, configuration, mask IoU) of the fastest bf16 configuration for a workload."""
    found = None
    for step in plan.steps:
        if not step.results or step.results.config["prompts_per_image"] != prompts:
            continue
        for config in step.results.configs:
            if config.runtime not in runtimes or config.precision != "bf16":
                continue
            for b in config.batches:
                if b.batch == batch and b.latency and (found is None or b.ms_per_image < found[0]):
                    found = (b.ms_per_image, step.name, config.name, (config.parity or {}).get("mask_iou_mean"))
    return found


def section(plan: PlanResults, commit: str) -> str:
    env = plan.environment
    lines = [f"## GPU plan on {env.get('gpu_name')} — {dt.date.today().isoformat()}, commit {commit}", "",
             f"torch {env.get('torch_version')}, transformers {env.get('transformers_version')}, CUDA "
             f"{env.get('cuda_version')}, driver {env.get('driver_version', '-')}; whole plan {plan.total_s} s "
             f"(weights drawn in {env.get('weights_s')} s). Random weights: latency and memory are real, "
             "masks mean nothing; accuracy is agreement with fp32 on the same photos and prompts.", ""]
    lines += ["| target | limit | measured | where | mask IoU vs fp32 | met |", "|---|---|---|---|---|---|"]
    for what, kind, batch, limit in TARGETS:
        found = best(plan, 8 if kind == "best_p8" else 1, batch)
        ms = found[0] if found else None
        lines.append(f"| {what} | {limit} ms | {_fmt(ms)} | {found[1] + ' ' + found[2] if found else '-'} "
                     f"| {f'{found[3]:.4f}' if found and found[3] is not None else '-'} "
                     f"| {'yes' if ms is not None and ms <= limit else 'NO'} |")
    ours, meta = best(plan, 1, 1), best(plan, 1, 1, runtimes=("meta",))
    if ours and meta:
        lines.append(f"| fastest vs Meta's package, 1 x 1 | 2x | {meta[0] / ours[0]:.2f}x | {ours[2]} vs {meta[2]} "
                     f"| | {'yes' if meta[0] / ours[0] >= 2 else 'NO'} |")
    else:
        lines.append("| fastest vs Meta's package, 1 x 1 | 2x | - | Meta's runtime did not run | | NO |")
    lines += ["", *step_rows(plan), ""]
    extras = {s.name: s.extra for s in plan.steps if s.extra}
    if "cold_start" in extras:
        c = extras["cold_start"]
        lines.append(f"Cold start (fresh process, bf16): import {_fmt(c.get('import_s'))} s, load "
                     f"{_fmt(c.get('load_s'))} s, first call {_fmt(c.get('first_call_s'))} s, second "
                     f"{_fmt(c.get('second_call_s'))} s; process start to first result "
                     f"{_fmt(c.get('to_first_result_s'))} s.")
    if "profile" in extras:
        p = extras["profile"]
        lines.append(f"Profile of {p.get('step')} ({p.get('precision')}, {p.get('options')}): "
                     f"{_fmt(p.get('wall_ms_per_call'))} ms per call, device busy "
                     f"{_fmt(100 * p['device_busy_share']) if p.get('device_busy_share') else '-'} %; device time by "
                     f"kind {', '.join(f'{k} {100 * v:.0f} %' for k, v in p.get('device_share_by_kind', {}).items())}.")
    return "\n".join(lines) + "\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan")
    parser.add_argument("--commit", required=True, help="the commit the plan ran (the host has no git)")
    parser.add_argument("--report", action="store_true", help="append the section to benchmarks/REPORT.md")
    args = parser.parse_args()
    plan = read_any(Path(args.plan))
    if not isinstance(plan, PlanResults):
        raise SystemExit(f"{args.plan} is a single benchmark, not a plan")
    text = section(plan, args.commit)
    print(text)
    if args.report:
        append_to_report(text)


if __name__ == "__main__":
    main()
