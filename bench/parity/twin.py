#!/usr/bin/env python3
"""PyTorch twin of a dptrain training run (issue 12, end-to-end parity).

Trains the same model from dptrain's own initial weights (`dptrain train --save-init 1` writes
OUT/init.safetensors), on the same HDF5 shards (read with h5py), with the same recipe:
  * ranks: `--world` processes (torch.distributed, gloo, DistributedDataParallel without
    SyncBatchNorm: BN over each rank's own batch), per-rank batch, DistributedSampler
    (shuffle, seed, drop_last=True; set_epoch every epoch), BN running statistics averaged over
    the ranks before every evaluation (as dptrain does);
  * augmentation: a reimplementation of dptrain's policies (src/input/augment.c): decode with
    TurboJPEG at the same DCT scale (decoder_pick_scale), then the same crop geometry (imagenet:
    torchvision RandomResizedCrop.get_params + flip; defects: eval's Resize(int(S/0.875)) then a
    random integer crop offset + flip) sampled with bilinear taps at half-pixel centres (torch
    F.interpolate align_corners=False, no antialias), normalised with ImageNet mean/std;
    corrupt records are skipped and their slot filled with the next record of the batch;
  * optimizer: SGD (momentum, Nesterov flag), weight decay on conv/linear weights only
    (no_decay_norm_bias), LR per step = warmup from 0.1 x lr (linear), then cosine to min_lr;
  * loss: CrossEntropyLoss(weight=auto class weights N / (C n_c), label_smoothing);
  * evaluation: every val record that decodes, once; eval transform Resize + CenterCrop;
    macro-F1 as sklearn's (classes present in truth or predictions); plain CE loss.
Writes a JSON with the per-epoch curve.

usage: twin.py --train GLOB --val GLOB --init FILE --out FILE [--epochs 3] [--batch 32]
               [--world 2] [--lr 0.05] [--policy defects|imagenet] [...]
"""
import argparse
import glob
import io
import json
import math
import os
import sys
import time
import warnings

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "models"))
from torch_cnn import BaselineCNN  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SCALES = [(n, 8) for n in range(1, 17)]   # TurboJPEG's n/8 family (decoder_pick_scale searches them all)


# ---- data -------------------------------------------------------------------------------------
class Shards:
    def __init__(self, pattern):
        self.paths = sorted(glob.glob(pattern))
        if not self.paths:
            raise SystemExit(f"twin: no shards match {pattern}")
        self.recs, self.labels = [], []
        for p in self.paths:
            with h5py.File(p, "r") as h:
                codec = h.attrs["codec"]
                codec = codec.decode() if isinstance(codec, bytes) else codec
                self.codec = codec
                self.num_classes = int(h.attrs["num_classes"])
                self.raw_shape = tuple(int(x) for x in h.attrs["raw_shape"]) if codec == "raw" else None
                blob = h["images/bytes"][:]
                off = h["images/offsets"][:]
                lab = h["labels"][:]
            for i in range(len(lab)):
                self.recs.append(blob[off[i]:off[i + 1]].tobytes())
                self.labels.append(int(lab[i]))
        self.labels = np.array(self.labels, np.int64)

    def __len__(self):
        return len(self.labels)


_TJ = None


def tj():
    global _TJ
    if _TJ is None:
        from turbojpeg import TurboJPEG
        _TJ = TurboJPEG()
    return _TJ


def jpeg_size(buf):
    w, h, _, _ = tj().decode_header(buf)
    return w, h


def pick_scale(cw, ch, need):
    """decoder_pick_scale: the smallest n/8 keeping the crop >= need, only when the crop >= 2x need."""
    if cw < 2.0 * need or ch < 2.0 * need:
        return (1, 1)
    best, bf = (1, 1), 1.0
    for n, d in tj().scaling_factors:
        f = n / d
        if f < bf and cw * f >= need and ch * f >= need:
            bf, best = f, (n, d)
    return best


