#!/bin/bash
# Training-speed benchmark, dptrain vs PyTorch 1.13 side by side in one run
# (forward + backward + SGD step, random fixed batch, 2 threads, median step):
#   resnet50 224 px b32, resnet18 224 px b32, cnn 128 px b32.
# Writes bench/results/train_cpu.md (table + the command that produced it).
# usage: bench/bench_train.sh [BUILD_DIR] [WARMUP] [STEPS]
#   quick run: bench/bench_train.sh build 2 3
#   env: THREADS (2), BATCH (32), CONFIGS ("model:px ..."), OUT (results file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
warmup=${2:-2}
steps=${3:-5}
threads=${THREADS:-2}
batch=${BATCH:-32}
out=${OUT:-$here/results/train_cpu.md}
mkdir -p "$here/results"
export OMP_NUM_THREADS=$threads

configs=${CONFIGS:-"resnet50:224 resnet18:224 cnn:128"}
rows=""
log=""
for c in $configs; do
  m=${c%%:*}
  s=${c##*:}
  ours=$("$build/bench/bench_train" --model "$m" --image-size "$s" --batch "$batch" --threads "$threads" \
           --warmup "$warmup" --steps "$steps")
  torch=$(/usr/bin/python3 "$here/torch_train.py" "$m" --image-size "$s" --batch "$batch" --threads "$threads" \
           --warmup "$warmup" --steps "$steps")
  echo "$ours"
  echo "$torch"
  log="$log$ours"$'\n'"$torch"$'\n'
  o=$(echo "$ours" | awk '/^RESULT dptrain/ { print $4 }')
  mplan=$(echo "$ours" | awk '/^MEMORY dptrain/ { print $4 }')
  mmeas=$(echo "$ours" | awk '/^MEMORY dptrain/ { print $5 }')
  tn=$(echo "$torch" | awk '/^RESULT torch_nchw/ { print $4 }')
  tc=$(echo "$torch" | awk '/^RESULT torch_cl/ { print $4 }')
  best=$(awk -v a="$tn" -v b="$tc" 'BEGIN { print (a > b) ? a : b }')
  ratio=$(awk -v o="$o" -v b="$best" 'BEGIN { printf "%.2f", o / b }')
  rows="$rows| $m | $s | $batch | $o | $tn | $tc | ${ratio}x | $mplan / $mmeas |"$'\n'
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo "# Training speed on the CPU: dptrain vs PyTorch"
  echo
  echo "Forward + backward + SGD step (momentum 0.9, wd 1e-4) on a fixed random batch,"
  echo "$threads threads, median of $steps timed steps after $warmup warmup steps."
  echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (Debian), same oneDNN; best of NCHW and channels_last is the ratio's base."
  echo
  echo "Machine: $cpu, $(nproc) cores visible; $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share these cores)."
  echo
  echo "Command: \`THREADS=$threads BATCH=$batch CONFIGS=\"$configs\" bench/bench_train.sh $build $warmup $steps\`"
  echo
  echo "| model | px | batch | dptrain img/s | torch NCHW img/s | torch channels_last img/s | ratio | dptrain memory MiB planned / measured |"
  echo "|---|---|---|---|---|---|---|---|"
  printf "%s" "$rows"
  echo
  echo "Raw output:"
  echo '```'
  printf "%s" "$log"
  echo '```'
} > "$out"
echo
cat "$out"
