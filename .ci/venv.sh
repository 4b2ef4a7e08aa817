#!/usr/bin/env bash
# Creates the project's Python environment: a venv over Debian's python3 with
# --system-site-packages, so it sees python3-torch / numpy / h5py from apt and
# adds the PyPI packages of python/requirements.txt (Debian's python refuses a
# system-wide pip install, PEP 668). numpy is pinned to Debian's version so pip
# never shadows the numpy that Debian's torch was built against.
# Idempotent: does nothing when the venv already matches the requirements.
# Usage: .ci/venv.sh        (DPTRAIN_VENV=path overrides <repo>/.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DPTRAIN_VENV:-$PWD/.venv}
REQ=python/requirements.txt
PY=/usr/bin/python3
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.dptrain-req" ] && cmp -s "$REQ" "$VENV/.dptrain-req"; then
  echo "venv: up to date ($VENV)"
  exit 0
fi
"$PY" -m venv --system-site-packages "$VENV"
CONS=$(mktemp)
trap 'rm -f "$CONS"' EXIT
"$PY" - > "$CONS" <<'PYEOF'
import importlib.metadata as m
for p in ("numpy", "torch", "h5py", "Pillow"):
    try: print(f"{p}=={m.version(p)}")
    except m.PackageNotFoundError: pass
PYEOF
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" -c "$CONS"
"$VENV/bin/python" -c "import torch, numpy, safetensors, onnx, onnxruntime, mlflow; print('venv: ok', '$VENV', 'torch', torch.__version__, 'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__, 'mlflow', mlflow.__version__)"
cp "$REQ" "$VENV/.dptrain-req"
