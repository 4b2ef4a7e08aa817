#!/usr/bin/env python3
"""After `step_check.py ... --steps 1 --momentum 0 --weight-decay 0` has left WORK=runs/stepcheck:
compares dptrain's first update (divided by the LR) with torch's fp32 and fp64 gradients of the
same batch from the same initial weights, per tensor.
usage: grad_check.py IMAGE_SIZE TRAIN_GLOB CHANNELS   (label smoothing 0.1, LR 0.01 as step_check)
"""
import sys, argparse, numpy as np, torch, torch.nn as nn
sys.path.insert(0, "bench/parity")
import twin
from safetensors.torch import load_file
W = "runs/stepcheck"
init, got = load_file(f"{W}/init.safetensors"), load_file(f"{W}/model.safetensors")
order = [int(l.split()[1]) for l in open(f"{W}/ids.rank0")]
sh = twin.Shards(sys.argv[2] if len(sys.argv) > 2 else "runs/parity/data/fmnist/train-*.h5")
CH = int(sys.argv[3]) if len(sys.argv) > 3 else 1
m = twin.BaselineCNN(CH, sh.num_classes, 32); m.load_state_dict(init); m.train()
ea = argparse.Namespace(image_size=int(sys.argv[1]) if len(sys.argv) > 1 else 28, channels=CH, train=False, policy="defects", crop_pad=0, hflip=0.5, rrc_scale_min=0.08)
x, y = twin.make_batch(sh, order[:16], np.random.default_rng(0), ea)
loss = nn.CrossEntropyLoss(label_smoothing=0.1)(m(x), y); loss.backward()
for k, p in m.named_parameters():
    d = (got[k] - init[k]).flatten().double(); g = p.grad.flatten().double()
    lr = -(d @ g) / (g @ g)
    res = (d + lr * g).norm() / d.norm()
    print(f"{k:28s} effective lr {lr.item():.6f}  residual {res.item():.3g}")
print("--- float64 reference")
m64 = twin.BaselineCNN(CH, sh.num_classes, 32).double(); m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in init.items()}); m64.train()
l64 = nn.CrossEntropyLoss(label_smoothing=0.1)(m64(x.double()), y); l64.backward()
g32 = dict(m.named_parameters())
for k, p in m64.named_parameters():
    gd = -(got[k] - init[k]).flatten().double() / 0.01
    g = p.grad.flatten()
    t = g32[k].grad.flatten().double()
    print(f"{k:28s} |torch32-ref| {((t - g).norm() / g.norm()).item():.2e}   |dptrain-ref| {((gd - g).norm() / g.norm()).item():.2e}")
