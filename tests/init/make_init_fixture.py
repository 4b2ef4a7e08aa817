#!/usr/bin/env python3
"""Fixture for --init-weights: a torchvision ResNet-18 with random weights and
random BN running statistics, saved as a .pth state_dict (1000 classes and a
5-class twin), converted to safetensors with tools/torch2safetensors.py, plus
an input batch and torch's eval-mode penultimate features and logits.

usage: make_init_fixture.py REPO OUT_DIR
writes OUT_DIR/{tv1000.pth, tv1000.safetensors, tv5.safetensors, ref.h5}
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torchvision

repo, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
torch.manual_seed(123)


def randomized(num_classes):
    m = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                # Non-trivial statistics and affine terms, so a BN that is not
                # loaded (or loaded into the wrong slot) changes the features.
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.num_batches_tracked.fill_(7)
    return m.eval()


m1000 = randomized(1000)
torch.save(m1000.state_dict(), os.path.join(out, "tv1000.pth"))
m5 = randomized(5)
torch.save(m5.state_dict(), os.path.join(out, "tv5.pth"))
conv = os.path.join(repo, "tools", "torch2safetensors.py")
for name in ("tv1000", "tv5"):
    subprocess.run([sys.executable, conv, "--pth", os.path.join(out, name + ".pth"),
                    "--out", os.path.join(out, name + ".safetensors")], check=True)

x = torch.rand(2, 3, 64, 64) * 2 - 1
with torch.no_grad():
    feats = torch.flatten(m1000.avgpool(m1000.layer4(m1000.layer3(m1000.layer2(m1000.layer1(
        m1000.maxpool(m1000.relu(m1000.bn1(m1000.conv1(x))))))))), 1)
    logits1000 = m1000(x)
    logits5 = m5(x)
with h5py.File(os.path.join(out, "ref.h5"), "w") as f:
    f["input"] = x.numpy().astype(np.float32)              # (N, C, H, W)
    f["features"] = feats.numpy().astype(np.float32)       # (N, 512)
    f["logits1000"] = logits1000.numpy().astype(np.float32)
    f["logits5"] = logits5.numpy().astype(np.float32)
    f["conv1_weight"] = m1000.conv1.weight.detach().numpy().astype(np.float32)
print("init fixture written to", out)