def decode(shards, i, channels, crop_wh, out):
    """-> (full w, h, decoded uint8 (h', w', C)); raises on a corrupt record."""
    buf = shards.recs[i]
    if shards.codec == "raw":
        H, W = shards.raw_shape[0], shards.raw_shape[1]
        C = shards.raw_shape[2] if len(shards.raw_shape) > 2 else 1
        if len(buf) != H * W * C:
            raise ValueError("raw record has the wrong size")
        a = np.frombuffer(buf, np.uint8).reshape(H, W, C)
        if C == 3 and channels == 1:
            a = (0.299 * a[..., :1] + 0.587 * a[..., 1:2] + 0.114 * a[..., 2:]).round().astype(np.uint8)
        if C == 1 and channels == 3:
            a = np.repeat(a, 3, axis=2)
        return W, H, a, None
    if len(buf) < 4:
        raise ValueError("record too short")
    from turbojpeg import TJPF_GRAY, TJPF_RGB, TJFLAG_STOPONWARNING
    w, h = jpeg_size(buf)
    return w, h, None, (buf, TJPF_GRAY if channels == 1 else TJPF_RGB, TJFLAG_STOPONWARNING)


def py_round(x):
    return int(round(x))   # Python 3 rounds half to even, as dptrain's nearbyint


def rrc_params(rng, w, h, scale, ratio):
    area = w * h
    lr0, lr1 = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(lr0, lr1))
        cw = py_round(math.sqrt(target * aspect))
        ch = py_round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return (left, top, cw, ch, left, left + cw - 1, top, top + ch - 1)
    in_ratio = w / h
    cw, ch = w, h
    if in_ratio < ratio[0]:
        ch = py_round(cw / ratio[0])
    elif in_ratio > ratio[1]:
        cw = py_round(ch * ratio[1])
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return (x0, y0, cw, ch, x0, x0 + cw - 1, y0, y0 + ch - 1)


def native_params(w, h, out, ratio, dx, dy):
    S = int(out / ratio)
    if w <= h:
        nw, nh = S, int(S * h / w)
    else:
        nh, nw = S, int(S * w / h)
    sx, sy = w / nw, h / nh
    return (dx * sx, dy * sy, out * sx, out * sy, 0, w - 1, 0, h - 1), nw, nh


def eval_params(w, h, out, ratio):
    _, nw, nh = native_params(w, h, out, ratio, 0, 0)
    return native_params(w, h, out, ratio, py_round((nw - out) / 2.0), py_round((nh - out) / 2.0))[0]


def defects_params(rng, w, h, out, ratio, pad):
    _, nw, nh = native_params(w, h, out, ratio, 0, 0)
    sx, sy = nw - out, nh - out
    lox, loy = (sx // 2 if sx < 0 else 0), (sy // 2 if sy < 0 else 0)
    spx, spy = max(sx, 0) + 2 * pad, max(sy, 0) + 2 * pad
    dy = loy - pad + int(rng.integers(0, spy + 1))
    dx = lox - pad + int(rng.integers(0, spx + 1))
    return native_params(w, h, out, ratio, dx, dy)[0]


def axis(n, x0, cw, lo, hi, f, src_n, flip):
    k = np.arange(n, dtype=np.float64)
    if flip:
        k = n - 1 - k
    x = np.clip(x0 + (k + 0.5) * cw / n - 0.5, lo, hi)
    xs = np.clip((x + 0.5) * f - 0.5, 0.0, src_n - 1)
    a = xs.astype(np.int64)
    b = np.minimum(a + 1, src_n - 1)
    return a, b, (xs - a).astype(np.float32)


def render(img, full_w, full_h, p, flip, out):
    """Bilinear taps at half-pixel centres of the crop p = (x0, y0, cw, ch, lo_x, hi_x, lo_y, hi_y)."""
    x0, y0, cw, ch, lox, hix, loy, hiy = p
    H, W = img.shape[:2]
    xa, xb, xw = axis(out, x0, cw, lox, hix, W / full_w, W, flip)
    ya, yb, yw = axis(out, y0, ch, loy, hiy, H / full_h, H, False)
    im = img.astype(np.float32)
    top = im[ya][:, xa] + xw[None, :, None] * (im[ya][:, xb] - im[ya][:, xa])
    bot = im[yb][:, xa] + xw[None, :, None] * (im[yb][:, xb] - im[yb][:, xa])
    return top + yw[:, None, None] * (bot - top)   # (out, out, C) in [0, 255]


def sample(shards, i, rng, a):
    """One augmented (C, H, W) float tensor, or None for a corrupt record."""
    try:
        w, h, raw, jp = decode(shards, i, a.channels, None, a.image_size)
        if a.train:
            flip = False
            if a.policy == "defects":
                p = defects_params(rng, w, h, a.image_size, 0.875, a.crop_pad)
                flip = rng.uniform() < a.hflip
            else:
                p = rrc_params(rng, w, h, (a.rrc_scale_min, 1.0), (3 / 4, 4 / 3))
                flip = rng.uniform() < a.hflip
        else:
            p, flip = eval_params(w, h, a.image_size, 0.875), False
        if raw is None:
            buf, pf, flags = jp
            sf = pick_scale(p[2], p[3], a.image_size)
            # TJFLAG_STOPONWARNING: PyTurboJPEG reports the stop as a warning; dptrain skips the record.
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                img = tj().decode(buf, pixel_format=pf, scaling_factor=sf, flags=flags)
            if img.ndim == 2:
                img = img[..., None]
        else:
            img = raw
        v = render(img, w, h, p, flip, a.image_size) / 255.0
    except Exception:
        return None
    C = a.channels
    v = (v - MEAN[:C]) / STD[:C]
    return torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1), dtype=np.float32))


