#!/usr/bin/env python3
"""End-to-end parity: dptrain vs its PyTorch twin (bench/parity/twin.py), same shards, same
initial weights (dptrain --save-init 1), same recipe, several seeds. Writes
  WORK/<dataset>-s<seed>/{dptrain.log, twin.json}, RESULTS/parity.json, RESULTS/parity.md and
  RESULTS/parity_curves.svg (per-epoch val macro-F1 of both sides).
Goal (issue 12): mean final val macro-F1 of dptrain >= PyTorch's - 0.01, and the difference
within 2 pooled standard deviations.

usage: run_parity.py [--dptrain build/dptrain] [--work runs/parity] [--results bench/results]
                     [--datasets fmnist,shopsight5] [--seeds 1,2,3] [--fmnist-train 15000]
                     [--fmnist-val 2000] [--ss5-count 4000]
"""
import argparse
import glob
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1", DPTRAIN_PROGRESS="plain")
FMNIST = "/usr/share/datasets/fashion-mnist"

RECIPES = {
    # README's Fashion-MNIST recipe (imagenet policy: import-idx shards carry no attribute), 3 epochs.
    "fmnist": dict(model="cnn", image_size=28, channels=1, epochs=3, batch=64, lr=0.1, warmup_epochs=1.0,
                   label_smoothing=0.1, class_weights="", policy="imagenet"),
    # The quickstart recipe at 64 px (defects policy from the shards' attribute), 5 epochs.
    "shopsight5": dict(model="cnn", image_size=64, channels=3, epochs=5, batch=32, lr=0.05, warmup_steps=10,
                       label_smoothing=0.1, class_weights="auto", policy="defects"),
}


