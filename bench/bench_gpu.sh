#!/usr/bin/env bash
# GPU benchmark, side by side in one run on one H100/H200 (issue 5):
#   ResNet-50 bf16 224^2 b256 synthetic  vs PyTorch eager autocast bf16 channels_last
#   ViT-B/16  bf16 224^2                 vs PyTorch (SDPA attention)
# Reports img/s, MFU and peak memory for each as JSON lines in $OUT/bench_gpu.jsonl.
#
# Usage: bench/bench_gpu.sh [build-dir] [out-dir]
# Env:   STEPS (50), WARMUP (10), PYTHON (python3 with torch >= 2 + torchvision, CUDA build).
#
# The dptrain side needs the CUDA training path wired into `dptrain train`
# (see src/backend/cuda/README.md, "What graph.c / the trainer must change").
# Until then it records {"skip": ...} for dptrain rows instead of a number.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
OUT=${2:-$ROOT/bench/results/gpu}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
J="$OUT/bench_gpu.jsonl"
: > "$J"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo '{"skip": "no NVIDIA GPU (nvidia-smi)"}' | tee -a "$J"
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.csv"

# 1. Build with CUDA (sm_90 for H100/H200 keeps the build short).
cmake -S "$ROOT" -B "$BUILD" -DDPTRAIN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

# 2. Correctness first: the GPU tests must pass before timings mean anything.
(cd "$BUILD" && ctest -L gpu --output-on-failure) | tee "$OUT/gpu_tests.log"

# 3. PyTorch peer.
"$PYTHON" "$ROOT/bench/torch_gpu.py" --steps "$STEPS" --warmup "$WARMUP" | tee -a "$J"

# 4. dptrain, same device, same run.
run_dptrain() {  # model batch
  local model=$1 batch=$2 dir="$OUT/dptrain_$1"
  if ! "$BUILD/dptrain" train --help 2>&1 | grep -q -- "cuda"; then
    echo "{\"peer\": \"dptrain\", \"model\": \"$model\", \"skip\": \"dptrain train has no CUDA device option yet\"}" | tee -a "$J"
    return
  fi
  "$BUILD/dptrain" train --model "$model" --device cuda --precision bf16 --synthetic \
    --batch "$batch" --steps $((STEPS + WARMUP)) --out "$dir" >"$dir.log" 2>&1 || {
    echo "{\"peer\": \"dptrain\", \"model\": \"$model\", \"error\": \"see $dir.log\"}" | tee -a "$J"; return; }
  "$PYTHON" - "$dir/results.json" "$model" "$batch" <<'PY' | tee -a "$J"
import json, sys
r = json.load(open(sys.argv[1]))
keys = ("img_per_s", "mfu", "peak_memory_bytes", "planned_memory_bytes")
print(json.dumps({"peer": "dptrain", "model": sys.argv[2], "batch": int(sys.argv[3]),
                  **{k: r.get(k) for k in keys}}))
PY
}
run_dptrain resnet50 256
run_dptrain vit_b_16 128

echo "results: $J"
