"""AOTInductor packages against eager torch on this CPU: per-stage and end-to-end latency, parity.

Reads a safetensors folder and the AOTInductor folder ``convert --format aoti`` made from it (its
``aoti.json`` holds the compile seconds of each package). Runs without mlflow; prints JSON and,
with ``--report``, appends a section to benchmarks/REPORT.md.

    sam3ops init --preset tiny --output weights/sam3-tiny
    sam3ops convert --input weights/sam3-tiny --format aoti --output weights/tiny-aoti --max-batch 4
    python -m benchmarks.aoti_cpu --weights weights/sam3-tiny --aoti weights/tiny-aoti --report
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._measure import append_to_report, commit_label

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
PROMPTS = ["person", "cat", "white mug on a table", "rocket"]


def _median_ms(call, iterations: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _stages(core, pixels, text, iterations: int) -> dict[str, float]:
    """Median ms of each part on ``pixels`` (one image per prompt) and ``text``."""
    vision = core.encode_image(pixels)
    features = core.encode_text(text.input_ids, text.attention_mask)
    return {"vision_ms": _median_ms(lambda: core.encode_image(pixels), iterations),
            "text_ms": _median_ms(lambda: core.encode_text(text.input_ids, text.attention_mask), iterations),
            "decoder_ms": _median_ms(lambda: core.decode(vision, features, text.attention_mask), iterations)}


def _parity(reference, compiled) -> dict[str, float]:
    """Mask IoU (query by query) and the largest score difference of two lists of results."""
    ious, scores = [], []
    for a, b in zip(reference, compiled):
        union = (a.masks | b.masks).sum(axis=(1, 2))
        ious.extend(np.where(union > 0, (a.masks & b.masks).sum(axis=(1, 2)) / np.maximum(union, 1), 1.0))
        scores.append(float(np.abs(a.scores - b.scores).max()))
    return {"mask_iou_mean": round(float(np.mean(ious)), 6), "mask_iou_min": round(float(np.min(ious)), 6),
            "score_max_diff": float(max(scores))}


def measure(weights: Path, aoti: Path, batches: list[int], iterations: int) -> dict:
    """Per-stage and end-to-end medians of eager torch and the packages at each batch, and parity."""
    from transformers import Sam3Processor

    from sam3ops.inference import Segmenter
    from sam3ops.predict.samples import sample_image

    processor = Sam3Processor.from_pretrained(weights)
    eager = Segmenter.from_dir(weights, score_threshold=0.0)
    compiled = Segmenter.from_dir(aoti, score_threshold=0.0)
    rows = []
    for batch in batches:
        photos = [sample_image(PHOTOS[i % len(PHOTOS)]) for i in range(batch)]
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
        pixels = processor.image_processor(images=photos, return_tensors="pt").pixel_values
        text = processor.tokenizer(prompts, padding="max_length", max_length=32, return_tensors="pt")
        row = {"batch": batch}
        for name, segmenter in (("eager", eager), ("aoti", compiled)):
            def segment(s=segmenter, images=photos, prompt=prompts[:1]):
                return s.segment(images, prompt)

            row[name] = {**_stages(segmenter.core, pixels, text, iterations),
                         "segment_ms": _median_ms(segment, iterations)}
        row["parity"] = _parity(eager.segment(photos, prompts[:1]), compiled.segment(photos, prompts[:1]))
        rows.append(row)
    sidecar = json.loads((aoti / "aoti.json").read_text())
    return {"date": dt.date.today().isoformat(), "commit": commit_label(), "cpu": platform.processor() or
            platform.machine(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "torch": torch.__version__,
            "compile_seconds": sidecar["compile_seconds"], "inductor_options": sidecar.get("inductor_options"),
            "rows": rows}


def _section(result: dict) -> str:
    lines = [f"## AOTInductor vs eager torch, tiny preset, CPU ({result['date']}, {result['commit']})", "",
             f"{result['cores']} cores, torch {result['torch']}, load average {result['load_average']}; "
             f"package compile seconds {result['compile_seconds']}.", "",
             "| batch | runtime | vision ms | text ms | decoder ms | segment ms (batch images x 1 prompt) |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        for name in ("eager", "aoti"):
            r = row[name]
            lines.append(f"| {row['batch']} | {name} | {r['vision_ms']} | {r['text_ms']} | {r['decoder_ms']} | "
                         f"{r['segment_ms']} |")
    lines += ["", "Parity of the packages vs fp32 eager: " + "; ".join(
        f"batch {row['batch']}: {row['parity']}" for row in result["rows"]), "", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--aoti", type=Path, required=True)
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    result = measure(args.weights, args.aoti, [int(b) for b in args.batches.split(",")], args.iterations)
    print(json.dumps(result, indent=2))
    if args.report:
        append_to_report(_section(result))


if __name__ == "__main__":
    main()
