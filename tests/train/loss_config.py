"""The training loss as configured (mpi_tests.py lossconfig): --label-smoothing
and --class-weights (auto and explicit) reach the loss of a real `dptrain
train` run, against PyTorch's CrossEntropyLoss(weight, label_smoothing).

The ops oracle checks the softmax-xent op itself; this checks the wiring from
the command line to it, and the auto weights N / (C n_c). The loss of step 1
(steps.csv) is the loss at the initial weights W0 on the first batch. Torch gets
the same W0 (the run's saved weights: lr 1e-30 leaves them unchanged, see
equivalence.initial_weights), the same samples (--dump-ids) and the same pixels:
the shards are 18 px raw and --image-size 16 without augmentation is Resize(18)
(identity) + CenterCrop(16), i.e. rows and columns 1..16, then ImageNet
normalisation. The forward runs in train mode (BN batch statistics), float64.

Measured (2026-12-01, AVX2 EPYC): |ours - torch| <= 2.8e-7 on losses ~1.8, the
%.6f rounding of steps.csv. Tolerance 2e-5. Each case also checks that the
setting moves torch's loss by more than 50x the tolerance, so a run that
ignored it could not pass.
"""
import os
import subprocess

import numpy as np

from equivalence import read_dump, read_records, write_shard
from mpi_util import fail, load_safetensors, run

TOL = 2e-5
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# At most this many records per class (the 64 records have 13/13/13/13/12): 39
# records, 13/8/4/2/12, auto weights N / (C n_c) = 0.60, 0.98, 1.95, 3.90, 0.65.
KEEP = {0: 13, 1: 8, 2: 4, 3: 2, 4: 13}


def torch_loss(w, recs, batch, weight, smoothing):
    import torch
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
    from torch_cnn import BaselineCNN
    m = BaselineCNN(3, 5, 8).double()
    sd = m.state_dict()
    for k in sd:
        if not k.endswith("num_batches_tracked"):
            if k not in w:
                fail(f"saved weights lack {k}")
            sd[k] = torch.from_numpy(w[k].astype(np.float64))
    m.load_state_dict(sd)
    m.train()
    xs, ys = [], []
    for idx in batch:
        img = recs[idx][0].reshape(18, 18, 3)[1:17, 1:17].astype(np.float32) / 255
        xs.append(((img - MEAN) / STD).transpose(2, 0, 1))
        ys.append(recs[idx][1])
    x, y = torch.from_numpy(np.stack(xs)).double(), torch.tensor(ys)
    wt = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(m(x), y, weight=wt, label_smoothing=smoothing).item()


def lossconfig(dptrain, work):
    maker = os.environ.get("TRAIN_MAKE_SHARDS")
    if not maker:
        fail("TRAIN_MAKE_SHARDS is not set (ctest sets it)")
    src = f"{work}/shards18"
    subprocess.run([maker, src, "64", "0", "18", "5"], check=True, stdout=subprocess.DEVNULL)
    allrecs, attrs = read_records(f"{src}/train-*.h5")
    kept, seen = [], {}
    for r in allrecs:
        if seen.get(r[1], 0) < KEEP[r[1]]:
            kept.append(r)
            seen[r[1]] = seen.get(r[1], 0) + 1
    shards = write_shard(f"{work}/imbalanced", kept, attrs)
    recs, _ = read_records(shards)
    counts = np.bincount([r[1] for r in recs], minlength=5)
    auto = [len(recs) / (5 * c) for c in counts]
    cases = [  # (name, flags, torch weight, smoothing, what the setting must change)
        ("plain", [], None, 0.0, None),
        ("smoothing 0.2 + auto weights", ["--label-smoothing", "0.2", "--class-weights", "auto"], auto, 0.2,
         [(None, 0.2), (auto, 0.0)]),
        ("explicit weights", ["--class-weights", "0.5,1,2,1,3"], [0.5, 1, 2, 1, 3], 0.0, [(None, 0.0)]),
        ("smoothing 0.1", ["--label-smoothing", "0.1"], None, 0.1, [(None, 0.0)]),
    ]
    for k, (name, flags, weight, smoothing, without) in enumerate(cases):
        out, dump = f"{work}/case{k}", f"{work}/case{k}_ids"
        rc, text, _ = run(1, [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16",
                              "--augment", "0", "--batch", "16", "--steps", "1", "--lr", "1e-30",
                              "--weight-decay", "0", "--train", shards, "--seed", "5", "--threads", "1",
                              "--loader-threads", "1", "--out", out, "--dump-ids", dump] + flags)
        if rc:
            fail(f"{name}: dptrain exited {rc}", text)
        with open(f"{out}/steps.csv") as f:
            rows = f.read().strip().splitlines()
        ours = float(rows[1].split(",")[rows[0].split(",").index("loss")])
        w = load_safetensors(f"{out}/model.safetensors")
        batch = [x[1] for x in read_dump(dump, 0)]
        ref = torch_loss(w, recs, batch, weight, smoothing)
        print(f"lossconfig {name}: step-1 loss {ours:.6f}, torch {ref:.6f} (|d| {abs(ours - ref):.1e}, tol {TOL:.0e})")
        if not abs(ours - ref) <= TOL:
            fail(f"{name}: dptrain's loss {ours} differs from torch's {ref}")
        for wt, sm in without or []:
            alt = torch_loss(w, recs, batch, wt, sm)
            if not abs(alt - ref) > 50 * TOL:
                fail(f"{name}: the setting moves torch's loss by only {abs(alt - ref):.1e}: the case cannot bite")
            print(f"  without it (weights {'on' if wt else 'off'}, smoothing {sm}) torch gives {alt:.6f}")
    print(f"lossconfig: auto weights {['%.3f' % a for a in auto]} for class counts {counts.tolist()}")
    print("ok")