def sh(cmd, log=None, env=ENV):
    t0 = time.time()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log:
        with open(log, "w") as f:
            f.write(p.stdout)
    if p.returncode:
        print(p.stdout[-3000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return p.stdout, time.time() - t0


def subset(src_glob, dst, n):
    """First n records of raw shards into one raw shard (same attributes)."""
    files = sorted(glob.glob(src_glob))
    imgs, labs = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            off, blob, lab = h["images/offsets"][:], h["images/bytes"][:], h["labels"][:]
            attrs = dict(h.attrs)
            for i in range(len(lab)):
                if len(labs) >= n:
                    break
                imgs.append(blob[off[i]:off[i + 1]])
                labs.append(lab[i])
    offs = np.concatenate([[0], np.cumsum([len(x) for x in imgs])]).astype(np.int64)
    with h5py.File(dst, "w") as h:
        for k, v in attrs.items():
            h.attrs[k] = v
        h.create_dataset("images/bytes", data=np.concatenate(imgs).astype(np.uint8))
        h.create_dataset("images/offsets", data=offs)
        h.create_dataset("labels", data=np.array(labs, np.int32))
        h.create_dataset("ids", data=np.arange(len(labs), dtype=np.int64))


def prepare(a, name):
    d = os.path.join(a.work, "data", name)
    if name == "fmnist":
        if not os.path.exists(f"{d}/train-00000.h5"):
            os.makedirs(f"{d}/full", exist_ok=True)
            for split, pre in (("train", "train"), ("val", "t10k")):
                sh([a.dptrain, "data", "import-idx", "--images", f"{FMNIST}/{pre}-images-idx3-ubyte.gz", "--labels",
                    f"{FMNIST}/{pre}-labels-idx1-ubyte.gz", "--out", f"{d}/full/{split}"])
            subset(f"{d}/full/train-*.h5", f"{d}/train-00000.h5", a.fmnist_train)
            subset(f"{d}/full/val-*.h5", f"{d}/val-00000.h5", a.fmnist_val)
    else:
        if not os.path.exists(f"{d}/train-00000.h5"):
            sh([a.dptrain, "data", "synth", "--preset", "shopsight5", "--count", str(a.ss5_count), "--out", d,
                "--size-min", "72", "--size-max", "96", "--corrupt-frac", "0.005", "--seed", "7", "--threads", "1"])
    return f"{d}/train-*.h5", f"{d}/val-*.h5"


def dptrain_args(r):
    args = ["--model", r["model"], "--image-size", str(r["image_size"]), "--channels", str(r["channels"]),
            "--epochs", str(r["epochs"]), "--batch", str(r["batch"]), "--lr", str(r["lr"]),
            "--label-smoothing", str(r["label_smoothing"]), "--augment-policy", r["policy"]]
    if r.get("warmup_steps"):
        args += ["--warmup-steps", str(r["warmup_steps"])]
    if r.get("warmup_epochs"):
        args += ["--warmup-epochs", str(r["warmup_epochs"])]
    if r["class_weights"]:
        args += ["--class-weights", r["class_weights"]]
    return args


def twin_args(r):
    args = ["--model", r["model"], "--image-size", str(r["image_size"]), "--channels", str(r["channels"]),
            "--epochs", str(r["epochs"]), "--batch", str(r["batch"]), "--lr", str(r["lr"]),
            "--label-smoothing", str(r["label_smoothing"]), "--policy", r["policy"],
            "--warmup-steps", str(r.get("warmup_steps", 0)), "--warmup-epochs", str(r.get("warmup_epochs", 0.0))]
    if r["class_weights"]:
        args += ["--class-weights", r["class_weights"]]
    return args


EVAL_RE = re.compile(r"eval at step \d+ \(epoch (\d+), [0-9.]+ s\): accuracy ([0-9.]+)  macro-F1 ([0-9.]+)  loss ([0-9.]+)")


def run_one(a, name, seed, tr, va):
    r = RECIPES[name]
    out = os.path.join(a.work, f"{name}-s{seed}")
    os.makedirs(out, exist_ok=True)
    res_path = f"{out}/pair.json"
    if os.path.exists(res_path):
        return json.load(open(res_path))
    text, t_d = sh(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", a.dptrain, "train", "--train", tr,
                    "--val", va, "--out", f"{out}/dptrain", "--seed", str(seed), "--threads", "1",
                    "--loader-threads", "1", "--save-init", "1"] + dptrain_args(r), log=f"{out}/dptrain.log")
    d_curve = [{"epoch": int(m.group(1)) + 1, "accuracy": float(m.group(2)), "macro_f1": float(m.group(3)),
                "val_loss": float(m.group(4))} for m in EVAL_RE.finditer(text)]
    _, t_t = sh([sys.executable, os.path.join(HERE, "twin.py"), "--train", tr, "--val", va, "--init",
                 f"{out}/dptrain/init.safetensors", "--out", f"{out}/twin.json", "--seed", str(seed), "--world", "2",
                 "--threads", "1"] + twin_args(r), log=f"{out}/twin.log")
    t_curve = json.load(open(f"{out}/twin.json"))["curve"]
    pair = {"dataset": name, "seed": seed, "recipe": r, "dptrain": d_curve, "torch": t_curve,
            "dptrain_wall_s": t_d, "torch_wall_s": t_t,
            "load_avg": os.getloadavg()[0]}
    json.dump(pair, open(res_path, "w"), indent=1)
    print(f"{name} seed {seed}: final val macro-F1 dptrain {d_curve[-1]['macro_f1']:.4f} ({t_d:.0f} s), "
          f"torch {t_curve[-1]['macro_f1']:.4f} ({t_t:.0f} s), load {pair['load_avg']:.1f}", flush=True)
    return pair


def summary(pairs):
    rows = []
    for name in sorted({p["dataset"] for p in pairs}):
        ps = [p for p in pairs if p["dataset"] == name]
        d = [p["dptrain"][-1]["macro_f1"] for p in ps]
        t = [p["torch"][-1]["macro_f1"] for p in ps]
        sd_d = statistics.stdev(d) if len(d) > 1 else float("nan")
        sd_t = statistics.stdev(t) if len(t) > 1 else float("nan")
        pooled = math.sqrt((sd_d ** 2 + sd_t ** 2) / 2)
        diff = statistics.mean(d) - statistics.mean(t)
        ok = diff >= -0.01 and abs(diff) <= 2 * pooled
        rows.append(dict(dataset=name, seeds=[p["seed"] for p in ps], dptrain=d, torch=t,
                         mean_dptrain=statistics.mean(d), sd_dptrain=sd_d, mean_torch=statistics.mean(t),
                         sd_torch=sd_t, diff=diff, pooled_sd=pooled, goal_met=ok,
                         dptrain_wall_s=statistics.mean(p["dptrain_wall_s"] for p in ps),
                         torch_wall_s=statistics.mean(p["torch_wall_s"] for p in ps)))
    return rows


def svg(pairs, path):
    names = sorted({p["dataset"] for p in pairs})
    W, H, pad = 420, 300, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(names)}" height="{H + 30}" '
             f'font-family="sans-serif" font-size="12">']
    for k, name in enumerate(names):
        ps = [p for p in pairs if p["dataset"] == name]
        ox = k * W
        E = max(len(p["dptrain"]) for p in ps)
        ys = [c["macro_f1"] for p in ps for side in ("dptrain", "torch") for c in p[side]]
        lo, hi = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
        X = lambda e: ox + pad + (e - 1) / max(E - 1, 1) * (W - 2 * pad)  # noqa: E731
        Y = lambda v: 20 + (1 - (v - lo) / (hi - lo)) * (H - pad)  # noqa: E731
        parts.append(f'<text x="{ox + W / 2}" y="14" text-anchor="middle">{name}: val macro-F1 per epoch '
                     f'(blue dptrain, orange PyTorch twin; {len(ps)} seeds)</text>')
        parts.append(f'<line x1="{X(1)}" y1="{Y(lo)}" x2="{X(E)}" y2="{Y(lo)}" stroke="black"/>')
        parts.append(f'<line x1="{X(1)}" y1="{Y(lo)}" x2="{X(1)}" y2="{Y(hi)}" stroke="black"/>')
        for i in range(5):
            v = lo + (hi - lo) * i / 4
            parts.append(f'<text x="{X(1) - 5}" y="{Y(v) + 4}" text-anchor="end">{v:.2f}</text>')
        for e in range(1, E + 1):
            parts.append(f'<text x="{X(e)}" y="{Y(lo) + 16}" text-anchor="middle">{e}</text>')
        parts.append(f'<text x="{ox + W / 2}" y="{H + 20}" text-anchor="middle">epoch</text>')
        for side, col in (("dptrain", "#1f77b4"), ("torch", "#ff7f0e")):
            for p in ps:
                pts = " ".join(f"{X(c['epoch'])},{Y(c['macro_f1'])}" for c in p[side])
                parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.5" points="{pts}"/>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dptrain", default="build/dptrain")
    ap.add_argument("--work", default="runs/parity")
    ap.add_argument("--results", default="bench/results")
    ap.add_argument("--datasets", default="fmnist,shopsight5")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--fmnist-train", type=int, default=15000)
    ap.add_argument("--fmnist-val", type=int, default=2000)
    ap.add_argument("--ss5-count", type=int, default=4000)
    a = ap.parse_args()
    a.dptrain = os.path.abspath(a.dptrain)
    pairs = []
    for name in a.datasets.split(","):
        tr, va = prepare(a, name)
        for seed in map(int, a.seeds.split(",")):
            pairs.append(run_one(a, name, seed, tr, va))
            rows = summary(pairs)
            os.makedirs(a.results, exist_ok=True)
            json.dump({"rows": rows, "pairs": pairs}, open(f"{a.results}/parity.json", "w"), indent=1)
            svg(pairs, f"{a.results}/parity_curves.svg")
    for r in summary(pairs):
        print(f"{r['dataset']}: dptrain {r['mean_dptrain']:.4f} +- {r['sd_dptrain']:.4f}, torch "
              f"{r['mean_torch']:.4f} +- {r['sd_torch']:.4f}, diff {r['diff']:+.4f} (2 pooled SD "
              f"{2 * r['pooled_sd']:.4f}): {'met' if r['goal_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
