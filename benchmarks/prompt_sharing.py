"""What the three-part core buys: 1 image x 8 prompts, shared vision pass vs 8 separate forwards.

Runs without mlflow (GPU hosts may lack it) and prints / writes JSON; `--report` appends a section to
benchmarks/REPORT.md. The model is the random-weights preset built in memory (latency does not
depend on the weight values), or a weights folder.

    python -m benchmarks.prompt_sharing --preset full --device cpu --iterations 1 --report
    python -m benchmarks.prompt_sharing --preset full --processor-dir DIR --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks._measure import ROOT, commit_label

PROMPTS = ["person", "cat", "dog", "car", "cup", "rocket", "person wearing a red shirt", "left hand"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(args):
    from transformers import Sam3Model, Sam3Processor

    from sam3ops.inference import Segmenter, TorchCore
    from sam3ops.inference.device import resolve_precision
    from sam3ops.weights.presets import build_config, build_processor

    dtype, device = resolve_precision(args.precision), torch.device(args.device)
    if args.weights:
        segmenter = Segmenter.from_dir(Path(args.weights), device=args.device, precision=args.precision)
        return segmenter, segmenter.core.model, segmenter.processor
    config = build_config(args.preset)
    processor = Sam3Processor.from_pretrained(args.processor_dir) if args.processor_dir else build_processor(config)
    torch.manual_seed(0)
    with torch.device(device):
        model = Sam3Model(config).to(dtype).eval()
    return Segmenter(TorchCore(model), processor, score_threshold=0.5), model, processor


def _time(fn, device, warmup: int, iterations: int) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        samples.append(1000 * (time.perf_counter() - started))
    return samples


def measure(args) -> dict:
    """Milliseconds for the model work of 1 image x 8 prompts, both ways, plus the whole segment() call."""
    commit = commit_label()  # the code measured is the code loaded now
    segmenter, model, processor = _build(args)
    device = segmenter.core.device
    if args.image:
        from sam3ops.inference.images import load_image

        image = load_image(Path(args.image))
    else:
        from sam3ops.predict.samples import sample_image  # scikit-image's photo

        image = sample_image("astronaut")
    inputs = processor(images=image, text=PROMPTS, return_tensors="pt")
    pixel_values = inputs.pixel_values.to(device, segmenter.core.dtype)
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
    core = segmenter.core

    @torch.inference_mode()
    def separate():  # what calling the model once per prompt costs: the image is encoded 8 times
        for i in range(len(PROMPTS)):
            model(pixel_values=pixel_values, input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1])

    def shared():  # the core: vision once, the 8 prompts' text in one call, one decoder batch of 8
        vision = core.encode_image(pixel_values)
        text = core.encode_text(ids, mask)
        core.decode(vision.select([0] * len(PROMPTS)), text, mask)

    def segment_call():  # the whole library call, pre/post-processing included (text cached after warm-up)
        segmenter.segment([image], PROMPTS)

    results = {}
    for name, fn in (("separate_forwards", separate), ("shared_core", shared), ("segment_call", segment_call)):
        segmenter.reset_timings()  # per-stage means of this call only
        samples = _time(fn, device, args.warmup, args.iterations)
        results[name] = {"median_ms": statistics.median(samples), "samples_ms": samples}
    results["segment_stages_mean_ms"] = segmenter.timings.mean_ms()
    results["speedup"] = results["separate_forwards"]["median_ms"] / results["shared_core"]["median_ms"]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    results["setup"] = {
        "preset": args.preset if not args.weights else None, "weights": args.weights, "device": args.device,
        "gpu": gpu, "precision": args.precision, "image_size": processor.image_processor.size["height"],
        "prompts": len(PROMPTS), "warmup": args.warmup, "iterations": args.iterations,
        "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
        "date": dt.date.today().isoformat(), "host": platform.node(), "commit": commit,
    }
    return results


def report_section(results: dict, commit: str | None = None) -> str:
    """A markdown section for benchmarks/REPORT.md."""
    s = results["setup"]
    commit = commit or s.get("commit", "unknown")
    machine = s["gpu"] or f"CPU ({platform.processor() or platform.machine()}, {s['cpu_threads']} threads)"
    return f"""
## Inference core: 1 image x 8 prompts — {s['date']}, commit {commit}

{machine}; {s['preset'] or s['weights']} ({s['image_size']} px), {s['precision']}, torch {s['torch']};
warm-up {s['warmup']}, {s['iterations']} timed iteration(s), medians.

| how | ms |
|---|---|
| 8 separate `Sam3Model.forward` calls (image encoded 8 times) | {results['separate_forwards']['median_ms']:.0f} |
| shared core: vision once, text once (8 prompts), decoder on 8 pairs | {results['shared_core']['median_ms']:.0f} |
| `Segmenter.segment` (the same, plus pre/post-processing of a 512x512 photo) | \
{results['segment_call']['median_ms']:.0f} |

Speed-up of the shared core: **{results['speedup']:.1f}x**. Inside `segment` (mean ms per call):
{', '.join(f"{stage} {ms:.1f}" for stage, ms in results.get('segment_stages_mean_ms', {}).items())}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=["tiny", "full"])
    parser.add_argument("--weights", help="a weights folder instead of the in-memory preset")
    parser.add_argument("--processor-dir", help="processor/tokenizer files (hosts without open_clip)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--image", help="an image file instead of scikit-image's astronaut (hosts without it)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--from-json", help="skip measuring: report the results in this file")
    parser.add_argument("--report", action="store_true", help="append a section to benchmarks/REPORT.md")
    parser.add_argument("--commit", help="the commit measured, when the results came from a host without git")
    args = parser.parse_args()
    results = json.loads(Path(args.from_json).read_text()) if args.from_json else measure(args)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.report:
        with open(ROOT / "benchmarks" / "REPORT.md", "a") as handle:
            handle.write(report_section(results, args.commit))


if __name__ == "__main__":
    main()