def make_batch(shards, idx, rng, a):
    xs, ys = [None] * len(idx), [None] * len(idx)
    for j, i in enumerate(idx):
        xs[j] = sample(shards, i, rng, a)
        ys[j] = shards.labels[i]
    # Corrupt record: fill from the next record of the batch that decodes (dptrain's rule).
    for j in range(len(idx)):
        if xs[j] is None:
            for k in range(1, len(idx)):
                jj = (j + k) % len(idx)
                v = sample(shards, idx[jj], rng, a)
                if v is not None:
                    xs[j], ys[j] = v, shards.labels[idx[jj]]
                    break
    keep = [j for j in range(len(idx)) if xs[j] is not None]
    if not keep:
        return None, None
    return torch.stack([xs[j] for j in keep]), torch.tensor([ys[j] for j in keep])


# ---- model, schedule, metrics --------------------------------------------------------------
def load_init(model, path):
    from safetensors.torch import load_file
    sd = load_file(path)
    res = model.load_state_dict(sd, strict=True)
    return res


def lr_at(a, s, total, warmup):
    if s < warmup:
        f = 0.1
        return a.lr * (f + (1 - f) * s / warmup)
    k, d = s - warmup, total - warmup
    if d <= 0:
        return a.lr
    k = min(k, d)
    return a.min_lr + (a.lr - a.min_lr) * 0.5 * (1 + math.cos(math.pi * k / d))


def macro_f1(cm):
    C = cm.shape[0]
    tp = np.diag(cm).astype(np.float64)
    pred, sup = cm.sum(0), cm.sum(1)
    f1 = np.where(pred + sup > 0, 2 * tp / np.maximum(pred + sup, 1), 0.0)
    present = (pred + sup) > 0
    return float(f1[present].mean()) if present.any() else 0.0, f1.tolist()


def evaluate(model, val, a):
    model.eval()
    C = val.num_classes
    cm = np.zeros((C, C), np.int64)
    loss_sum, n = 0.0, 0
    rng = np.random.default_rng(0)
    ea = argparse.Namespace(**vars(a))
    ea.train = False
    with torch.no_grad():
        for s in range(0, len(val), 64):
            xs, ys = [], []
            for i in range(s, min(s + 64, len(val))):
                v = sample(val, i, rng, ea)
                if v is not None:
                    xs.append(v)
                    ys.append(int(val.labels[i]))
            if not xs:
                continue
            logits = model(torch.stack(xs))
            y = torch.tensor(ys)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            n += len(ys)
            for t, p in zip(ys, logits.argmax(1).tolist()):
                cm[t, p] += 1
    model.train()
    f1, per = macro_f1(cm)
    return {"macro_f1": f1, "per_class_f1": per, "accuracy": float(np.trace(cm) / max(n, 1)),
            "val_loss": loss_sum / max(n, 1), "samples": n}


