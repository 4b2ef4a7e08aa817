#!/usr/bin/python3
"""PyTorch peer for bench_decode: DataLoader + PIL + torchvision transforms
(RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize) over the
same JPEG files bench_decode wrote, batch 32, N worker processes.

usage: torch_loader.py DIR [--workers "1 2"] [--seconds S]
Prints one line per worker count: average img/s, per worker, and the best window.
"""
import argparse
import glob
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class Files(Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.tf(im.convert("RGB")), i % 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--workers", default="1 2")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(a.dir, "img", "*.jpg")))
    if not paths:
        raise SystemExit(f"no JPEGs under {a.dir}/img (run bench_decode first)")
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    # Repeat the file list so one epoch spans several batches per worker.
    ds = Files(paths * max(1, 2048 // len(paths)), tf)
    print(f"torch {torch.__version__}, {len(paths)} JPEGs, batch {a.batch}")
    for w in [int(x) for x in a.workers.split()]:
        dl = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=w,
                        persistent_workers=w > 0, drop_last=False)
        it = iter(dl)
        next(it)   # start-up (worker spawn) is not timed
        # Average over the whole time (the figure: prefetching makes short
        # windows bursty); the best window of seconds/8 for information.
        n, t0 = 0, time.perf_counter()
        wn, w0, best = 0, t0, 0.0
        while time.perf_counter() - t0 < a.seconds:
            try:
                x, _ = next(it)
            except StopIteration:
                it = iter(dl)
                continue
            n += x.shape[0]
            wn += x.shape[0]
            now = time.perf_counter()
            if now - w0 >= a.seconds / 8:
                best = max(best, wn / (now - w0))
                wn, w0 = 0, now
        el = time.perf_counter() - t0
        best = best or n / el
        print(f"torch DataLoader+PIL, {w} worker(s): {n / el:.0f} img/s "
              f"({n / el / max(w, 1):.0f} img/s per worker; best window {best:.0f} img/s)")
        del it, dl


if __name__ == "__main__":
    main()
