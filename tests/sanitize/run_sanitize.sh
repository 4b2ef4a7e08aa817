#!/usr/bin/env bash
# Builds the whole project with -DDPTRAIN_SANITIZE=ON (AddressSanitizer +
# UndefinedBehaviorSanitizer, the default compiler) in its own build directory
# and runs the default test suite under it. UBSan findings abort the test
# (-fno-sanitize-recover); LeakSanitizer reports our leaks, with the known
# ones of system libraries (Open MPI, hwloc, ...) suppressed in lsan.supp.
#
# usage: tests/sanitize/run_sanitize.sh [extra ctest args]   (SAN_BUILD_DIR=build-asan)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${SAN_BUILD_DIR:-build-asan}
t0=$(date +%s)
mkdir -p "$B"
cmake -S . -B "$B" -DDPTRAIN_SANITIZE=ON -DDPTRAIN_WERROR=ON -DDPTRAIN_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >"$B/configure.log" 2>&1 || { cat "$B/configure.log"; exit 2; }
cmake --build "$B" -j"$(nproc)" >"$B/build.log" 2>&1 || { tail -60 "$B/build.log"; exit 2; }
t1=$(date +%s)
echo "run_sanitize: built in $((t1 - t0)) s ($B)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
SUPP="$(pwd)/tests/sanitize/lsan.supp"
# Leak stacks through system libraries built without frame pointers need the
# slow unwinder, and Open MPI must keep its plugins loaded (no dlclose at
# MPI_Finalize), or their frames print as "<unknown module>" and cannot be
# matched by the suppressions.
export OMPI_MCA_mca_base_component_disable_dlclose=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:strict_string_checks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SUPP:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
ctest --test-dir "$B" --output-on-failure -j"$(nproc)" -LE "gpu|bundle" "$@"   # bundle: packaging, not our code under the sanitizers
rc=$?
set -e
echo "run_sanitize: tests took $(( $(date +%s) - t1 )) s, exit $rc"
exit $rc
