#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined,
# in their own build directory) and runs each for N seconds.
#
# usage: tests/fuzz/run_fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#   SECONDS_PER_TARGET  default 60 (CI); targets default: safetensors config csv decode shard
# environment:
#   FUZZ_BUILD_DIR   build directory (default build-fuzz)
#   FUZZ_JOBS        parallel fuzzing processes per target (default 1; libFuzzer -fork=N)
#   FUZZ_RSS_MB      libFuzzer -rss_limit_mb (default 2048)
#   FUZZ_LIB_HANG_TARGETS  targets that drive libhdf5 (default "shard"): fuzzed in fork
#                    mode past crashes and timeouts; each finding is replayed, and one
#                    that crashes inside libhdf5 (innermost frame) or hangs is reported
#                    in lib_findings/ without failing the run, anything else fails it.
#                    ASan reports from interceptors called inside libhdf5 are suppressed
#                    (tests/fuzz/asan_hdf5.supp). libhdf5 1.10.8 itself crashes or hangs
#                    on some damaged files, h5py included (see tests/fuzz/README.md)
#   CC / CXX         clang-14 / clang++-14 by default
#
# Layout under $FUZZ_BUILD_DIR/fuzz/:
#   seeds/<t>/    the seed corpus, made fresh by fuzz_make_seeds (as the test does)
#   corpus/<t>/   the growing corpus (kept between runs, so a longer campaign resumes)
#   crashes/<t>/  crash-*, leak-*, timeout-*, oom-* reproducers written by libFuzzer
#   logs/<t>.log  libFuzzer's output; the last line of each run's stats is summarised
# Exit status: 0 when no target crashed, 1 otherwise (the reproducers are listed).
# A reproducer, once fixed, goes to tests/fuzz/regress/<t>/ so ctest replays it.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
shift || true
TARGETS=${*:-safetensors config csv decode shard}
B=${FUZZ_BUILD_DIR:-build-fuzz}
CC=${CC:-clang-14}
CXX=${CXX:-clang++-14}
JOBS=${FUZZ_JOBS:-1}
RSS=${FUZZ_RSS_MB:-2048}
command -v "$CC" >/dev/null || { echo "run_fuzz: $CC not found (apt-get install clang-14 libclang-rt-14-dev)"; exit 2; }

t0=$(date +%s)
mkdir -p "$B"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O2"
cmake -S . -B "$B" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DDPTRAIN_CUDA=OFF -DDPTRAIN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $SAN" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >"$B/configure.log" 2>&1 \
  || { cat "$B/configure.log"; exit 2; }
targets=""
for t in $TARGETS; do targets="$targets fuzz_$t"; done
cmake --build "$B" -j"$(nproc)" --target fuzz_make_seeds $targets >"$B/build.log" 2>&1 || { tail -50 "$B/build.log"; exit 2; }
t1=$(date +%s)
echo "run_fuzz: built in $((t1 - t0)) s ($B)"

