"""Meta's sam3.pt at full size: both conversions' peak RSS (target <= 1.5x the checkpoint) and wall
time, the fp32 round trip's exactness, and Meta's model against its conversion (raw outputs, one
photo, one prompt). Appends a section to benchmarks/REPORT.md.

    python -m benchmarks.meta_checkpoint [--workdir weights]

Each step is its own process, one at a time (each full-size step holds 3-6 GB): Meta's full model
(random, seed 0) is built, written as a flat ``sam3.pt`` and run once; then ``sam3.pt`` ->
transformers fp32, transformers -> ``sam3.pt``, the round-trip check and the converted model's forward.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks._measure import ROOT, append_to_report, commit_label, run_with_peak_rss

PHOTO, PROMPT = "chelsea", "cat"

_INPUTS = f"""
from skimage import data
from sam3ops.weights.presets import build_config, build_processor
inputs = build_processor(build_config("full"))(images=data.{PHOTO}(), text={PROMPT!r}, return_tensors="pt")
"""

_META = _INPUTS + """
import sys, time, torch
from sam3ops.meta.package import build_image_model
from sam3ops.meta.reference import raw_outputs
model = build_image_model(size="full", seed=0)
torch.save({{"detector." + k: v for k, v in model.state_dict().items()}}, "{work}/sam3.pt")
started = time.perf_counter()
out = raw_outputs(model, inputs["pixel_values"], {prompt!r})
print(time.perf_counter() - started)
torch.save(out._asdict(), "{work}/meta_outputs.pt")
"""

_TO_HF = """
import time; from pathlib import Path; from sam3ops.meta.convert import to_transformers_dir
t = time.perf_counter(); to_transformers_dir(source=Path("{work}/sam3.pt"), output=Path("{work}/hf"))
print(time.perf_counter() - t)
"""

_TO_META = """
import time; from pathlib import Path; from sam3ops.meta.convert import to_meta_dir
t = time.perf_counter(); to_meta_dir(source=Path("{work}/hf"), output=Path("{work}/meta"))
print(time.perf_counter() - t)
"""

_ROUND_TRIP = """
import json, torch
a = torch.load("{work}/sam3.pt", weights_only=True, mmap=True)
b = torch.load("{work}/meta/sam3.pt", weights_only=True, mmap=True)
differ = [k for k in a if k not in b or a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
print(json.dumps({{"keys": len(a), "same_keys": a.keys() == b.keys(), "differ": differ[:5], "n_differ": len(differ)}}))
"""

_CONVERTED = _INPUTS + """
import json, time, torch
from transformers import Sam3Model
from sam3ops.convert.parity import _mask_ious
model = Sam3Model.from_pretrained("{work}/hf").eval()
started = time.perf_counter()
with torch.inference_mode():  # one padding box: the geometry encoder's CLS token joins the prompt, as in Meta's
    out = model(**inputs, input_boxes=torch.tensor([[[0.5, 0.5, 0.1, 0.1]]]), input_boxes_labels=torch.tensor([[-10]]))
seconds = time.perf_counter() - started
ref = torch.load("{work}/meta_outputs.pt")
diff = lambda name, ours: float((ours - ref[name]).abs().max())
ious = _mask_ious((out.pred_masks[0] > 0).numpy(), (ref["pred_masks"][0] > 0).numpy())
print(json.dumps({{"seconds": seconds, "logits": diff("pred_logits", out.pred_logits),
                  "presence": diff("presence_logits", out.presence_logits), "boxes": diff("pred_boxes", out.pred_boxes),
                  "mask_logits": diff("pred_masks", out.pred_masks), "mask_iou_mean": float(ious.mean()),
                  "mask_iou_min": float(ious.min()), "queries": len(ious)}}))
"""


def _step(code: str, work: Path) -> tuple[float, int, str]:
    seconds, peak, exit_code, out = run_with_peak_rss([sys.executable, "-c", code.format(work=work, prompt=PROMPT)])
    if exit_code:
        raise SystemExit(f"a benchmark step failed with exit code {exit_code}")
    return seconds, peak, out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(ROOT / "weights"))
    args = parser.parse_args()
    commit = commit_label()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix=".bench-meta-") as tmp:
        work = Path(tmp)
        meta_s, meta_rss, meta_forward = _step(_META, work)
        size = (work / "sam3.pt").stat().st_size
        to_hf_s, to_hf_rss, to_hf_call = _step(_TO_HF, work)
        to_meta_s, to_meta_rss, to_meta_call = _step(_TO_META, work)
        _, _, round_trip = _step(_ROUND_TRIP, work)
        _, hf_rss, converted = _step(_CONVERTED, work)
    trip, same = json.loads(round_trip), json.loads(converted)

    def verdict(rss):
        return "met" if rss <= 1.5 * size else "NOT met"

    section = f"""
## Meta's sam3.pt, full size — {dt.date.today().isoformat()}, commit {commit}

{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU (shared with
other engineers' jobs). Meta's full image model (sam3 0.1.4, random, seed 0) written as a flat `sam3.pt` of
{size / 1e9:.2f} GB, fp32. Each line is its own process; peak RSS of the process.

| step | seconds (the call) | process seconds | peak RSS | x checkpoint |
|---|---|---|---|---|
| `sam3.pt` -> transformers fp32 (`to_transformers_dir`) | {float(to_hf_call):.1f} | {to_hf_s:.1f} | \
{to_hf_rss / 1e9:.2f} GB | {to_hf_rss / size:.2f} ({verdict(to_hf_rss)}) |
| transformers fp32 -> `sam3.pt` (`to_meta_dir`) | {float(to_meta_call):.1f} | {to_meta_s:.1f} | \
{to_meta_rss / 1e9:.2f} GB | {to_meta_rss / size:.2f} ({verdict(to_meta_rss)}) |
| Meta: build, write `sam3.pt`, one forward | {float(meta_forward):.1f} (forward) | {meta_s:.1f} | \
{meta_rss / 1e9:.2f} GB | |
| transformers: load the conversion, one forward | {same['seconds']:.1f} (forward) | | {hf_rss / 1e9:.2f} GB | |

Round trip Meta -> transformers -> Meta at fp32: {trip['keys']} tensors, same keys: {trip['same_keys']}, tensors
that differ: {trip['n_differ']} {trip['differ'] or ''} (the RoPE tables are recomputed, and compared too).

Equivalence on `{PHOTO}` + "{PROMPT}" ({same['queries']} queries, raw outputs, fp32, CPU): largest difference
per-query logits {same['logits']:.2e} (target 1e-3), presence {same['presence']:.2e} (1e-3), boxes
{same['boxes']:.2e} (1e-4), mask logits {same['mask_logits']:.2e}; thresholded masks mean IoU
{same['mask_iou_mean']:.5f} (min {same['mask_iou_min']:.5f}; target 0.999).
"""
    print(section)
    append_to_report(section)


if __name__ == "__main__":
    main()
