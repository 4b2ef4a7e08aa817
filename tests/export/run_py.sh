#!/bin/sh
# run_py.sh PYTHON SCRIPT ARGS...: runs SCRIPT with the project's venv python,
# or fails with the command that makes the venv.
py=$1
shift
if [ ! -x "$py" ]; then
  echo "FAIL: no Python environment at $py: make it with .ci/venv.sh (python/requirements.txt)" >&2
  exit 1
fi
exec "$py" "$@"
