#!/bin/bash
# Training step, dptrain vs PyTorch 1.13 side by side in one run (forward +
# backward + SGD step, random fixed batch, 2 threads, median step), with
#   * the training speed of dptrain with the lifetime-planned arena ("new")
#     and with the previous arena ("old": OLD_BENCH=path/to/an old bench_train
#     binary, else this binary's --plan flat --no-recompute), alternating
#     new/old REPEATS times so load on the shared machine hits both alike
#     (each side's best median counts);
#   * peak training memory: dptrain planned and measured (peak RSS growth),
#     PyTorch NCHW and channels_last measured the same way (one process per
#     layout).
# Default models: resnet50 224 px, resnet18 224 px, vit_b16 224 px, cnn 128 px, batch 32.
# Writes bench/results/train_cpu.md (tables + the command that produced it).
# usage: bench/bench_train.sh [BUILD_DIR] [WARMUP] [STEPS]
#   env: THREADS (2), BATCH (32), CONFIGS ("model:px ..."), OUT (results file),
#        REPEATS (2), OLD_BENCH (old bench_train binary), MIN_FREE_MIB (3x the plan)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
warmup=${2:-1}
steps=${3:-3}
threads=${THREADS:-2}
batch=${BATCH:-32}
repeats=${REPEATS:-2}
out=${OUT:-$here/results/train_cpu.md}
old_bench=${OLD_BENCH:-}
mkdir -p "$here/results"
export OMP_NUM_THREADS=$threads

configs=${CONFIGS:-"resnet50:224 resnet18:224 vit_b16:224 cnn:128"}
speed_rows=""
mem_rows=""
log=""
best() { printf "%s\n" "$@" | awk 'NF { if ($1 > b) b = $1 } END { print b + 0 }'; }
avail_mib() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }

for c in $configs; do
  m=${c%%:*}
  s=${c##*:}
  plan=$("$build/dptrain" info --model "$m" --image-size "$s" --batch "$batch" --classes 1000 --no-summary |
         awk '/^  total/ { print int($2) }')
  need=${MIN_FREE_MIB:-$((3 * plan))}   # the old arena needs about 3x the new plan
  if [ "$(avail_mib)" -lt "$need" ]; then
    echo "bench_train.sh: $m needs ~$need MiB free (plan $plan MiB), $(avail_mib) MiB available: skipped" >&2
    continue
  fi
  args=(--model "$m" --image-size "$s" --batch "$batch" --threads "$threads" --warmup "$warmup" --steps "$steps")
  new_rates=()
  old_rates=()
  new_out=""
  old_out=""
  for r in $(seq 1 "$repeats"); do
    o=$("$build/bench/bench_train" "${args[@]}")
    echo "$o"
    new_out="$o"
    new_rates+=("$(echo "$o" | awk '/^RESULT dptrain/ { print $4 }')")
    if [ -n "$old_bench" ]; then
      o=$("$old_bench" "${args[@]}")
    else
      o=$("$build/bench/bench_train" "${args[@]}" --plan flat --no-recompute)
    fi
    echo "$o"
    old_out="$o"
    old_rates+=("$(echo "$o" | awk '/^RESULT dptrain/ { print $4 }')")
  done
  log="$log$new_out"$'\n'"$old_out"$'\n'
  tn=""; tc=""; tmn=""; tmc=""
  for layout in nchw cl; do
    t=$(/usr/bin/python3 "$here/torch_train.py" "$m" --image-size "$s" --batch "$batch" --threads "$threads" \
          --warmup "$warmup" --steps "$steps" --layouts "$layout")
    echo "$t"
    log="$log$t"$'\n'
    rate=$(echo "$t" | awk '/^RESULT torch_/ { print $4 }')
    mem=$(echo "$t" | awk '/^MEMORY torch_/ { print $4 }')
    if [ "$layout" = nchw ]; then tn=$rate; tmn=$mem; else tc=$rate; tmc=$mem; fi
  done
  new=$(best "${new_rates[@]}")
  old=$(best "${old_rates[@]}")
  mplan=$(echo "$new_out" | awk '/^MEMORY dptrain/ { print $4 }')
  mmeas=$(echo "$new_out" | awk '/^MEMORY dptrain/ { print $5 }')
  oplan=$(echo "$old_out" | awk '/^MEMORY dptrain/ { print $4 }')
  omeas=$(echo "$old_out" | awk '/^MEMORY dptrain/ { print $5 }')
  tbest=$(awk -v a="$tn" -v b="$tc" 'BEGIN { print (a > b) ? a : b }')
  mbest=$(awk -v a="$tmn" -v b="$tmc" 'BEGIN { print (a < b) ? a : b }')
  speed_rows="$speed_rows| $m | $s | $batch | $new | $old | $(awk -v n="$new" -v o="$old" 'BEGIN { printf "%+.1f %%", 100 * (o / n - 1) }') | $tn | $tc | $(awk -v o="$new" -v b="$tbest" 'BEGIN { printf "%.2fx", o / b }') |"$'\n'
  mem_rows="$mem_rows| $m | $s | $batch | $mplan / $mmeas | $(awk -v p="$mplan" -v q="$mmeas" 'BEGIN { printf "%+.1f %%", 100 * (q - p) / p }') | $oplan / $omeas | $tmn | $tmc | **$(awk -v a="$mmeas" -v b="$mbest" 'BEGIN { printf "%.2fx", a / b }')** |"$'\n'
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo "# Training on the CPU: dptrain vs PyTorch, speed and peak memory"
  echo
  echo "Forward + backward + SGD step (momentum 0.9, wd 1e-4) on a fixed random batch, 1000 classes,"
  echo "$threads threads, median of $steps timed steps after $warmup warmup step(s); dptrain new/old alternate"
  echo "$repeats times and each side's best median counts."
  echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (Debian), same oneDNN; one process per layout."
  echo "\"old\": ${old_bench:-this build with --plan flat --no-recompute (every tensor, gradient and extra for the whole step)}."
  echo
  echo "Machine: $cpu, $(nproc) cores visible; $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share these cores)."
  echo
  echo "Command: \`THREADS=$threads BATCH=$batch REPEATS=$repeats CONFIGS=\"$configs\"${old_bench:+ OLD_BENCH=$old_bench} bench/bench_train.sh $build $warmup $steps\`"
  echo
  echo "## Speed (img/s)"
  echo
  echo "| model | px | batch | dptrain new | dptrain old | step time new vs old | torch NCHW | torch channels_last | new vs best torch |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$speed_rows"
  echo
  echo "## Peak training memory (MiB; measured = peak RSS growth of the process)"
  echo
  echo "| model | px | batch | dptrain planned / measured | measured vs plan | dptrain old planned / measured | torch NCHW | torch channels_last | dptrain / best torch |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$mem_rows"
  echo
  echo "Raw output (the last repeat of each dptrain side):"
  echo '```'
  printf "%s" "$log"
  echo '```'
} > "$out"
echo
cat "$out"
