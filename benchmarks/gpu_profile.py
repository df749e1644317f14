"""The plan's last step: ``torch.profiler`` on the fastest torch configuration so far, and what limits it.

The fastest is the lowest ms per image at batch 1 among the plan's torch steps; it is loaded again
with its options, warmed up, and profiled over a few calls of 1 image x 1 prompt. Written beside
``plan.json``: ``profile.txt`` (the operator table, by device time). Returned for the plan: the
device's busy share of the wall time (low: the host is the limit, launches and syncs; high: the
kernels are), and the device time by kind of work (matrix products, attention, the rest).
"""

from __future__ import annotations

import time
from pathlib import Path

MATMUL = ("gemm", "matmul", "addmm", "aten::mm", "aten::bmm", "linear", "cutlass", "sm90_xmma", "nvjet")
ATTENTION = ("attention", "flash", "sdpa", "fmha", "efficient")


def best_torch_config(plan) -> tuple[str, str, dict] | None:
    """(step, precision, options) of the lowest batch-1 ms per image among the plan's torch steps."""
    best = None
    for step in plan.steps:
        for config in (step.results.configs if step.results else []):
            if config.runtime not in ("torch", "torch-compile"):
                continue
            for batch in config.batches:
                if batch.batch == 1 and batch.latency and (best is None or batch.ms_per_image < best[0]):
                    options = dict(config.options, **({"compile": config.options.get("compile", "default")}
                                                      if config.runtime == "torch-compile" else {}))
                    best = (batch.ms_per_image, step.name, config.precision, options)
    return best[1:] if best else None


def _device_us(event) -> float:
    for name in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(event, name):
            return float(getattr(event, name))
    return 0.0


def profile_best(args, source: Path, plan) -> dict:
    """Profile the plan's fastest torch configuration; write ``profile.txt`` into ``args.out``."""
    import torch
    from PIL import Image
    from torch.profiler import ProfilerActivity, profile

    from sam3ops.inference import Segmenter
    from sam3ops.inference.tuning import TorchOptions

    chosen = best_torch_config(plan) or ("base", "bf16", {})
    step, precision, options = chosen
    seg = Segmenter.from_dir(source, device=args.device, precision=precision, options=TorchOptions.parse(options))
    photo = Image.open(sorted((Path(args.bundle) / "photos").glob("*.png"))[0]).convert("RGB")
    photo = photo.resize((args.image_size, args.image_size))
    cuda = seg.core.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(3):
        seg.segment([photo], ["person"])
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    calls = 2 if args.dry else 5
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        for i in range(calls):
            seg.clear_text_cache()
            seg.segment([photo], ["person" if i % 2 else "cat"])
        sync()
        wall_us = (time.perf_counter() - started) * 1e6
    events = prof.key_averages()
    device_key = "self_device_time_total" if events and hasattr(events[0], "self_device_time_total") \
        else "self_cuda_time_total"  # renamed in torch 2.4
    sort = device_key if cuda else "self_cpu_time_total"
    (Path(args.out) / "profile.txt").write_text(
        f"step {step}, {precision}, options {options}, {calls} calls of 1 image x 1 prompt\n\n"
        + events.table(sort_by=sort, row_limit=40))
    device_us = {e.key: _device_us(e) if cuda else float(e.self_cpu_time_total) for e in events}
    total = sum(device_us.values())
    kinds = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    for key, us in device_us.items():
        low = key.lower()
        kinds["attention" if any(k in low for k in ATTENTION)
              else "matmul" if any(k in low for k in MATMUL) else "other"] += us
    top = sorted(device_us.items(), key=lambda kv: -kv[1])[:10]
    return {"step": step, "precision": precision, "options": options, "calls": calls,
            "wall_ms_per_call": wall_us / calls / 1000, "device_ms_per_call": total / calls / 1000,
            "device_busy_share": total / wall_us if cuda and wall_us else None,
            "device_share_by_kind": {k: v / total for k, v in kinds.items()} if total else {},
            "top_ops_ms_per_call": {k: v / calls / 1000 for k, v in top}}
