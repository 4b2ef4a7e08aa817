#!/usr/bin/env bash
# Everything the GPU machine has to run, from the unpacked bundle, in <= 8 min
# (issue 15). Writes logs and a results table to $OUT (or --out DIR) and prints
# the table last.
#
#   ./run_all.sh [--out DIR] [--quick | --stages LIST] [--budget SECONDS]
#     --quick          probe + tests only (about 2 minutes)
#     --stages LIST    comma list of: probe, tests, train, bench, tune
#                      (default: all, in that order)
#     --budget S       hard deadline for the whole run (default 470 s); a
#                      step that would start past it is skipped and reported
#   PYTHON=python3     the interpreter with PyTorch 2.11 (the peer)
#
# Stages:
#   probe  GPU, driver, the libraries the launcher found, torch's versions
#   tests  the bundle's GPU tests (tests.tsv: every ctest labelled gpu and the
#          tests/gpu unit tests); test_gpu_nccl also with 2 ranks when 2 GPUs exist
#   train  dptrain data synth + a 200-step `train --device cuda` with evaluation
#   bench  ResNet-50 bf16 224^2 b256 synthetic vs PyTorch eager (channels_last +
#          autocast) and torch.compile; ViT-B/16 bf16 vs PyTorch (SDPA);
#          ResNet-50 on the real input path (HDF5 shards of 224-400 px JPEGs,
#          16 loader threads) vs synthetic; MFU and planned vs measured memory
#   tune   largest batch under 24 GiB: `dptrain tune-batch` (only if this binary
#          has that subcommand) vs PyTorch bisection
# Files: OUT/results.tsv (one row per step), OUT/results.md (the table),
#        OUT/logs/<step>.log.
set -uo pipefail
B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$PWD/dptrain-gpu-results}
STAGES=probe,tests,train,bench,tune
BUDGET=470
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --quick) STAGES=probe,tests; shift ;;
    --stages) STAGES=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    -h|--help) sed -n 2,29p "$0"; exit 0 ;;
    *) echo "run_all: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/logs" "$OUT/data"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
DP=$B/dp
TSV=$OUT/results.tsv
: >"$TSV"
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET))
NCPU=$(nproc 2>/dev/null || echo 16)
LOADERS=$(( NCPU < 16 ? NCPU : 16 ))
FAILS=0
has_stage() { case ",$STAGES," in *",$1,"*) return 0 ;; esac; return 1; }
now() { date +%s; }

# row stage item status seconds json note
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" >>"$TSV"; }

# run NAME CAP_S MIN_S cmd...: runs with a timeout of min(CAP, time left),
# skips when less than MIN is left. Sets RC, SECS, LOG; returns RC.
run() {
  local name=$1 cap=$2 min=$3 left t0
  shift 3
  LOG=$OUT/logs/$name.log
  left=$((DEADLINE - $(now)))
  if [ "$left" -lt "$min" ]; then
    RC=124; SECS=0
    echo "run_all: skip $name: ${left}s left of the budget, it needs ${min}s" | tee "$LOG" >&2
    return 125
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "run_all: [$(( $(now) - T0 ))s] $name (timeout ${cap}s)" >&2
  t0=$(now)
  timeout --kill-after=10 "$cap" "$@" >"$LOG" 2>&1
  RC=$?
  SECS=$(( $(now) - t0 ))
  [ "$RC" = 124 ] && echo "run_all: $name timed out after ${cap}s" >>"$LOG"
  return $RC
}
status_of() {   # rc -> word
  case $1 in 0) echo pass ;; 77) echo skip ;; 124|137) echo TIMEOUT ;; 125) echo "not run (budget)" ;; *) echo "FAIL (rc $1)" ;; esac
}
result_json() { sed -n 's/^RESULT_JSON //p' "$1" | tail -1; }
# The first error line of a log, for the table.
first_error() { grep -m1 -E 'FATAL|ERROR|Error|error:|"error"|Traceback|timed out' "$1" 2>/dev/null | cut -c1-240 | tr '\t|' '  '; }
note_fail() { case $1 in pass|skip) ;; *) FAILS=$((FAILS + 1)) ;; esac; }

# ---- 1. probe ------------------------------------------------------------------
GPUS=0
if has_stage probe; then
  if command -v nvidia-smi >/dev/null; then
    run nvidia_smi 20 5 nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
    GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    row probe nvidia-smi "$(status_of $RC)" "$SECS" "" "$GPUS GPU(s): $(sed -n 2p "$LOG" | tr '\t' ' ')"
  else
    row probe nvidia-smi "FAIL" 0 "" "nvidia-smi not found"
  fi
  run dp_probe 30 5 "$DP" --probe
  st=$(status_of $RC); note_fail "$st"
  row probe "bundle libraries" "$st" "$SECS" "" "$(grep -E '^dp-env: (found|driver|glibc|ERROR|WARNING)' "$LOG" |
    sed 's/^dp-env: //; s/^found [^ ]* -> \(.*\)\/[^/]* (\(.*\))$/\2 in \1/' | tr '\n\t' '; ')"
  if [ "$RC" != 0 ]; then
    echo "run_all: the launcher could not set up the bundle (see $LOG); nothing else can run" >&2
    STAGES=probe
  fi
  run torch_probe 60 10 "$PY" "$B/torch_bench.py" probe
  row probe "pytorch" "$(status_of $RC)" "$SECS" "$(result_json "$LOG")" "$(result_json "$LOG" | tr -d '{}"')"
