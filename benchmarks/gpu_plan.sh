#!/usr/bin/env bash
# The prepared GPU plan (issue 13), in three modes:
#
#   benchmarks/gpu_plan.sh bundle        # here: weights/gpu-bundle (full preset files, Meta's wheels, photos),
#                                        #       checked under 64 MiB; carry it: run(carry=["weights/gpu-bundle"])
#   benchmarks/gpu_plan.sh run           # on the H200 host (torch, transformers, no mlflow, no network):
#                                        #       installs the wheels into a scratch folder, runs every step,
#                                        #       writes $OUT/plan.json, $OUT/profile.txt, $OUT/plan.log
#   benchmarks/gpu_plan.sh dry           # here, on the CPU: the tiny preset through the same steps, with
#                                        #       mlflow hidden, then `sam3ops bench --from-json` logs the JSON;
#                                        #       the steps that compile (flex attention, torch.compile) are
#                                        #       skipped unless DRY_SKIP= (inductor on 2 CPU cores: many minutes)
#
# Afterwards, here: sam3ops bench --from-json <files_at>/plan.json   (a run per step in sam3-benchmark)
# One host run is sized for 8 minutes: the plan stops starting steps at PLAN_BUDGET_S (450 s).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-run}
PY=${PYTHON:-python}
BUNDLE=${BUNDLE:-weights/gpu-bundle}
OUT=${OUT:-/tmp/sam3ops-plan-out}
WORK=${WORK:-/tmp/sam3ops-plan}
mkdir -p "$OUT" "$WORK"

install_wheels() {  # Meta's package and its small dependencies, without the network, into $WORK/site
  local path="$PWD"
  if [ -d "$BUNDLE/wheels" ]; then
    if "$PY" -m pip install --quiet --no-index --no-deps --no-build-isolation --find-links "$BUNDLE/wheels" \
        --target "$WORK/site" sam3 iopath ftfy portalocker wcwidth pycocotools open_clip_torch; then
      path="$PWD:$WORK/site"
    else
      echo "wheels: install failed (Meta's runtime steps will say unavailable)"
    fi
  fi
  if [ -f "$BUNDLE/bpe_simple_vocab_16e6.txt.gz" ]; then
    export SAM3_BPE_PATH="$(realpath "$BUNDLE/bpe_simple_vocab_16e6.txt.gz")"
  fi
  export PYTHONPATH="$path${PYTHONPATH:+:$PYTHONPATH}"
}

case "$MODE" in
  bundle)
    "$PY" -m benchmarks.gpu_bundle --out "$BUNDLE" --preset "${PRESET:-full}"
    ;;
  run)
    install_wheels
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true; } | tee "$OUT/plan.log"
    timeout 470 "$PY" -m benchmarks.gpu_plan --bundle "$BUNDLE" --out "$OUT" --work "$WORK" \
      --budget-s "${PLAN_BUDGET_S:-450}" ${PLAN_ONLY:+--only "$PLAN_ONLY"} 2>&1 | tee -a "$OUT/plan.log"
    ;;
  dry)
    BUNDLE=${BUNDLE_DRY:-/tmp/sam3ops-plan-dry/bundle}
    "$PY" -m benchmarks.gpu_bundle --out "$BUNDLE" --preset tiny ${DRY_NO_WHEELS:+--no-wheels}
    install_wheels
    # The host has no mlflow: hide it, so an import of it anywhere in the measuring code fails the dry run.
    mkdir -p "$WORK/no-mlflow" && echo 'raise ImportError("no mlflow on the GPU host")' > "$WORK/no-mlflow/mlflow.py"
    PYTHONPATH="$WORK/no-mlflow:$PYTHONPATH" "$PY" -m benchmarks.gpu_plan --bundle "$BUNDLE" --out "$OUT" \
      --work "$WORK" --device cpu --image-size 128 --dry --budget-s 100000 ${PLAN_ONLY:+--only "$PLAN_ONLY"} \
      --skip "${DRY_SKIP-attention_flex,compile_default,compile_cudagraphs}" 2>&1 | tee "$OUT/plan.log"
    "$PY" -m sam3ops bench --from-json "$OUT/plan.json"
    ;;
  *)
    echo "usage: $0 bundle|run|dry" >&2
    exit 2
    ;;
esac
