#!/bin/bash
# The batch-32 vs optimized-batch study (issue 11), one command:
#   bench/batch_study.sh [BUILD_DIR]
# For each model: `dptrain tune-batch` finds the largest batch under the memory
# budget, then the same model and data train at batch 32 and at that batch for
# the same number of epochs (same images seen), the LR scaled linearly with
# the batch and a linear warmup (Goyal et al. 2017: SGD with momentum, which
# is what we train with; sqrt scaling is the rule for AdamW), and both best
# checkpoints are evaluated on the test split. Writes bench/results/batch_study.md
# and bench/results/batch_study_<model>.svg (loss curves).
#   env: MODELS ("cnn:64 resnet18:64"), COUNT (5000 synthetic shopsight5 images),
#        EPOCHS (6), BUDGET (1GiB per rank), LR32 (0.05), WARMUP32 (1 epoch),
#        THREADS (2), DATA (runs/study-data), WORK (runs/batch_study), OUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
dptrain=$build/dptrain
models=${MODELS:-"cnn:64 resnet18:64"}
count=${COUNT:-5000}
epochs=${EPOCHS:-6}
budget=${BUDGET:-1GiB}
lr32=${LR32:-0.05}
warm32=${WARMUP32:-1}
threads=${THREADS:-2}
data=${DATA:-runs/study-data/shopsight5-$count}
work=${WORK:-runs/batch_study}
out=${OUT:-$here/results/batch_study.md}
export OMP_NUM_THREADS=$threads OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 DPTRAIN_PROGRESS=plain
mkdir -p "$work" "$(dirname "$out")"
[ -f "$data/val-00000.h5" ] || "$dptrain" data synth --preset shopsight5 --count "$count" --out "$data" > "$work/synth.log"

common=(--train "$data/train-*.h5" --val "$data/val-*.h5" --class-weights auto --jitter 0.2 --schedule cosine
        --epochs "$epochs" --threads "$threads" --seed 7)
runs=()
tunes=""
for c in $models; do
  m=${c%%:*}
  px=${c##*:}
  margs=(--model "$m" --image-size "$px")
  [ "$m" = resnet18 ] && margs+=(--small-stem)
  "$dptrain" tune-batch "${margs[@]}" "${common[@]}" --memory-budget "$budget" --tune-steps 3 \
    --out "$work/tune-$m" > "$work/tune-$m.log" 2>&1
  B=$(sed -n 's/^recommended: --batch \([0-9]*\).*/\1/p' "$work/tune-$m.log")
  [ -n "$B" ] || { echo "batch_study.sh: tune-batch found no batch for $m (see $work/tune-$m.log)" >&2; exit 1; }
  tunes="$tunes"$'\n'"#### $m ($px px), \`dptrain tune-batch --memory-budget $budget\`"$'\n\n'"$(sed -n '/^budget per rank/,/^global/p' "$work/tune-$m.log" | grep -v '^\[')"$'\n'
  for b in 32 "$B"; do
    lr=$(awk -v l="$lr32" -v b="$b" 'BEGIN { printf "%.5g", l * b / 32 }')
    warm=$(awk -v w="$warm32" -v b="$b" 'BEGIN { printf "%.3g", (b > 32) ? 2 * w : w }')
    dir="$work/$m-b$b"
    if [ ! -f "$dir/results.json" ]; then
      "$dptrain" train "${margs[@]}" "${common[@]}" --batch "$b" --lr "$lr" --warmup-epochs "$warm" \
        --out "$dir" > "$dir.log" 2>&1
    fi
    mkdir -p "$dir/test"
    "$dptrain" eval --weights "$dir/model.safetensors" --data "$data/test-*.h5" --out "$dir/test" \
      > "$dir/test.log" 2>&1
    runs+=("$dir")
  done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo "# Batch 32 vs the batch tune-batch finds (CPU)"
  echo
  echo "Reproduce: \`MODELS=\"$models\" COUNT=$count EPOCHS=$epochs BUDGET=$budget bench/batch_study.sh $build\`"
  echo
  echo "Machine: $cpu, $(nproc) cores, $threads threads, 1 rank; $(date -u '+%Y-%m-%d %H:%M UTC');"
  echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared with other jobs)."
  echo "Data: $count synthetic shopsight5 images (\`dptrain data synth\`), train/val/test split by the tool;"
  echo "augmentation: --augment-policy auto (the shards say defects: native-scale crops and flips; --jitter 0.2 applies to no class under defects); class weights auto; SGD momentum 0.9, cosine"
  echo "schedule, $epochs epochs for both batches (the same images seen). The model written is the best"
  echo "by val macro-F1; test macro-F1 is that model on the test split."
  echo
  echo "LR rule: linear scaling with warmup (lr = $lr32 x batch / 32; warmup $warm32 epoch at batch 32, twice"
  echo "that above it), the rule for SGD with momentum (Goyal et al., 2017). For AdamW the rule would be"
  echo "sqrt scaling (its per-parameter normalisation already absorbs part of the gradient-noise change)."
  echo
  echo "GPU rows (ResNet-50 bf16 under a 24 GiB budget vs PyTorch's bisected batch): **not measured (no GPU)**."
  echo
  echo "## The batches found"
  printf "%s\n" "$tunes"
  echo
  echo "## Results"
  echo
} > "$out"
/usr/bin/python3 "$here/batch_study.py" "$out" "${runs[@]}"
cat "$out"
