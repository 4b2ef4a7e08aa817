#!/usr/bin/python3
"""Oracle fixtures for tests/optim/test_optim_oracle.c (torch 1.13).

Runs torch.optim.SGD (momentum; Nesterov), torch.optim.AdamW,
torch.nn.utils.clip_grad_norm_ and LambdaLR (warmup + cosine / step) over
STEPS steps with given gradients on a few parameter tensors: some without
weight decay, one frozen for the whole run, a head with its own LR, stage
freezing and gradual unfreezing. Frozen tensors get .grad = None, which is how
torch leaves a tensor (and its optimizer state) untouched.

Writes $DP_FIXTURE_DIR/optim.h5:
  /init/<name> (numel)            initial values
  /grads/<name> (STEPS, numel)    gradient fed at each step (also to frozen ones)
  /<cfg>/params/<name> (STEPS, numel)  values after each step
  /<cfg>/lr (STEPS)               head LR used at each step
  /<cfg>/norm (STEPS)             clip_grad_norm_ result (configs with clipping)
  /sched/cos_seq, /sched/step_seq SequentialLR(LinearLR, CosineAnnealingLR/StepLR)
                                  LRs of one group for steps 0..SCHED_STEPS-1
The configurations below are repeated in the C test; keep both in sync.
"""
import math
import os
import sys

import h5py
import numpy as np
import torch

STEPS = 10
STEPS_PER_EPOCH = 3   # for the unfreezing config: epoch = step // 3

# name, shape, kind (weight/bias/norm/embed), stage, is_head, frozen (for the whole run)
PARAMS = [
    ("stem.weight", (4, 3), "weight", 0, 0, 0),
    ("stem.bias", (4,), "bias", 0, 0, 0),
    ("block.conv.weight", (8, 3, 3, 3), "weight", 1, 0, 0),
    ("block.norm.weight", (6,), "norm", 1, 0, 0),
    ("block.frozen.weight", (5,), "weight", 1, 0, 1),
    ("block.embed", (2, 3), "embed", 1, 0, 0),
    ("fc.weight", (3, 4), "weight", 2, 1, 0),
    ("fc.bias", (3,), "bias", 2, 1, 0),
]
TOP_STAGE = 2

CONFIGS = {
    "sgd_mom": dict(kind="sgd", lr=0.1, momentum=0.9, nesterov=False, wd=1e-2, no_decay=True,
                    backbone=0.1, clip=0.0, sched="cosine", warmup=3, wfactor=0.1, total=10,
                    min_lr=1e-3, freeze_below=0, unfreeze_every=0),
    "sgd_nest": dict(kind="sgd", lr=0.05, momentum=0.9, nesterov=True, wd=5e-4, no_decay=False,
                     backbone=1.0, clip=1.0, sched="step", warmup=2, wfactor=0.5, step_every=3,
                     gamma=0.5, freeze_below=1, unfreeze_every=0),
    "adamw": dict(kind="adamw", lr=1e-2, betas=(0.9, 0.999), eps=1e-8, wd=0.05, no_decay=True,
                  backbone=0.5, clip=2.0, sched="cosine", warmup=3, wfactor=0.1, total=10,
                  min_lr=0.0, freeze_below=0, unfreeze_every=0),
    "adamw_unfreeze": dict(kind="adamw", lr=1e-2, betas=(0.8, 0.99), eps=1e-6, wd=0.1,
                           no_decay=False, backbone=1.0, clip=0.0, sched="constant", warmup=0,
                           wfactor=1.0, freeze_below=0, unfreeze_every=1),
}


