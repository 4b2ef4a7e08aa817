#!/bin/sh
# synth reproducibility: the same seed gives byte-identical shards and truth
# file with 1 and 2 threads; another seed gives different bytes.
# usage: synth_repro.sh DPTRAIN WORKDIR
set -eu
D="$1"; W="$2/synth_repro"
rm -rf "$W"; mkdir -p "$W"
for p in shopsight5 shoplens12; do
  "$D" data synth --preset $p --count 400 --shard-size 150 --seed 11 --threads 1 --out "$W/$p-a" >/dev/null 2>&1
  "$D" data synth --preset $p --count 400 --shard-size 150 --seed 11 --threads 2 --out "$W/$p-b" >/dev/null 2>&1
  "$D" data synth --preset $p --count 400 --shard-size 150 --seed 12 --threads 2 --out "$W/$p-c" >/dev/null 2>&1
  n=0
  for f in "$W/$p-a"/*; do
    b=$(basename "$f")
    cmp "$f" "$W/$p-b/$b" || { echo "FAIL: $p $b differs between 1 and 2 threads"; exit 1; }
    n=$((n + 1))
  done
  [ "$n" -ge 5 ] || { echo "FAIL: $p: only $n files"; exit 1; }
  [ "$(ls "$W/$p-a" | wc -l)" = "$(ls "$W/$p-b" | wc -l)" ] || { echo "FAIL: $p file count"; exit 1; }
  if cmp -s "$W/$p-a/train-00000.h5" "$W/$p-c/train-00000.h5"; then
    echo "FAIL: $p seeds 11 and 12 gave identical shards"; exit 1
  fi
  echo "$p: $n files identical across thread counts; another seed differs"
done
rm -rf "$W"