fi
[ "$GPUS" = 0 ] && command -v nvidia-smi >/dev/null && GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')

# ---- 2. GPU tests ---------------------------------------------------------------
if has_stage tests; then
  while IFS=$'\t' read -r name exe timeout labels args; do
    [ -z "$name" ] && continue
    cap=$(( timeout < 150 ? timeout : 150 ))
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$LOADERS run "$name" "$cap" 10 "$DP" "$exe" $args
    st=$(status_of $RC)
    # On a machine with a GPU, a GPU test that skips did not test anything.
    case ",$labels," in *,gpu,*) [ "$st" = skip ] && [ "$GPUS" -gt 0 ] && st="FAIL (skipped with $GPUS GPU(s) present)" ;; esac
    note_fail "$st"
    row tests "$name" "$st" "$SECS" "" "$(grep -E 'rel err|worst|FAIL|mismatch|SKIP|FATAL' "$LOG" | tail -3 | tr '\n\t|' ';  ' | cut -c1-300)"
  done <"$B/tests.tsv"
  if [ "$GPUS" -ge 2 ]; then
    run test_gpu_nccl_2ranks 120 20 "$DP" mpirun -np 2 "$DP" test_gpu_nccl
    st=$(status_of $RC); note_fail "$st"
    row tests "test_gpu_nccl (2 ranks)" "$st" "$SECS" "" ""
  else
    row tests "test_gpu_nccl (2 ranks)" "not run" 0 "" "needs 2 GPUs ($GPUS here)"
  fi
fi

# ---- 3. a 200-step training run on synthetic shards made here ---------------------
if has_stage train; then
  D=$OUT/data/small
  if run synth_small 60 10 "$DP" dptrain data synth --preset shopsight5 --count 4000 --out "$D" \
       --size-min 64 --size-max 128 --threads "$NCPU"; then
    run train200 150 30 "$DP" dptrain train --model resnet18 --image-size 64 --batch 128 --steps 200 \
      --device cuda --train "$D/train-*.h5" --val "$D/val-*.h5" --out "$OUT/train200" \
      --loader-threads "$LOADERS" --log-every 20 --max-skip-rate 0.05 --lr 0.05 --warmup-steps 20
    st=$(status_of $RC); note_fail "$st"
    note=$("$PY" - "$OUT/train200/results.json" "$LOG" <<'PY' 2>/dev/null
import json, re, sys
r = json.load(open(sys.argv[1]))
losses = [float(m) for m in re.findall(r"step \d+/\d+ loss ([0-9.eE+-]+|nan|inf)", open(sys.argv[2]).read())]
t = r.get("throughput", {})
print("%.0f img/s, precision %s, loss %s -> %s, val acc %s, macro-F1 %s" % (
    r.get("images_per_s") or 0, r.get("hardware", {}).get("precision"),
    losses[0] if losses else "?", losses[-1] if losses else "?", r.get("accuracy"), r.get("macro_f1")))
PY
)
    [ "$RC" != 0 ] && note=$(first_error "$LOG")
    row train "resnet18 64px b128, 200 steps, --device cuda" "$st" "$SECS" "" "${note:-see logs/train200.log}"
  else
    row train "data synth (4000 images)" "$(status_of $RC)" "$SECS" "" "see logs/synth_small.log"; note_fail FAIL
  fi
fi

