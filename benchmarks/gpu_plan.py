"""The prepared GPU plan: every figure issue 13 asks of an H200 in one run of at most 8 minutes.

    python -m benchmarks.gpu_plan --bundle weights/gpu-bundle --out $OUT            # on the GPU host
    python -m benchmarks.gpu_plan --bundle /tmp/b --out /tmp/o --device cpu --dry   # the CPU dry run (tiny)

(``benchmarks/gpu_plan.sh`` builds the bundle, installs its wheels on the host and runs this.)
Random weights of the bundle's preset are drawn from its ``config.json`` on the device, then the
steps of :data:`STEPS` run in order, each a benchmark of the benchmark stage (``run_benchmark``:
CUDA events, warm-up apart, p50/p90/p99, ms per image, images/s, VRAM by torch and NVML, accuracy
against fp32 on the same photos and prompts) or a measurement of its own (cold start, profile).
After every step ``plan.json`` is rewritten, so a timeout keeps what was done; a step that would
start past the time budget is recorded as skipped, one that fails as its one-line error, and the
plan goes on. ``sam3ops bench --from-json plan.json`` logs it: a run per step.

Each optimisation of the torch runtime is a step with it on, beside a step without it on the same
workload (``base_*``): whether one is kept is decided from these numbers, not here. The AOTInductor
format and Meta's runtime are steps keyed by name (:data:`PREPARE`): they run once those branches
provide the functions named there, and say "unavailable" until then.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sam3ops.bench.config import BenchConfig
from sam3ops.bench.describe import describe_environment
from sam3ops.bench.results import PlanResults, PlanStep
from sam3ops.bench.runner import run_benchmark
from sam3ops.errors import Sam3opsError

P1, P8 = dict(prompts_per_image=1), dict(prompts_per_image=8)
BF16 = dict(precisions="bf16")


@dataclass
class Step:
    """One benchmark of the plan: ``BenchConfig`` overrides, or a special ``kind``."""

    name: str
    bench: dict = field(default_factory=dict)
    kind: str = "bench"  # bench | cold | profile
    prepare: str | None = None  # a key of PREPARE: the weights this step measures are made first
    budget_s: float = 60.0  # a rough cost on an H200, to skip what no longer fits


STEPS = (
    Step("sweep", dict(precisions="fp32,fp16,bf16", batches="1,4,8,16", **P1), budget_s=90),
    Step("prompts8", dict(batches="1", **BF16, **P8)),
    Step("cold_start", kind="cold", budget_s=40),
    # The torch runtime's options, each on beside its base (same workload, default options).
    Step("base_p1", dict(batches="1,8", **BF16, **P1), budget_s=20),
    Step("attention_eager", dict(batches="1,8", **BF16, **P1, options={"attention": "eager"}), budget_s=25),
    Step("attention_flash", dict(batches="1,8", **BF16, **P1, options={"attention": "flash_attention_2"})),
    Step("attention_flex", dict(batches="1,8", **BF16, **P1, options={"attention": "flex_attention"})),
    Step("pinned_inputs", dict(batches="1,8", **BF16, **P1, options={"pinned_inputs": True}), budget_s=20),
    Step("batch_pairs", dict(batches="1,8", **BF16, **P1, options={"batch_pairs": True, "decode_batch": 64}),
         budget_s=20),
    Step("base_p8", dict(batches="1,4", **BF16, **P8), budget_s=20),
    Step("gpu_postprocess", dict(batches="1,4", **BF16, **P8, options={"gpu_postprocess": True}), budget_s=20),
    Step("native_outputs", dict(batches="1,4", **BF16, **P8, options={"gpu_postprocess": True,
                                                                       "native_outputs": True}), budget_s=20),
    Step("batch_pairs_p8", dict(batches="1,4", **BF16, **P8, options={"batch_pairs": True, "decode_batch": 32}),
         budget_s=20),
    Step("compile_default", dict(runtime="torch-compile", batches="1,8", **BF16, **P1), budget_s=120),
    Step("compile_cudagraphs", dict(batches="1", **BF16, **P1, options={
        "compile": "reduce-overhead", "compile_parts": "vision,text,decoder"}), budget_s=120),
    Step("all_on", dict(batches="1,8", **BF16, **P1, options={
        "batch_pairs": True, "decode_batch": 64, "gpu_postprocess": True, "native_outputs": True,
        "pinned_inputs": True}), budget_s=20),
    Step("all_on_p8", dict(batches="1", **BF16, **P8, options={
        "batch_pairs": True, "decode_batch": 64, "gpu_postprocess": True, "native_outputs": True,
        "pinned_inputs": True}), budget_s=20),
    Step("format_aoti", dict(batches="1,8", **BF16, **P1), prepare="aoti", budget_s=150),
    Step("runtime_meta", dict(runtime="meta", batches="1,8", **BF16, **P1), prepare="meta", budget_s=40),
    Step("meta_p8", dict(runtime="meta", batches="1", **BF16, **P8), prepare="meta", budget_s=20),
    Step("profile", kind="profile", budget_s=30),
)

# Weights a step needs made first: "module:function", called with source, output, precision (+ device).
PREPARE = {
    "aoti": ("sam3ops.convert.aoti.build:build_packages", {"batch": (1, 16)}),
    "meta": ("sam3ops.meta.convert:to_meta_dir", {}),
}


def prepare(kind: str, source: Path, work: Path, device: str) -> Path:
    """The weights folder a step of ``kind`` measures (made once per plan run)."""
    target, extra = PREPARE[kind]
    output = work / f"weights-{kind}"
    if output.is_dir():
        return output
    module, function = target.split(":")
    fn = getattr(importlib.import_module(module), function)
    kwargs = {"source": source, "output": output, "precision": "fp32" if kind == "meta" else "bf16", **extra}
    if kind == "aoti":
        kwargs["device"] = device
    fn(**kwargs)
    return output


def run_bench_step(step: Step, args, weights: Path, cache: dict) -> PlanStep:
    overrides = {"warmup": args.warmup, "iterations": args.iterations, **step.bench}
    if args.dry:  # the dry run: every step at its smallest
        overrides.update(batches=str(overrides.get("batches", "1")).split(",")[0], warmup=1, iterations=2)
    config = BenchConfig(weights=str(weights), device=args.device, image_size=args.image_size,
                         photos=str(Path(args.bundle) / "photos"), **overrides)
    # Prepared formats are compared with the fp32 source they were made from.
    reference = Path(args.weights) if weights != Path(args.weights) else None
    results = run_benchmark(config, reference_weights=reference, reference_cache=cache)
    return PlanStep(name=step.name, results=results)


def run_step(step: Step, args, source: Path, cache: dict, plan_so_far: PlanResults) -> PlanStep:
    """One step, its failure recorded rather than raised."""
    started = time.perf_counter()
    try:
        if step.kind == "cold":
            outcome = PlanStep(name=step.name, extra=cold_start(args))
        elif step.kind == "profile":
            from benchmarks.gpu_profile import profile_best

            outcome = PlanStep(name=step.name, extra=profile_best(args, source, plan_so_far))
        else:
            weights = prepare(step.prepare, source, Path(args.work), args.device) if step.prepare else source
            outcome = run_bench_step(step, args, weights, cache)
    except (ImportError, AttributeError) as exc:  # a sibling branch not landed yet
        outcome = PlanStep(name=step.name, status="unavailable", error=f"{type(exc).__name__}: {exc}"[:500])
    except Sam3opsError as exc:
        outcome = PlanStep(name=step.name, status="error", error=exc.one_line()[:500])
    except Exception as exc:  # noqa: BLE001 - one failed step must not lose the others' numbers
        outcome = PlanStep(name=step.name, status="error", error=f"{type(exc).__name__}: {exc}"[:500],
                           extra={"traceback": traceback.format_exc()[-3000:]})
    outcome.seconds = round(time.perf_counter() - started, 2)
    return outcome


COLD = r"""
import json, sys, time
started = time.perf_counter()
import torch
from PIL import Image
from sam3ops.inference import Segmenter
imported = time.perf_counter()
seg = Segmenter.from_dir(sys.argv[1], device=sys.argv[2], precision=sys.argv[3])
loaded = time.perf_counter()
photo = Image.open(sys.argv[4]).convert("RGB")
def call():
    t = time.perf_counter(); seg.segment([photo], ["person"])
    if seg.core.device.type == "cuda": torch.cuda.synchronize()
    return time.perf_counter() - t