F="$B/fuzz"
mkdir -p "$F/logs"
rm -rf "$F/seeds"
# The seed maker is itself instrumented; leaks in it are not what we fuzz.
ASAN_OPTIONS=detect_leaks=0 "$B/tests/fuzz/fuzz_make_seeds" "$F/seeds" >/dev/null
export HDF5_USE_FILE_LOCKING=FALSE
# UBSan reports abort (-fno-sanitize-recover); print stacks for both sanitizers.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/fuzz/lsan.supp:print_suppressions=0}
status=0
total=0
printf "%-12s %12s %10s %8s %s\n" target execs exec/s crashes corpus   # corpus: inputs kept
for t in $TARGETS; do
  mkdir -p "$F/corpus/$t" "$F/crashes/$t"
  extra=""
  tmo=20
  lib_hang=0
  case " ${FUZZ_LIB_HANG_TARGETS-shard} " in *" $t "*) lib_hang=1 ;; esac
  # Fork mode keeps fuzzing past a timeout (-ignore_timeouts); the hang is
  # still saved as a timeout-* reproducer and listed below.
  if [ "$JOBS" -gt 1 ] || [ "$lib_hang" = 1 ]; then
    extra="-fork=$JOBS -ignore_crashes=$lib_hang -ignore_ooms=$lib_hang -ignore_timeouts=$lib_hang"
    [ "$lib_hang" = 1 ] && tmo=5
  fi
  # The same targets' ASan reports from inside libhdf5 (not instrumented, not
  # ours) are suppressed: tests/fuzz/asan_hdf5.supp.
  asan="$ASAN_OPTIONS"
  [ "$lib_hang" = 1 ] && asan="$ASAN_OPTIONS:suppressions=$(pwd)/tests/fuzz/asan_hdf5.supp"
  set +e
  ASAN_OPTIONS="$asan" "$B/tests/fuzz/fuzz_$t" "$F/corpus/$t" "$F/seeds/$t" -max_total_time="$SECS" -timeout=$tmo -rss_limit_mb="$RSS" \
    -artifact_prefix="$F/crashes/$t/" -print_final_stats=1 $extra >"$F/logs/$t.log" 2>&1
  rc=$?
  set -e
  execs=$({ grep -E "stat::number_of_executed_units" "$F/logs/$t.log" || true; } | awk '{s += $2} END {print s + 0}')
  rate=$({ grep -E "stat::average_exec_per_sec" "$F/logs/$t.log" || true; } | awk '{s += $2} END {print s + 0}')
  if [ -n "$extra" ]; then   # fork mode prints no final stats: the last "#N" status line counts
    execs=$({ grep -oE "^#[0-9]+" "$F/logs/$t.log" || true; } | tail -1 | tr -d '#')
    execs=${execs:-0}
    rate=$((execs / (SECS > 0 ? SECS : 1)))
  fi
  if [ "$lib_hang" = 1 ]; then
    # Each saved input is replayed (10 s limit): one whose crash has its
    # innermost frame inside libhdf5, or that hangs, is a library finding
    # (listed in lib_findings/, not failing); anything else is ours and fails.
    mkdir -p "$F/lib_findings/$t"
    ours=0 nlib=0
    set +e
    for r in $(find "$F/crashes/$t" -type f); do
      # A deep allocation stack: an out-of-memory report otherwise shows only
      # libFuzzer's frames, not the library call that asked for the memory.
      out=$(ASAN_OPTIONS="$asan:malloc_context_size=30" timeout 10 "$B/tests/fuzz/fuzz_$t" -rss_limit_mb="$RSS" "$r" 2>&1)
      rrc=$?
      # The innermost frame in libhdf5 or in our sources (libc, the allocator,
      # the sanitizers and libFuzzer sit in between and do not decide).
      frame=$(echo "$out" | grep -E "^ *#[0-9]+ " | grep -E "libhdf5|$(pwd)/(src|data|tests)/[^ ]*\.c:" | head -1)
      if [ "$rrc" -eq 124 ] || echo "$frame" | grep -q "libhdf5"; then
        nlib=$((nlib + 1))
        echo "run_fuzz: $t: inside libhdf5 (reported, not failing): $(basename "$r"): ${frame:-hangs > 10 s}" |
          sed 's/(BuildId[^)]*)//' >>"$F/logs/$t.lib_findings"
        mv "$r" "$F/lib_findings/$t/"
      elif [ "$rrc" -eq 0 ]; then
        mv "$r" "$F/lib_findings/$t/"   # does not reproduce alone (state accumulated in the run): kept for a look
      else
        ours=1
        echo "run_fuzz: $t: OURS: $r"; echo "$out" | grep -E "ERROR|SUMMARY|^ *#[0-9] " | head -8
      fi
    done
    set -e
    [ "$nlib" -gt 0 ] && echo "run_fuzz: $t: $nlib finding(s) inside libhdf5, see $F/logs/$t.lib_findings"
    [ "$ours" = 0 ] && rc=0   # fork mode exits non-zero for the findings it ignored
  fi
  crashes=$(find "$F/crashes/$t" -type f | wc -l)
  ncorp=$(find "$F/corpus/$t" -type f | wc -l)
  printf "%-12s %12s %10s %8s %s\n" "$t" "$execs" "$rate" "$crashes" "$ncorp"
  total=$((total + execs))
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    echo "run_fuzz: $t exited $rc; reproducers:"; find "$F/crashes/$t" -type f | sed 's/^/  /'
    grep -E "ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error|SUMMARY" "$F/logs/$t.log" | head -5 || true
  fi
done
echo "run_fuzz: $total executions in total, $(( $(date +%s) - t1 )) s of fuzzing; logs in $F/logs"
exit $status