# ---- 4. benchmark against PyTorch on this GPU --------------------------------------
bench_row() {   # item [note]: status and the RESULT_JSON of $LOG
  local st note=${2:-}
  st=$(status_of $RC); note_fail "$st"
  [ "$RC" != 0 ] && note=$(first_error "$LOG")
  row bench "$1" "$st" "$SECS" "$(result_json "$LOG")" "$note"
}
if has_stage bench; then
  run r50_dptrain_bf16 90 20 "$DP" bench_train --model resnet50 --device cuda --precision bf16 --batch 256 \
    --warmup 5 --steps 20
  bench_row "resnet50 bf16 b256 synthetic: dptrain"
  run r50_torch_eager 90 25 "$PY" "$B/torch_bench.py" train --model resnet50 --mode eager --precision bf16 \
    --batch 256 --steps 20 --warmup 5
  bench_row "resnet50 bf16 b256 synthetic: pytorch eager channels_last+autocast"
  run vit_dptrain_bf16 90 20 "$DP" bench_train --model vit_b16 --device cuda --precision bf16 --batch 128 \
    --optimizer adamw --warmup 5 --steps 20
  bench_row "vit_b16 bf16 b128 synthetic: dptrain"
  run vit_torch_eager 90 25 "$PY" "$B/torch_bench.py" train --model vit_b_16 --mode eager --precision bf16 \
    --batch 128 --steps 20 --warmup 5
  bench_row "vit_b_16 bf16 b128 synthetic: pytorch eager (SDPA)"
  # Real input path: JPEG shards 224-400 px made here, 16 loader threads.
  J=$OUT/data/jpeg
  if run synth_jpeg 60 15 "$DP" dptrain data synth --preset shopsight5 --count 6144 --out "$J" \
       --size-min 224 --size-max 400 --val-frac 0 --test-frac 0 --corrupt-frac 0 --threads "$NCPU"; then
    run r50_real_input 120 40 "$DP" dptrain train --model resnet50 --image-size 224 --batch 256 --steps 40 \
      --device cuda --precision bf16 --train "$J/train-*.h5" --out "$OUT/r50_real" \
      --loader-threads "$LOADERS" --log-every 10 --max-skip-rate 0.05
    js=$("$PY" - "$OUT/r50_real/results.json" <<'PY' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
t = r.get("timings") or {}
print(json.dumps({"peer": "dptrain-real-input", "model": "resnet50", "precision": r["hardware"]["precision"],
                  "batch": r["config"]["batch"], "img_per_s": r["images_per_s"],
                  "step_s": t.get("step_s"), "data_wait_s": t.get("data_wait_s")}))
PY
)
    st=$(status_of $RC); note_fail "$st"
    note=$(grep -E 'time per step|GPU memory' "$LOG" | tr -s ' ' | tr '\n\t|' ';  ' | cut -c1-300)
    [ "$RC" != 0 ] && note=$(first_error "$LOG")
    row bench "resnet50 bf16 b256 real input (JPEG 224-400 px, $LOADERS loader threads): dptrain train" "$st" "$SECS" \
      "$js" "$note"
  else
    row bench "data synth (6144 JPEGs 224-400 px)" "$(status_of $RC)" "$SECS" "" "see logs/synth_jpeg.log"; note_fail FAIL
  fi
  run r50_torch_compile 180 60 "$PY" "$B/torch_bench.py" train --model resnet50 --mode compile --precision bf16 \
    --batch 256 --steps 20 --warmup 5
  bench_row "resnet50 bf16 b256 synthetic: torch.compile" "compile time is in warmup_s"
  # The default precision (tf32) for the record: bf16 becomes the default only when it is faster.
  run r50_dptrain_tf32 90 20 "$DP" bench_train --model resnet50 --device cuda --precision tf32 --batch 256 \
    --warmup 5 --steps 20
  bench_row "resnet50 tf32 b256 synthetic: dptrain"
fi

# ---- 5. largest batch under 24 GiB --------------------------------------------------
if has_stage tune; then
  # Marked stage: runs only when the binary has the batch-size finder (another
  # engineer is building `dptrain tune-batch`); its options may differ.
  if "$DP" dptrain tune-batch --help >"$OUT/logs/tune_help.log" 2>&1; then
    run tune_dptrain 90 20 "$DP" dptrain tune-batch --model resnet50 --image-size 224 --device cuda \
      --precision bf16 --memory-budget-gib 24
    row tune "resnet50 bf16 224px max batch under 24 GiB: dptrain tune-batch" "$(status_of $RC)" "$SECS" \
      "$(result_json "$LOG")" "$(tail -2 "$LOG" | tr '\n\t' '  ' | cut -c1-200)"
    run tune_torch 150 40 "$PY" "$B/torch_bench.py" max-batch --model resnet50 --precision bf16 --budget-gib 24
    row tune "resnet50 bf16 224px max batch under 24 GiB: pytorch bisection" "$(status_of $RC)" "$SECS" \
      "$(result_json "$LOG")" "$(result_json "$LOG" | tr -d '{}"')"
  else
    row tune "dptrain tune-batch" "not run" 0 "" "this binary has no tune-batch subcommand (logs/tune_help.log)"
  fi
fi

# ---- table -------------------------------------------------------------------------
TOTAL=$(( $(now) - T0 ))
row total "wall time" "$([ "$FAILS" = 0 ] && echo pass || echo "$FAILS failure(s)")" "$TOTAL" "" "stages $STAGES, budget ${BUDGET}s"
echo >&2
if ! "$PY" "$B/torch_bench.py" report "$TSV" --hardware "$B/share/dptrain/hardware.tsv" --md "$OUT/results.md"; then
  column -t -s $'\t' "$TSV" 2>/dev/null || cat "$TSV"
fi
[ "$FAILS" = 0 ]
