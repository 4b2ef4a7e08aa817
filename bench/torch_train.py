#!/usr/bin/python3
"""PyTorch side of bench_train.sh: training img/s (forward + backward + SGD
step, momentum 0.9, wd 1e-4) on a fixed random batch, the same models as
dptrain (torchvision ResNet-18/50 and ViT-B/16; the baseline CNN of tests/models/torch_cnn.py),
NCHW and channels_last, 2 threads by default. Prints one RESULT line per layout
and one MEMORY line: the peak resident-set growth of the process over the
training steps (VmHWM after the steps minus VmRSS before the model is built:
parameters, gradients, optimizer state, activations and allocator slack), the
same quantity bench_train reports for dptrain. Run one layout per process
(--layouts nchw, then --layouts cl) for a clean peak.

usage: torch_train.py MODEL [--batch 32] [--image-size 224] [--classes 1000]
                      [--threads 2] [--warmup 2] [--steps 5] [--layouts nchw,cl]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))
from torch_cnn import BaselineCNN  # noqa: E402


def make(name, classes):
    if name == "cnn":
        return BaselineCNN(3, classes, 32)
    if name == "resnet18":
        return torchvision.models.resnet18(num_classes=classes)
    if name == "resnet50":
        return torchvision.models.resnet50(num_classes=classes)
    if name == "vit_b16":
        return torchvision.models.vit_b_16(num_classes=classes)
    raise SystemExit(f"torch_train.py: no PyTorch model for {name}")


def proc_status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def bench(args, layout):
    rss0 = proc_status_kib("VmRSS")
    torch.manual_seed(0)
    model = make(args.model, args.classes)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    y = torch.randint(0, args.classes, (args.batch,))
    if layout == "cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    crit = nn.CrossEntropyLoss()
    times = []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        if s >= args.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"torch {args.model} {args.image_size}px b{args.batch} {layout}, {args.threads} threads: "
          f"step median {med:.3f} s (min {min(times):.3f}, max {max(times):.3f}), loss {loss.item():.3f}")
    print(f"RESULT torch_{layout} {args.model} {args.batch / med:.2f} img/s")
    grown = (proc_status_kib("VmHWM") - rss0) / 1024.0
    print(f"MEMORY torch_{layout} {args.model} {grown:.0f} MiB peak RSS growth")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--layouts", default="nchw,cl")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    for layout in args.layouts.split(","):
        bench(args, layout)


if __name__ == "__main__":
    main()
