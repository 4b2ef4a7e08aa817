#!/bin/sh
# expect_fail.sh LIMIT_S PATTERN CMD...: CMD must exit non-zero within LIMIT_S
# seconds (not by the timeout) and print PATTERN (grep -E).
limit=$1; pattern=$2; shift 2
out=$(mktemp)
start=$(date +%s)
timeout "$limit" "$@" >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$out"
fail=0
if [ "$rc" -eq 0 ]; then echo "FAIL: expected a non-zero exit"; fail=1; fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "FAIL: timed out after ${limit}s (job hung)"; fail=1; fi
if ! grep -Eq "$pattern" "$out"; then echo "FAIL: output lacks /$pattern/"; fail=1; fi
rm -f "$out"
[ "$fail" -eq 0 ] && echo "ok: exit $rc after ${elapsed}s with the expected message"
exit $fail
