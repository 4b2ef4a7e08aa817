#!/usr/bin/env bash
# Mutation check (issue 10 §1): break the code on purpose, one mutation at a
# time, and show that at least one test fails for each.
#
# usage: tests/mutation/run_mutations.sh [--only NAME,NAME] [--keep] [--fixtures DIR] [--report FILE]
#   --only      run only these mutations (names from mutations.tsv)
#   --keep      keep the scratch tree (printed) instead of deleting it
#   --fixtures  take the model fixtures (models_*) from a build's fixture dir
#               (e.g. build/fixtures) instead of generating them again (saves
#               ~7 min on 2 cores; they must come from the same
#               tests/models/make_model_fixtures.py); the other fixtures are
#               always made afresh
#   --report    also write the table, with date, machine and command, as Markdown
#
# Never touches the working tree: the tracked and untracked (not ignored)
# files are copied to a scratch directory under ${TMPDIR:-/tmp}, built there
# with ccache (CUDA off), and every mutation is applied to, built and tested in
# that copy, then reverted.
#
# mutations.tsv: one mutation per line, tab-separated:
#   name  scope  find  replace  tests  what
# scope is a file or directory (searched recursively, *.c *.h *.cu); find is
# an exact string that must occur exactly once in scope (else the script
# stops: the target moved, update the table); replace replaces that string, or
# with a LINE: prefix the whole line (indentation kept). tests is a ctest -R
# regex: the tests that should catch it. Before any mutation the same tests
# must all pass on the unmutated copy.
#
# Exit status: 0 when every mutation applied, built and was caught by at least
# one test; 1 otherwise; 2 for bad usage.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TABLE="$HERE/mutations.tsv"
ONLY="" KEEP=0 FIXTURES="" REPORT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --fixtures) FIXTURES=$(cd "$2" && pwd); shift 2 ;;
    --report) REPORT="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run_mutations.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$REPORT" ] && case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac

JOBS=${JOBS:-2}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dptrain-mutation.XXXXXX")
TREE="$SCRATCH/tree" BUILD="$SCRATCH/build" LOGS="$SCRATCH/logs"
mkdir -p "$TREE" "$LOGS"
cleanup() { if [ "$KEEP" = 1 ]; then echo "scratch kept: $SCRATCH"; else rm -rf "$SCRATCH"; fi; }
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

