#!/usr/bin/env python3
"""A fine-tune run from converted torchvision weights (--init-weights) with
freezing and gradual unfreezing: ResNet-18, 5 classes (the 1000-class head is
skipped), stages below 4 frozen, one more stage unfrozen per epoch.

Checks: the log reports the counts; the frozen stem's conv weights in the
final model are bitwise the pretrained ones (they trained from them and never
moved); layer4 (unfrozen at epoch 1) and the head did move; the run is finite.
usage: finetune.py DPTRAIN FIXTURE_DIR DATA_DIR WORK_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

dptrain, fix, data, work = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)


def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(v["shape"])
    return out


def fail(msg, log=""):
    print(log[-4000:])
    print("FAIL:", msg)
    sys.exit(1)


out = os.path.join(work, "out")
cmd = ["mpirun", "-np", "1", "--bind-to", "none", dptrain, "train", "--model", "resnet18", "--image-size", "64",
       "--train", f"{data}/train-*.h5", "--val", f"{data}/val-*.h5", "--out", out, "--epochs", "2",
       "--batch", "16", "--steps", "0", "--lr", "0.01", "--threads", "1", "--loader-threads", "1",
       "--init-weights", os.path.join(fix, "tv1000.safetensors"), "--freeze-below-stage", "4",
       "--unfreeze-every", "1", "--seed", "3"]
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=500)
log = p.stdout
if p.returncode != 0:
    fail(f"exit {p.returncode}", log)
line = next((l for l in log.splitlines() if "init weights" in l and "loaded" in l), "")
if "head tensor(s) skipped" not in line or " 0 missing" not in line:
    fail(f"no init-weights report with the head skipped: {line!r}", log)
print("log:", line.strip())
pre = tensors(os.path.join(fix, "tv1000.safetensors"))
last = tensors(os.path.join(out, "model-last.safetensors"))
for name in ("conv1.weight", "layer1.0.conv1.weight", "layer3.1.conv2.weight"):
    if not np.array_equal(pre[name], last[name]):
        fail(f"{name} (a frozen stage) changed: max |d| {np.abs(pre[name] - last[name]).max()}")
d4 = np.abs(pre["layer4.1.conv2.weight"] - last["layer4.1.conv2.weight"]).max()
if not d4 > 0:
    fail("layer4 did not train after it was unfrozen at epoch 1")
r = json.load(open(os.path.join(out, "results.json")))
if r["status"] != "completed" or not np.isfinite(r["macro_f1"]):
    fail(f"status {r['status']}, macro-F1 {r['macro_f1']}")
if r["state"]["init_weights"] != os.path.join(fix, "tv1000.safetensors"):
    fail("results.json does not name the init weights")
print(f"ok fine-tune from converted torchvision weights: stem/layer1-3 unchanged (frozen), layer4 moved by up to "
      f"{d4:.3g} after unfreezing, macro-F1 {r['macro_f1']:.3f} after 2 epochs")