first = call()
print(json.dumps({"import_s": imported - started, "load_s": loaded - imported, "first_call_s": first,
                  "second_call_s": call(), "to_first_result_s": loaded - started + first}))
"""


def cold_start(args) -> dict:
    """A fresh process: interpreter start to the first result, split into import, load and calls."""
    photo = sorted((Path(args.bundle) / "photos").glob("*.png"))[0]
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD, args.weights, args.device, "bf16", str(photo)],
                         capture_output=True, text=True, check=True, env=os.environ.copy())
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    seen["process_wall_s"] = time.perf_counter() - started
    return seen


def make_weights(args) -> Path:
    """Random weights of the bundle's preset, drawn on the device from its config (seed 0)."""
    from benchmarks._gpu_host import write_random

    preset = (Path(args.bundle) / "preset" / "PRESET").read_text().strip()
    return write_random(Path(args.bundle) / "preset", Path(args.weights), preset=preset, device=args.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="weights/gpu-bundle")
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/sam3ops-plan")
    parser.add_argument("--weights", default=None, help="where the random weights go [WORK/weights]")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--image-size", type=int, default=1008)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=450, help="no step starts past this (8 min run)")
    parser.add_argument("--only", default=None, help="comma-separated step names")
    parser.add_argument("--skip", default="", help="comma-separated step names recorded as skipped")
    parser.add_argument("--dry", action="store_true", help="each step at its smallest (the CPU dry run)")
    args = parser.parse_args()
    args.weights = args.weights or str(Path(args.work) / "weights")
    started = time.perf_counter()
    plan = PlanResults(environment=describe_environment(args.device))
    source = make_weights(args)
    plan.environment["weights_s"] = round(time.perf_counter() - started, 1)
    cache: dict = {}
    only = set(args.only.split(",")) if args.only else None
    for step in STEPS:
        if only and step.name not in only:
            continue
        elapsed = time.perf_counter() - started
        if step.name in args.skip.split(","):
            outcome = PlanStep(name=step.name, status="skipped", error="asked (--skip)")
        elif elapsed + (0 if args.dry else step.budget_s) > args.budget_s:
            outcome = PlanStep(name=step.name, status="skipped",
                               error=f"time: {elapsed:.0f} s spent of {args.budget_s:.0f}")
        else:
            outcome = run_step(step, args, source, cache, plan)
        plan.steps.append(outcome)
        plan.total_s = round(time.perf_counter() - started, 1)
        plan.write(Path(args.out) / "plan.json")
        print(f"[{plan.total_s:6.0f} s] {step.name}: {outcome.status} {outcome.error or ''}", flush=True)
        for row in (outcome.results.rows() if outcome.results else []):
            print("   ", {k: row.get(k) for k in ("runtime", "precision", "batch", "status", "latency_p50_ms",
                                                   "ms_per_image", "parity_mask_iou")}, flush=True)
    print(f"plan done in {plan.total_s:.0f} s; mlflow imported: {'mlflow' in sys.modules}", flush=True)


if __name__ == "__main__":
    main()
