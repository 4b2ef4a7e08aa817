#!/usr/bin/env python3
"""Issue 12 measurements, one run at a time: augmentation policy and imbalance handling.
Each experiment trains with `dptrain train` on 2 ranks, then evaluates the weights on the test
split with `dptrain eval` (raw argmax, and the logit-adjusted figures when the run tuned them).
Results go to RESULTS/quality_runs.json (appended per run, so an interrupted sweep keeps what it
measured) and a Markdown table per group to RESULTS/quality_tables.md.

usage: measure.py [--dptrain build/dptrain] [--work runs/quality] [--results bench/results]
                  [--groups aug,imb] [--seeds 1]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           DPTRAIN_PROGRESS="plain")
HERE = os.path.dirname(os.path.abspath(__file__))
BASE = ["--model", "cnn", "--image-size", "64", "--batch", "32", "--lr", "0.05", "--warmup-steps", "10",
        "--label-smoothing", "0.1", "--threads", "1", "--loader-threads", "1"]


def sh(cmd, log, tries=2):
    for k in range(tries):   # a run killed from outside (shared machine) is retried once
        t0 = time.time()
        p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        open(log, "w").write(p.stdout)
        if p.returncode == 0:
            break
        print(f"(attempt {k + 1} exited {p.returncode}: {log})", flush=True)
    if p.returncode:
        print(p.stdout[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.time() - t0


def data(a, name):
    d = os.path.join(a.work, "data", name)
    if name == "realphoto":
        d = os.path.join(a.work, "data", "realphoto")
        if not os.path.exists(f"{d}/train/train-00000.h5"):
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, "..", "realphoto", "make_realphoto.py"), "--out", d,
                            "--count", "3000", "--size", "128", "--dptrain", a.dptrain], check=True)
        return f"{d}/train/train-*.h5", f"{d}/val/train-*.h5", f"{d}/test/train-*.h5"
    preset = {"shopsight5": "shopsight5", "shoplens12": "shoplens12"}[name]
    if not os.path.exists(f"{d}/train-00000.h5"):
        subprocess.run([a.dptrain, "data", "synth", "--preset", preset, "--count", "4000", "--out", d, "--size-min",
                        "72", "--size-max", "96", "--corrupt-frac", "0.005", "--seed", "7", "--threads", "1"],
                       check=True, stdout=subprocess.DEVNULL)
    return f"{d}/train-*.h5", f"{d}/val-*.h5", f"{d}/test-*.h5"


GROUPS = {
    # (label, dataset, epochs, extra args)
    "aug": [("defects", "shopsight5", 5, ["--augment-policy", "defects", "--class-weights", "auto"]),
            ("imagenet", "shopsight5", 5, ["--augment-policy", "imagenet", "--class-weights", "auto"]),
            ("defects", "realphoto", 10, ["--augment-policy", "defects", "--class-weights", "auto"]),
            ("imagenet", "realphoto", 10, ["--augment-policy", "imagenet", "--class-weights", "auto"])],
    "imb": [(lab, ds, 5, extra) for ds in ("shopsight5", "shoplens12") for lab, extra in
            (("none (+ logit adjustment)", ["--logit-adjust", "1"]),
             ("class weights auto", ["--class-weights", "auto"]),
             ("balanced sampler", ["--sampler", "balanced"]))],
}


def run(a, group, label, ds, epochs, extra, seed):
    tag = f"{group}-{ds}-{label.split()[0]}-{'_'.join(extra[1::2])}-s{seed}".replace("/", "_")
    out = os.path.join(a.work, tag)
    done = os.path.join(out, "measure.json")
    if os.path.exists(done):
        return json.load(open(done))
    os.makedirs(out, exist_ok=True)
    tr, va, te = data(a, ds)
    wall = sh(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", a.dptrain, "train", "--train", tr, "--val",
               va, "--out", out, "--epochs", str(epochs), "--seed", str(seed)] + BASE + extra, f"{out}/train.log")
    sh(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", a.dptrain, "eval", "--weights",
        f"{out}/model.safetensors", "--data", te, "--out", out, "--threads", "1", "--loader-threads", "1"],
       f"{out}/eval.log")
    q = json.load(open(f"{out}/results.json"))["quality"]
    e = json.load(open(f"{out}/eval_results.json"))["quality"]
    r = {"group": group, "label": label, "dataset": ds, "epochs": epochs, "args": extra, "seed": seed,
         "wall_s": wall, "load_avg": os.getloadavg()[0], "class_names": q["class_names"],
         "val_macro_f1": q["macro_f1"], "test_macro_f1": e["macro_f1"], "test_accuracy": e["accuracy"],
         "test_f1": e["f1"], "test_samples": e["samples"]}
    if "logit_adjusted" in e:
        r["test_macro_f1_adjusted"] = e["logit_adjusted"]["macro_f1"]
        r["test_f1_adjusted"] = e["logit_adjusted"]["f1"]
        r["val_macro_f1_adjusted"] = q["logit_adjusted"]["macro_f1"]
    json.dump(r, open(done, "w"), indent=1)
    print(f"{group} {ds} {label}: val {r['val_macro_f1']:.4f} test {r['test_macro_f1']:.4f}"
          + (f" (adjusted {r['test_macro_f1_adjusted']:.4f})" if "test_macro_f1_adjusted" in r else "")
          + f", {wall:.0f} s, load {r['load_avg']:.1f}", flush=True)
    return r


def tables(rows):
    lines = []
    for group in ("aug", "imb"):
        for ds in sorted({r["dataset"] for r in rows if r["group"] == group}):
            rs = [r for r in rows if r["group"] == group and r["dataset"] == ds]
            names = rs[0]["class_names"]
            lines.append(f"\n**{group} / {ds}** (CNN 64 px, 2 ranks, test split; per-class F1 on test)\n")
            lines.append("| setup | seed | epochs | val macro-F1 | test macro-F1 | " + " | ".join(names) +
                         " | wall s | load |")
            lines.append("|---" * (len(names) + 7) + "|")
            for r in rs:
                lines.append(f"| {r['label']} | {r['seed']} | {r['epochs']} | {r['val_macro_f1']:.4f} | "
                             f"**{r['test_macro_f1']:.4f}** | " + " | ".join(f"{v:.3f}" for v in r["test_f1"]) +
                             f" | {r['wall_s']:.0f} | {r['load_avg']:.0f} |")
                if "test_macro_f1_adjusted" in r:
                    lines.append(f"| ... + logit adjustment (tuned on val) | {r['seed']} | {r['epochs']} | "
                                 f"{r['val_macro_f1_adjusted']:.4f} | **{r['test_macro_f1_adjusted']:.4f}** | " +
                                 " | ".join(f"{v:.3f}" for v in r["test_f1_adjusted"]) + " | | |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dptrain", default="build/dptrain")
    ap.add_argument("--work", default="runs/quality")
    ap.add_argument("--results", default="bench/results")
    ap.add_argument("--groups", default="aug,imb")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--only", default="", help="comma list of datasets to keep")
    a = ap.parse_args()
    a.dptrain = os.path.abspath(a.dptrain)
    rows = []
    for g in a.groups.split(","):
        for label, ds, epochs, extra in GROUPS[g]:
            if a.only and ds not in a.only.split(","):
                continue
            for seed in map(int, a.seeds.split(",")):
                rows.append(run(a, g, label, ds, epochs, extra, seed))
                os.makedirs(a.results, exist_ok=True)
                json.dump(rows, open(f"{a.results}/quality_runs.json", "w"), indent=1)
                open(f"{a.results}/quality_tables.md", "w").write(tables(rows))


if __name__ == "__main__":
    main()
