#!/bin/sh
# `dptrain export` must stop with exit code 2 and say what to do when its
# Python is missing or lacks the packages.
# Usage: cli_no_python.sh DPTRAIN PYTHON_WITHOUT_ONNX
dptrain=$1
plain_py=$2
fail() { echo "FAIL: $*"; exit 1; }

out=$(DPTRAIN_PYTHON=/nonexistent/python "$dptrain" export --weights x.safetensors --onnx x.onnx 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 2 ] || fail "missing python: exit code $rc, want 2"
echo "$out" | grep -q "DPTRAIN_PYTHON=/nonexistent/python" || fail "message does not name DPTRAIN_PYTHON"
echo "$out" | grep -q "venv.sh" || fail "message does not say how to make the environment"

out=$("$dptrain" export --onnx x.onnx 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 2 ] || fail "missing --weights: exit code $rc, want 2"

if (cd / && "$plain_py" -c "import onnx" 2>/dev/null); then
  echo "($plain_py has onnx: the missing-package case is not exercised)"
else
  # Run from a folder holding ./onnx/: the exporter must not import it as the package.
  tmp=$(mktemp -d)
  mkdir "$tmp/onnx"
  out=$(cd "$tmp" && DPTRAIN_PYTHON="$plain_py" "$dptrain" export --weights x.safetensors --onnx x.onnx 2>&1)
  rc=$?
  rm -rf "$tmp"
  echo "$out"
  [ "$rc" -eq 2 ] || fail "python without onnx: exit code $rc, want 2"
  echo "$out" | grep -q "missing Python package(s) onnx" || fail "message does not name the missing package"
  echo "$out" | grep -q "venv.sh" || fail "message does not say how to make the environment"
fi
echo "ok"
