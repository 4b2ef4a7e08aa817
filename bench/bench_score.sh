#!/bin/bash
# CPU scoring throughput of `dptrain score`, 1 and 2 ranks, against a PyTorch 1.13
# peer in the same run (bench/score_peer.py: the torch twin with PIL decode and the
# exact eval transform, one process, the same thread count).
#   baseline CNN 128 px and ResNet-50 224 px, random weights (tests/export/export_helper),
#   5 classes, synthetic shopsight5 photos 240-400 px (dptrain data synth, 2 % corrupt).
# Writes bench/results/score_cpu.md (table, load average, commands).
# usage: bench/bench_score.sh [BUILD_DIR]
#   env: N_CNN (512), N_R50 (96), THREADS (2: cores for 1 rank; 2 ranks get 1 each),
#        WORK (/tmp/dptrain_bench_score), OUT (results file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
n_cnn=${N_CNN:-512}
n_r50=${N_R50:-96}
threads=${THREADS:-2}
work=${WORK:-/tmp/dptrain_bench_score}
out=${OUT:-$here/results/score_cpu.md}
helper=$build/tests/export/export_helper
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work" "$here/results"

setmeta() {   # the shards' class names into a weights file's metadata
  /usr/bin/python3 - "$1" <<'EOF'
import json, struct, sys
p = sys.argv[1]; b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
h["__metadata__"]["dptrain.class_names"] = "ok\nblurry\nwrong_background\nwatermark\nduplicate"
hj = json.dumps(h).encode(); hj += b" " * ((8 - len(hj) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(hj)) + hj + b[8 + n:])
EOF
}

rows=""
log=""
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# model:px:images:batch (ResNet-50 at 16: the graph holds its training memory plan, ~4 GB per rank)
for cfg in "cnn:128:$n_cnn:32" "resnet50:224:$n_r50:16"; do
  IFS=: read -r m s n batch <<<"$cfg"
  d=$work/$m
  rm -rf "$d"
  "$build/dptrain" data synth --preset shopsight5 --count "$n" --out "$d/data" --val-frac 0.01 --test-frac 0.01 \
    --shard-size 256 --threads "$threads" >/dev/null
  "$helper" init --model "$m" --image-size "$s" --channels 3 --classes 5 --seed 1 --out "$d/w.safetensors" >/dev/null
  setmeta "$d/w.safetensors"
  one=$(OMP_NUM_THREADS=$threads "$build/dptrain" score --weights "$d/w.safetensors" --data "$d/data/train-*.h5" \
          --out "$d/p1.csv" --batch "$batch" 2>&1 | grep '^scored')
  two=$(mpirun -np 2 --bind-to none "$build/dptrain" score --weights "$d/w.safetensors" --data "$d/data/train-*.h5" \
          --out "$d/p2.csv" --batch "$batch" 2>&1 | grep '^scored')
  cmp -s "$d/p1.csv" "$d/p2.csv" && same=identical || same=DIFFERENT
  peer=$(/usr/bin/python3 "$here/score_peer.py" "$d/w.safetensors" "$d/data/train-*.h5" --batch "$batch" \
           --threads "$threads" | grep '^RESULT')
  echo "$m $s: 1 rank: $one"
  echo "$m $s: 2 ranks: $two"
  echo "$m $s: peer: $peer"
  log="$log$m $s px, 1 rank: $one"$'\n'"$m $s px, 2 ranks: $two"$'\n'"$m $s px, peer: $peer"$'\n'
  o1=$(echo "$one" | sed -E 's/.* ([0-9.]+) img\/s \(([0-9.]+) img\/s after.*/\1 \2/')
  o2=$(echo "$two" | sed -E 's/.* ([0-9.]+) img\/s \(([0-9.]+) img\/s after.*/\1 \2/')
  read -r a1 s1 <<<"$o1"
  read -r a2 s2 <<<"$o2"
  read -r _ _ pn pe pf <<<"$peer"
  ratio=$(awk -v o="$a1" -v p="$pe" 'BEGIN { printf "%.2f", o / p }')
  rows="$rows| $m | $s | $n | $batch | $a1 ($s1) | $a2 ($s2) | $pe | $pf | ${ratio}x | $same |"$'\n'
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
{
  echo "# dptrain score: CPU throughput (bench/bench_score.sh)"
  echo
  echo "$(date -u +%Y-%m-%d), $cpu, $(nproc) CPUs online, load average at start $load0, at end $load1 (machine shared"
  echo "with other jobs). Random weights, 5 classes, synthetic 240-400 px JPEGs (2 % corrupt:"
  echo "error rows, not counted). dptrain: whole scoring loop (HDF5 read, TurboJPEG decode, resize + crop +"
  echo "normalise, forward, top-3 rows), in parentheses after the first batch; 1 rank = $threads threads, 2 ranks = 1"
  echo "core each (mpirun on this machine). Peer: torch 1.13 twin, PIL decode + the exact eval transform, same"
  echo "$threads threads, records already in memory; its forward-only rate is the compute ceiling of the twin."
  echo
  echo "| model | px | images | batch/rank | dptrain 1 rank img/s | dptrain 2 ranks img/s | torch end to end | torch forward only | dptrain 1 rank / torch | 1 vs 2 ranks CSV |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$rows"
  echo
  echo '```'
  printf "%s" "$log"
  echo '```'
} >"$out"
cat "$out"
