"""Shared by the multi-rank tests: mpirun on loopback, safetensors reading,
failing with the tail of the output."""
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", DPTRAIN_PROGRESS="plain")


def run(np_, args, env=None, timeout=120):
    cmd = ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none"] + args
    t0 = time.time()
    p = subprocess.run(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True)
    return p.returncode, p.stdout, time.time() - t0


def read_safetensors(path):
    """({name: array} for every F32 and I64 tensor, the __metadata__ dict)."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dt).reshape(v["shape"])
    return out, hdr.get("__metadata__", {})


def load_safetensors(path):
    """The float32 tensors only (parameters and BN statistics)."""
    return {k: v for k, v in read_safetensors(path)[0].items() if v.dtype == np.float32}


def fail(msg, out=""):
    print(out[-4000:])
    print("FAIL:", msg)
    sys.exit(1)
