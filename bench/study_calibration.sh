#!/bin/bash
# The study report for the three scenarios, from runs on this machine plus the
# labelled published figures (bench/published.tsv), with its calibration table.
#
#   bench/study_calibration.sh [BUILD_DIR] [OUT_DIR]
#
# 1. synthetic shopsight5 shards (2,400 images, no corrupt records);
# 2. `dptrain study sweep --ranks 1,2` for the baseline CNN and ResNet-18 at two
#    image sizes (64 and 96 px), one core per rank (--keep-binding: Open MPI binds
#    each of <= 2 ranks to a core), re-measuring a noisy run up to twice;
# 3. 1-rank runs of ResNet-50 and ViT-B/16 at 224 px for their CPU MFU;
# 4. `dptrain study` over all of them -> OUT_DIR/study.md (+ SVG, study.json).
# Only results.json and steps.csv are kept (no weights). The machine is shared:
# every results.json records the load average; the report flags loaded runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
out=${2:-$here/results/study}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$out"     # the report names its runs relative to itself
runs=runs
data=${STUDY_DATA:-/tmp/dp_study_data}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
dp=$build/dptrain
steps=${STUDY_STEPS:-60}
hw=${STUDY_HARDWARE:-cpu-core-zen5}   # the row of this machine (bench/hardware.tsv)

if [ ! -f "$data/train-00000.h5" ]; then
  "$dp" data synth --preset shopsight5 --count 2400 --corrupt-frac 0 --out "$data" > /dev/null
fi
common=(--train "$data/train-*.h5" --batch 16 --threads 1 --loader-threads 1 --lr 0.05 --log-every 20 --hardware "$hw")

sweep() {   # name model size [extra train options]
  local name=$1 model=$2 size=$3
  shift 3
  "$dp" study sweep --ranks 1,2 --out-dir "$runs/$name" --keep-binding 1 --remeasure 2 --out "$runs/$name/study.md" \
    --input-bench none -- --model "$model" --image-size "$size" --steps "$steps" "${common[@]}" "$@"
}
sweep cnn64 cnn 64 --val "$data/val-*.h5"
sweep cnn96 cnn 96
sweep resnet18-64 resnet18 64 --val "$data/val-*.h5"
sweep resnet18-96 resnet18 96
one() {     # name model size batch steps: 1 rank only (CPU MFU of the scenario models)
  "$dp" study sweep --ranks 1 --out-dir "$runs/$1" --keep-binding 1 --remeasure 2 --out "$runs/$1/study.md" \
    --input-bench none -- --model "$2" --image-size "$3" --batch "$4" --steps "$5" --train "$data/train-*.h5" \
    --threads 1 --loader-threads 1 --lr 0.01 --log-every 5 --hardware "$hw"
}
if [ -z "${STUDY_SKIP_BIG:-}" ]; then
  one resnet50-224 resnet50 224 8 12
  one vit_b16-224 vit_b16 224 8 16
fi
find "$runs" -name "*.safetensors" -delete   # weights (model, model-last, checkpoints)
find "$runs" -name study.md -delete -o -name 'study-*.svg' -delete
"$dp" study --results $(find "$runs" -name results.json | sort) --out study.md --json study.json \
  --input-bench "$(realpath --relative-to=. "$here/results/input_180kb.json")"
echo "wrote $out/study.md"
