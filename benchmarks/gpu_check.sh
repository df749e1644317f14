#!/usr/bin/env bash
# The GPU checks of the inference core, as one script for a lent GPU host (torch + transformers,
# no mlflow, no network). Needs, carried beside the checkout: weights/sam3-full-proc (config,
# processor and tokenizer files of the full preset, plus astronaut.png) and weights/sam3-tiny.
# Writes JSON under $OUT; benchmarks/prompt_sharing.py --from-json turns it into report sections.
set -uo pipefail
OUT=${OUT:-/tmp/sam3ops-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"

# 1. Correctness on the GPU: the tiny preset on cuda against the CPU, fp32 and bf16.
python - <<'PY' 2>&1 | tee "$OUT/gpu_check.txt"
import json, os, numpy as np
from sam3ops.inference import Segmenter, load_image
image = load_image("weights/sam3-full-proc/astronaut.png")
out = {}
cpu = Segmenter.from_dir("weights/sam3-tiny", score_threshold=0.0).segment([image], ["person", "cat"])[0]
for precision in ("fp32", "bf16", "fp16"):
    gpu = Segmenter.from_dir("weights/sam3-tiny", device="cuda", precision=precision,
                             score_threshold=0.0).segment([image], ["person", "cat"])[0]
    out[precision] = {"max_score_diff": float(np.abs(cpu.scores - gpu.scores).max()),
                      "mask_agreement": float((cpu.masks == gpu.masks).mean())}
print(json.dumps(out, indent=2))
json.dump(out, open(os.path.join(os.environ.get("OUT", "/tmp"), "gpu_check.json"), "w"), indent=2)
PY

# 2. The full preset: 1 image x 8 prompts, shared core vs 8 separate forwards.
for precision in bf16 fp16 fp32; do
  python -m benchmarks.prompt_sharing --preset full --processor-dir weights/sam3-full-proc \
    --image weights/sam3-full-proc/astronaut.png --device cuda --precision "$precision" \
    --warmup 3 --iterations 10 --json "$OUT/prompt_sharing_$precision.json" > "$OUT/prompt_sharing_$precision.log" 2>&1
  echo "$precision exit $?"; grep -E '"median_ms"|speedup' "$OUT/prompt_sharing_$precision.log"
done