def worker(rank, a, port):
    torch.set_num_threads(a.threads)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    torch.manual_seed(a.seed * 1000 + rank)
    train, val = Shards(a.train_glob), (Shards(a.val_glob) if rank == 0 else None)
    C = train.num_classes
    model = BaselineCNN(a.channels, C, a.cnn_width)
    load_init(model, a.init)
    ddp = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    decay = [p for n_, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n_, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, momentum=a.momentum,
                          nesterov=bool(a.nesterov))
    counts = np.bincount(train.labels, minlength=C).astype(np.float64)
    w = None
    if a.class_weights == "auto":
        w = torch.tensor(np.where(counts > 0, counts.sum() / (C * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
    crit = nn.CrossEntropyLoss(weight=w, label_smoothing=a.label_smoothing)
    sampler = torch.utils.data.distributed.DistributedSampler(range(len(train)), num_replicas=a.world, rank=rank,
                                                              shuffle=True, seed=a.seed, drop_last=True)
    steps_per_epoch = len(sampler) // a.batch
    total = steps_per_epoch * a.epochs
    warmup = a.warmup_steps if a.warmup_steps > 0 else int(a.warmup_epochs * steps_per_epoch)
    rng = np.random.default_rng([a.seed, rank])
    ta = argparse.Namespace(**vars(a))
    ta.train = bool(a.augment)
    curve, step, t0 = [], 0, time.time()
    for epoch in range(a.epochs):
        sampler.set_epoch(epoch)
        idx = list(sampler)
        lsum, lcount = 0.0, 0
        for b in range(steps_per_epoch):
            x, y = make_batch(train, idx[b * a.batch:(b + 1) * a.batch], rng, ta)
            for g in opt.param_groups:
                g["lr"] = lr_at(a, step, total, warmup)
            opt.zero_grad(set_to_none=True)
            loss = crit(ddp(x), y)
            loss.backward()
            opt.step()
            step += 1
            lsum += loss.item()
            lcount += 1
        # BN running statistics: mean over ranks (dptrain averages before each eval).
        for buf in model.buffers():
            if buf.dtype.is_floating_point:
                dist.all_reduce(buf)
                buf /= a.world
        if rank == 0:
            m = evaluate(model, val, a)
            m.update(epoch=epoch + 1, train_loss=lsum / max(lcount, 1), wall_s=time.time() - t0)
            curve.append(m)
            print(f"twin epoch {epoch + 1}: val macro-F1 {m['macro_f1']:.4f} acc {m['accuracy']:.4f} "
                  f"loss {m['val_loss']:.4f} train loss {m['train_loss']:.4f} ({m['wall_s']:.0f} s)", flush=True)
        dist.barrier()
    if rank == 0:
        with open(a.out, "w") as f:
            json.dump({"recipe": vars(a), "curve": curve}, f, indent=1)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", dest="train_glob", required=True)
    p.add_argument("--val", dest="val_glob", required=True)
    p.add_argument("--init", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="cnn")
    p.add_argument("--cnn-width", type=int, default=32)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--min-lr", type=float, default=0.0)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--class-weights", default="")
    p.add_argument("--policy", default="defects")
    p.add_argument("--rrc-scale-min", type=float, default=0.08)
    p.add_argument("--hflip", type=float, default=0.5)
    p.add_argument("--crop-pad", type=int, default=0)
    p.add_argument("--augment", type=int, default=1, help="0: the eval transform for training too (dptrain --augment 0)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.model != "cnn":
        raise SystemExit("twin: only the baseline CNN has a twin here")
    port = 29500 + (os.getpid() % 1000)
    mp.spawn(worker, args=(a, port), nprocs=a.world, join=True)


if __name__ == "__main__":
    main()