def lr_at(c, s):
    """The documented schedule (optim.h), written out independently."""
    lr = c["lr"]
    w = c["warmup"]
    if s < w:
        f = c["wfactor"]
        return lr * (f + (1 - f) * s / w)
    k = s - w
    if c["sched"] == "cosine":
        d = c["total"] - w
        k = min(k, d)
        return c["min_lr"] + (lr - c["min_lr"]) * 0.5 * (1 + math.cos(math.pi * k / d))
    if c["sched"] == "step":
        return lr * c["gamma"] ** (k // c["step_every"])
    return lr


def trainable(c, stage, frozen, epoch):
    if frozen or stage < c["freeze_below"]:
        return False
    if c["unfreeze_every"] > 0 and stage < TOP_STAGE - epoch // c["unfreeze_every"]:
        return False
    return True


def run_config(name, c, init, grads, out):
    ps = [torch.nn.Parameter(torch.from_numpy(init[p[0]].copy())) for p in PARAMS]
    groups = []
    for (pname, shape, kind, stage, head, frozen), t in zip(PARAMS, ps):
        wd = 0.0 if (c["no_decay"] and kind != "weight") else c["wd"]
        groups.append({"params": [t], "lr": c["lr"] * (1.0 if head else c["backbone"]),
                       "weight_decay": wd})
    if c["kind"] == "sgd":
        opt = torch.optim.SGD(groups, lr=c["lr"], momentum=c["momentum"], nesterov=c["nesterov"])
    else:
        opt = torch.optim.AdamW(groups, lr=c["lr"], betas=c["betas"], eps=c["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(c, s) / c["lr"])
    head_group = [i for i, p in enumerate(PARAMS) if p[4]][0]
    after = {p[0]: np.zeros((STEPS,) + tuple(p[1]), np.float32) for p in PARAMS}
    lrs = np.zeros(STEPS)
    norms = np.zeros(STEPS)
    for s in range(STEPS):
        epoch = s // STEPS_PER_EPOCH
        live = []
        for p, t in zip(PARAMS, ps):
            if trainable(c, p[3], p[5], epoch):
                t.grad = torch.from_numpy(grads[p[0]][s].copy())
                live.append(t)
            else:
                t.grad = None
        if c["clip"] > 0:
            norms[s] = float(torch.nn.utils.clip_grad_norm_(live, c["clip"]))
        lrs[s] = opt.param_groups[head_group]["lr"]
        opt.step()
        sched.step()
        for p, t in zip(PARAMS, ps):
            after[p[0]][s] = t.detach().numpy()
    g = out.create_group(name)
    for k, v in after.items():
        g.create_dataset("params/" + k, data=v.reshape(STEPS, -1))
    g.create_dataset("lr", data=lrs)
    if c["clip"] > 0:
        g.create_dataset("norm", data=norms)


def sequential_lrs(c, n):
    t = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([t], lr=c["lr"])
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=c["wfactor"], total_iters=c["warmup"])
    if c["sched"] == "cosine":
        decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c["total"] - c["warmup"],
                                                           eta_min=c["min_lr"])
    else:
        decay = torch.optim.lr_scheduler.StepLR(opt, step_size=c["step_every"], gamma=c["gamma"])
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[c["warmup"]])
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        seq.step()
    return np.array(out)


def main():
    import warnings
    warnings.filterwarnings("ignore")
    fdir = os.environ.get("DP_FIXTURE_DIR") or (sys.argv[1] if len(sys.argv) > 1 else ".")
    os.makedirs(fdir, exist_ok=True)
    rng = np.random.default_rng(1234)
    init = {p[0]: rng.standard_normal(p[1]).astype(np.float32) for p in PARAMS}
    # Gradient scale cycles so clipping triggers on some steps and not others.
    scale = [0.02 * 3 ** (s % 4) for s in range(STEPS)]
    grads = {p[0]: np.stack([(scale[s] * rng.standard_normal(p[1])).astype(np.float32)
                             for s in range(STEPS)]) for p in PARAMS}
    path = os.path.join(fdir, "optim.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as out:
        for p in PARAMS:
            out.create_dataset("init/" + p[0], data=init[p[0]].reshape(-1))
            out.create_dataset("grads/" + p[0], data=grads[p[0]].reshape(STEPS, -1))
        for name, c in CONFIGS.items():
            run_config(name, c, init, grads, out)
        out.create_dataset("sched/cos_seq", data=sequential_lrs(CONFIGS["sgd_mom"], 14))
        out.create_dataset("sched/step_seq", data=sequential_lrs(CONFIGS["sgd_nest"], 14))
    os.replace(tmp, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