log() { printf '[mutation %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---- the scratch copy and its baseline build ----------------------------------
log "copying $ROOT to $TREE"
(cd "$ROOT" && git ls-files -z -c -o --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$TREE"
log "configuring and building (log: $LOGS/build_baseline.log)"
cmake -S "$TREE" -B "$BUILD" -DDPTRAIN_WERROR=ON -DDPTRAIN_CUDA=OFF -DCMAKE_C_COMPILER_LAUNCHER=ccache \
  > "$LOGS/build_baseline.log" 2>&1
nice -n 10 cmake --build "$BUILD" -j"$JOBS" >> "$LOGS/build_baseline.log" 2>&1 ||
  { tail -30 "$LOGS/build_baseline.log"; echo "run_mutations.sh: the unmutated tree does not build" >&2; exit 1; }
if [ -n "$FIXTURES" ]; then
  log "copying the model fixtures from $FIXTURES"
  mkdir -p "$BUILD/fixtures"
  ls "$FIXTURES"/models_* > /dev/null 2>&1 || { echo "run_mutations.sh: no models_* in $FIXTURES" >&2; exit 2; }
  cp -a "$FIXTURES"/models_* "$BUILD/fixtures/"
fi

# ---- the table -----------------------------------------------------------------
NAMES=() SCOPES=() FINDS=() REPLS=() TESTS=() WHATS=()
while IFS=$'\t' read -r name scope find repl tests what; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ -n "$ONLY" ] && ! printf ',%s,' "$ONLY" | grep -qF ",$name,"; then continue; fi
  if [ -z "$what" ]; then echo "run_mutations.sh: $TABLE: line for '$name' needs 6 tab-separated fields" >&2; exit 2; fi
  NAMES+=("$name") SCOPES+=("$scope") FINDS+=("$find") REPLS+=("$repl") TESTS+=("$tests") WHATS+=("$what")
done < "$TABLE"
[ ${#NAMES[@]} -gt 0 ] || { echo "run_mutations.sh: no mutations selected" >&2; exit 2; }

# Applies one mutation in $TREE; prints the file it changed. Fails (exit 3)
# when the target string is not found exactly once in the scope.
apply_mutation() {
  python3 - "$TREE" "$1" "$2" "$3" <<'PY'
import os, sys
tree, scope, find, repl = sys.argv[1:]
base = os.path.join(tree, scope)
files = [base] if os.path.isfile(base) else [
    os.path.join(d, f) for d, _, fs in os.walk(base) for f in sorted(fs) if f.endswith((".c", ".h", ".cu"))]
hits = [(p, open(p).read()) for p in files]
hits = [(p, t) for p, t in hits if find in t]
count = sum(t.count(find) for _, t in hits)
if count != 1:
    sys.stderr.write(f"mutation target {'not found' if count == 0 else f'found {count} times'} in {scope}: {find!r}\n"
                     "(the code moved or changed: update tests/mutation/mutations.tsv)\n")
    sys.exit(3)
path, text = hits[0]
if repl.startswith("LINE:"):
    a = text.rfind("\n", 0, text.index(find)) + 1
    b = text.find("\n", a)
    b = len(text) if b < 0 else b
    line = text[a:b]
    indent = line[:len(line) - len(line.lstrip())]
    text = text[:a] + indent + repl[5:] + text[b:]
else:
    text = text.replace(find, repl)
with open(path + ".mutation-orig", "w") as f:
    f.write(open(path).read())
with open(path, "w") as f:
    f.write(text)
print(os.path.relpath(path, tree))
PY
}

failed_tests() {   # the ctest names of the last run's failures, comma-separated
  local f="$BUILD/Testing/Temporary/LastTestsFailed.log"
  [ -f "$f" ] && sed 's/^[0-9]*://' "$f" | paste -sd, - || true
}

# ---- baseline: every test the table names passes unmutated ----------------------
ALL=$(printf '%s\n' "${TESTS[@]}" | paste -sd'|' -)
# With --fixtures the copied model fixtures are used as they are (-FA models_fx:
# no regeneration); every other fixture is made here.
FA=()
[ -n "$FIXTURES" ] && FA=(-FA models_fx)
log "baseline: the named tests on the unmutated tree, with their fixtures${FIXTURES:+ (model fixtures copied)}"
rm -f "$BUILD/Testing/Temporary/LastTestsFailed.log"
if ! (cd "$BUILD" && ctest -R "$ALL" "${FA[@]}" --output-on-failure > "$LOGS/baseline_tests.log" 2>&1); then
  tail -40 "$LOGS/baseline_tests.log"
  echo "run_mutations.sh: the unmutated tree fails $(failed_tests): fix that first" >&2
  exit 1
fi
BASE_N=$(grep -c ' Passed ' "$LOGS/baseline_tests.log" || true)
log "baseline: $BASE_N tests passed"

# ---- the mutations ---------------------------------------------------------------
RESULT=() FILES=() FAILED=() RAN=() SECS=()
status=0
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]}
  t0=$(date +%s)
  log "$name: ${WHATS[$i]}"
  if ! file=$(apply_mutation "${SCOPES[$i]}" "${FINDS[$i]}" "${REPLS[$i]}"); then
    RESULT+=("PATCH NOT APPLIED") FILES+=("${SCOPES[$i]}") FAILED+=("") RAN+=("") SECS+=(0)
    status=1
    continue
  fi
  FILES+=("$file")
  if ! nice -n 10 cmake --build "$BUILD" -j"$JOBS" > "$LOGS/build_$name.log" 2>&1; then
    RESULT+=("BUILD FAILED (mutation invalid)") FAILED+=("") RAN+=("") status=1
  else
    rm -f "$BUILD/Testing/Temporary/LastTestsFailed.log"
    # -FA '.*': reuse the fixtures the baseline made (no regeneration per mutation).
    (cd "$BUILD" && ctest -R "${TESTS[$i]}" -FA '.*' --output-on-failure > "$LOGS/tests_$name.log" 2>&1) || true
    ran=$(grep -Eo 'Test +#[0-9]+: [A-Za-z0-9_]+' "$LOGS/tests_$name.log" | awk '{print $3}' | paste -sd, - || true)
    fl=$(failed_tests)
    RAN+=("$ran") FAILED+=("$fl")
    if [ -n "$fl" ]; then RESULT+=("caught"); else RESULT+=("NOT CAUGHT"); status=1; fi
    # What the failing tests said (their FAIL lines), for the report.
    # ctest prints a failed test's output after its status line: up to 3 FAIL
    # lines per test.
    awk -v tree="$TREE/" '
      /Test +#[0-9]+: / { for (k = 1; k <= NF; k++) if ($k ~ /^#[0-9]+:$/) cur = $(k + 1); n = 0; next }
      /^FAIL|FAIL:/ && cur != "" && n < 3 { gsub(tree, ""); print cur ": " substr($0, 1, 240); n++ }
    ' "$LOGS/tests_$name.log" > "$LOGS/details_$name.txt" || true
  fi
  mv "$TREE/$file.mutation-orig" "$TREE/$file"
  touch "$TREE/$file"
  SECS+=($(( $(date +%s) - t0 )))
  log "$name: ${RESULT[-1]} (failed: ${FAILED[-1]:-none})"
done
log "rebuilding the unmutated tree"
nice -n 10 cmake --build "$BUILD" -j"$JOBS" > "$LOGS/build_final.log" 2>&1 || status=1

# ---- the table ---------------------------------------------------------------------
md_escape() { printf '%s' "$1" | sed 's/|/\\|/g'; }
table() {
  echo "| mutation | what it breaks | file | patch | tests run | tests that failed | result |"
  echo "|---|---|---|---|---|---|---|"
  for i in "${!NAMES[@]}"; do
    printf '| %s | %s | %s | `%s` → `%s` | %s | %s | %s |\n' "${NAMES[$i]}" "$(md_escape "${WHATS[$i]}")" \
      "${FILES[$i]}" "$(md_escape "${FINDS[$i]}")" "$(md_escape "${REPLS[$i]}")" \
      "$(printf '%s' "${RAN[$i]:-}" | sed 's/,/, /g')" "$(printf '%s' "${FAILED[$i]:-}" | sed 's/,/, /g')" \
      "**${RESULT[$i]}** (${SECS[$i]} s)"
  done
}
echo
table
caught=$(printf '%s\n' "${RESULT[@]}" | grep -c '^caught$' || true)
echo
echo "$caught of ${#NAMES[@]} mutations caught"
if [ -n "$REPORT" ]; then
  {
    echo "# Mutation check results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- tree: $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- && echo '' || echo ' + uncommitted changes') (branch $(cd "$ROOT" && git rev-parse --abbrev-ref HEAD))"
    echo "- command: \`tests/mutation/run_mutations.sh${ONLY:+ --only $ONLY}${FIXTURES:+ --fixtures $FIXTURES}${REPORT:+ --report ...}\`"
    echo "- baseline: the $BASE_N named tests pass on the unmutated copy"
    echo "- result: **$caught of ${#NAMES[@]} mutations caught**"
    echo
    table
    echo
    echo "## What the failing tests printed (first FAIL lines per mutation)"
    for i in "${!NAMES[@]}"; do
      echo
      echo "### ${NAMES[$i]}"
      echo
      echo '```'
      cat "$LOGS/details_${NAMES[$i]}.txt" 2>/dev/null || true
      echo '```'
    done
  } > "$REPORT"
  echo "report written to $REPORT"
fi
exit $status
