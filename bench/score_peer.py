#!/usr/bin/env python3
"""Peer for `dptrain score`: the same model as a torch module (python/dptrain twin,
torch 1.13, eval mode, no grad) scoring the same shard records the way a Python
batch-scoring job would: PIL decode, dptrain.Preprocessing.transform (the exact eval
transform), batched forward, softmax top-k. Prints

  RESULT torch_score <images> <img/s end to end> <img/s forward only>

usage: score_peer.py WEIGHTS 'SHARDS-GLOB' [--batch B] [--threads T] [--top-k K]
"""
import argparse
import glob
import io
import os
import sys
import time

import h5py
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import dptrain  # noqa: E402


def records(pattern):
    for p in sorted(glob.glob(pattern)):
        with h5py.File(p, "r") as f:
            b, o = f["images/bytes"][:], f["images/offsets"][:]
        for i in range(len(o) - 1):
            yield bytes(b[o[i]:o[i + 1]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("data")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, info = dptrain.load_model(a.weights)
    pre = info.preprocessing
    recs = list(records(a.data))   # bytes in memory: the peer does not pay for HDF5 reads
    mode = "L" if pre.channels == 1 else "RGB"
    n = fwd = 0
    t0 = time.perf_counter()
    batch = []

    def flush():
        nonlocal fwd
        if not batch:
            return
        x = torch.stack(batch)
        t = time.perf_counter()
        with torch.no_grad():
            p = net(x).softmax(1)
            p.topk(min(a.top_k, p.shape[1]), dim=1)
        fwd += time.perf_counter() - t
        batch.clear()

    for b in recs:
        try:
            im = np.array(Image.open(io.BytesIO(b)).convert(mode))
        except Exception:
            continue   # corrupt record: no image
        batch.append(pre.transform(im))
        n += 1
        if len(batch) == a.batch:
            flush()
    flush()
    total = time.perf_counter() - t0
    print(f"RESULT torch_score {n} {n / total:.2f} {n / fwd:.2f}")


if __name__ == "__main__":
    main()
