#!/usr/bin/env python3
"""Whole-loop oracle without augmentation noise: dptrain trains K steps on 1 rank with
--augment 0 (the eval transform), --save-init 1 and --dump-ids; the PyTorch twin replays the
same samples in the same order from the same initial weights with the same recipe (twin.py's
transform, optimizer groups, schedule and loss), and the final weights and BN buffers are
compared.  usage: step_check.py DPTRAIN TRAIN_GLOB WORK [--steps 5] [--image-size 28 --channels 1]
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dptrain")
    ap.add_argument("train")
    ap.add_argument("work")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--warmup-steps", type=int, default=2)
    ap.add_argument("--class-weights", default="")
    ap.add_argument("--momentum", type=float, default=0.9)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    cmd = ["mpirun", "-np", "1", a.dptrain, "train", "--model", "cnn", "--image-size", str(a.image_size), "--channels",
           str(a.channels), "--train", a.train, "--steps", str(a.steps), "--batch", str(a.batch), "--augment", "0",
           "--lr", str(a.lr), "--label-smoothing", str(a.label_smoothing), "--weight-decay", str(a.weight_decay),
           "--warmup-steps", str(a.warmup_steps), "--momentum", str(a.momentum), "--save-init", "1", "--out", a.work, "--dump-ids",
           f"{a.work}/ids", "--threads", "1", "--loader-threads", "1"]
    if a.class_weights:
        cmd += ["--class-weights", a.class_weights]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    order = [int(l.split()[1]) for l in open(f"{a.work}/ids.rank0")]
    sh = twin.Shards(a.train)
    torch.set_num_threads(1)
    m = twin.BaselineCNN(a.channels, sh.num_classes, 32)
    m.load_state_dict(load_file(f"{a.work}/init.safetensors"), strict=True)
    m.train()
    decay = [p for p in m.parameters() if p.ndim > 1]
    no_decay = [p for p in m.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.lr, momentum=a.momentum)
    C = sh.num_classes
    w = None
    if a.class_weights == "auto":
        cnt = np.bincount(sh.labels, minlength=C).astype(np.float64)
        w = torch.tensor(cnt.sum() / (C * cnt), dtype=torch.float32)
    crit = nn.CrossEntropyLoss(weight=w, label_smoothing=a.label_smoothing)
    ea = argparse.Namespace(image_size=a.image_size, channels=a.channels, train=False, policy="defects", crop_pad=0,
                            hflip=0.5, rrc_scale_min=0.08, min_lr=0.0, lr=a.lr)
    rng = np.random.default_rng(0)
    for s in range(a.steps):
        idx = order[s * a.batch:(s + 1) * a.batch]
        x, y = twin.make_batch(sh, idx, rng, ea)
        for g in opt.param_groups:
            g["lr"] = twin.lr_at(ea, s, a.steps, a.warmup_steps)
        opt.zero_grad()
        loss = crit(m(x), y)
        loss.backward()
        opt.step()
        print(f"step {s + 1}: torch loss {loss.item():.6f}")
    got = load_file(f"{a.work}/model.safetensors")
    worst = 0.0
    for k, v in m.state_dict().items():
        if v.dtype != torch.float32:
            continue
        d = (got[k] - v).abs().max().item() / (v.abs().max().item() + 1e-12)
        worst = max(worst, d)
        if d > 1e-3:
            print(f"  {k}: relative max difference {d:.3g}")
    print(f"worst relative difference over all tensors: {worst:.3g}")
    csv = [l.split(",") for l in open(f"{a.work}/steps.csv")][1:]
    print("dptrain losses:", " ".join(f"{float(r[4]):.6f}" for r in csv))
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
