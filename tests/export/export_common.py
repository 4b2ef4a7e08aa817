"""Shared by check_export.py and check_converter.py: failing checks, the
rel. error of tests/common (max |got - want| / max |want|), subprocesses, and
dptrain's logits through export_helper forward."""
import os
import subprocess
import sys
import time

import h5py
import numpy as np

failures = []


def check(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg, flush=True)
    if not ok:
        failures.append(msg)
    return ok


def finish(test_name):
    if failures:
        print(f"\n{test_name}: {len(failures)} check(s) FAILED")
        return 1
    print(f"\n{test_name}: all checks passed")
    return 0


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    d = np.abs(got - want).max()
    return float(d / (np.abs(want).max() + 1e-12)) if np.isfinite(d) else float("inf")


def run(cmd, env=None, expect=0):
    """Runs cmd; returns (stdout + stderr, seconds). Stops the test when the
    exit code is not `expect`."""
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.time() - t0
    out = (p.stdout + p.stderr).strip()
    if p.returncode != expect:
        print(out)
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}, expected {expect}")
    return out, dt


def dptrain_logits(helper, work, weights, x, tag, model_opts=(), env=None):
    """dptrain's eval-mode logits of x (N, C, S, S) on weights; the model from
    the file's metadata, or from model_opts (export_helper MODELOPTS)."""
    xin, out = os.path.join(work, tag + "_x.h5"), os.path.join(work, tag + "_logits.npy")
    with h5py.File(xin, "w") as f:
        f["input"] = np.asarray(x, np.float32)
    run([helper, "forward", "--weights", weights, "--input", xin, "--output", out] + list(model_opts), env=env)
    return np.load(out)
