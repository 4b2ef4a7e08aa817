#!/usr/bin/env python3
"""Multi-rank tests of `dptrain train` on loopback (mpirun --oversubscribe).

usage: mpi_tests.py TEST DPTRAIN SHARD_DIR WORK_DIR
TEST: equivalence | equivalence_bn | lossconfig | schedule | noise | coverage | fault | badconfig | skips | torchload
Each test exits 0 on success, 1 on failure (with the reason), 77 to skip.
"""
import json
import os
import subprocess
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_results_schema  # noqa: E402

from mpi_util import ENV, fail, read_safetensors, run  # noqa: E402
import equivalence  # noqa: E402
import loss_config  # noqa: E402
import schedule_check  # noqa: E402


def common(shards, extra):
    return ["--train", f"{shards}/train-*.h5", "--seed", "3", "--threads", "1", "--loader-threads", "1"] + extra


def coverage(dptrain, shards, work):
    """Every training sample seen exactly once per epoch across ranks; results.json schema; eval."""
    out_dir = f"{work}/coverage"
    dump = f"{work}/coverage_ids"
    for r in range(2):
        if os.path.exists(f"{dump}.rank{r}"):
            os.remove(f"{dump}.rank{r}")
    args = [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16", "--epochs", "2",
            "--lr", "0.05", "--val", f"{shards}/val-*.h5", "--baseline-steps", "2",
            "--dump-ids", dump] + common(shards, ["--batch", "4", "--out", out_dir])
    rc, out, secs = run(2, args)
    if rc:
        fail(f"run exited {rc}", out)
    seen = {}
    for r in range(2):
        with open(f"{dump}.rank{r}") as f:
            for line in f:
                ep, idx, rid = map(int, line.split())
                seen.setdefault(ep, []).append(rid)
    expect = list(range(1000, 1064))
    if sorted(seen) != [0, 1]:
        fail(f"epochs dumped: {sorted(seen)}")
    for ep, ids in seen.items():
        if sorted(ids) != expect:
            dup = len(ids) - len(set(ids))
            fail(f"epoch {ep}: {len(ids)} ids, {dup} duplicates, missing {sorted(set(expect) - set(ids))[:10]}")
    print("coverage: 64 samples seen exactly once in each of 2 epochs across 2 ranks")
    with open(f"{out_dir}/results.json") as f:
        doc = json.load(f)
    errs = check_results_schema.check(doc, "train", 2)
    if errs:
        fail("results.json schema: " + "; ".join(errs), out)
    if not (doc["scaling_efficiency"] and doc["scaling_efficiency"] > 0):
        fail("no scaling efficiency with --baseline-steps")
    eff = doc["images_per_s"] / (2 * doc["baseline"]["images_per_s"])
    if abs(eff - doc["scaling_efficiency"]) > 1e-9 * max(1.0, eff):
        fail(f"scaling_efficiency {doc['scaling_efficiency']} != images_per_s / (2 x baseline) = {eff}")
    cost = doc["world_size"] * doc["throughput"]["total_wall_s"] / 3600 * doc["cost"]["price_per_rank_hour"]
    if abs(cost - doc["cost_usd"]) > 1e-9 * max(1e-9, cost):
        fail(f"cost_usd {doc['cost_usd']} != ranks x hours x price = {cost}")
    with open(f"{out_dir}/steps.csv") as f:
        rows = f.read().strip().splitlines()
    if len(rows) != 1 + doc["throughput"]["steps"]:
        fail(f"steps.csv has {len(rows) - 1} rows for {doc['throughput']['steps']} steps")
    # dptrain eval on the saved weights reproduces the final evaluation.
    rc, eout, _ = run(2, [dptrain, "eval", "--weights", f"{out_dir}/model.safetensors", "--data",
                          f"{shards}/val-*.h5", "--batch", "4", "--out", out_dir, "--threads", "1"])
    if rc:
        fail(f"dptrain eval exited {rc}", eout)
    with open(f"{out_dir}/eval_results.json") as f:
        ev = json.load(f)
    errs = check_results_schema.check(ev, "eval", 2)
    if errs:
        fail("eval_results.json schema: " + "; ".join(errs), eout)
    # 31 val samples over 2 ranks: the sampler's wrap-around padding must not be counted.
    if doc["quality"]["samples"] != 31 or ev["quality"]["samples"] != 31:
        fail(f"evaluated {doc['quality']['samples']} / {ev['quality']['samples']} samples, the val shard has 31")
    if ev["quality"]["confusion"] != doc["quality"]["confusion"]:
        fail(f"eval confusion {ev['quality']['confusion']} != training's final {doc['quality']['confusion']}")
    print(f"results.json valid; eval reproduces macro-F1 {ev['macro_f1']:.4f}; run took {secs:.1f} s")
    print("ok")


def fault(dptrain, shards, work):
    """An injected fatal error on rank 1 ends the whole job within 30 s with a non-zero exit."""
    env = dict(ENV, DPTRAIN_INJECT_FAULT="1:3")
    args = [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16", "--steps", "100000",
            "--out", f"{work}/fault"] + common(shards, ["--batch", "4"])
    try:
        rc, out, secs = run(2, args, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        fail("job still running after 30 s (hang)")
    if rc == 0:
        fail("job exited 0 despite the injected fault", out)
    if "injected fault" not in out or "rank 1" not in out:
        fail("fatal message does not name the rank and reason", out)
    print(f"fault: job ended in {secs:.1f} s with exit {rc}")
    print("ok")


def badconfig(dptrain, shards, work):
    """Bad configuration fails before any work with a message naming the setting."""
    cases = [
        (["--model", "nosuchnet"], "'model'"),
        (["--train", f"{work}/nothing-*.h5"], "'train'"),
        (["--batch", "0"], "'batch'"),
        (["--classes", "7"], "'classes'"),
        (["--batch", "64"], "'batch'"),   # larger than the data: no step per epoch
        (["--class-weights", "1,2"], "'class-weights'"),
    ]
    for extra, needle in cases:
        args = [dptrain, "train", "--model", "cnn", "--image-size", "16", "--train", f"{shards}/train-*.h5",
                "--out", f"{work}/bad", "--steps", "1"] + extra
        rc, out, _ = run(2, args, timeout=60)
        if rc == 0 or needle not in out:
            fail(f"{extra}: exit {rc}, expected a message naming {needle}", out)
        if "step 1/" in out:
            fail(f"{extra}: training started despite the bad configuration", out)
        print(f"badconfig {extra}: exit {rc}, names {needle}")
    print("ok")


def skips(dptrain, shards, work):
    """Corrupt records are skipped and counted; past --max-skip-rate the job stops with a message.
    Also: --baseline FILE takes the single-rank rate from a previous results.json."""
    bad = f"{work}/corrupt_shards"
    maker = os.environ.get("TRAIN_MAKE_SHARDS") or os.path.join(os.path.dirname(dptrain), "tests", "train",
                                                                "train_make_shards")
    subprocess.run([maker, bad, "64", "30", "16", "5", "10"], check=True, stdout=subprocess.DEVNULL)
    base = [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16", "--epochs", "1",
            "--train", f"{bad}/train-*.h5", "--batch", "4", "--threads", "1", "--loader-threads", "1"]
    rc, out, _ = run(2, base + ["--out", f"{work}/skip_fail"])   # 6 of 64 corrupt > 1 %
    if rc == 0 or "max-skip-rate" not in out:
        fail(f"expected a failure naming --max-skip-rate, exit {rc}", out)
    print("skips: 9.4 % corrupt records stop the job at the default 1 % limit")
    # A 1-rank run, then a 2-rank run that uses it as the baseline.
    rc, out, _ = run(1, base + ["--max-skip-rate", "0.2", "--out", f"{work}/skip_np1"])
    if rc:
        fail(f"1-rank run with --max-skip-rate 0.2 exited {rc}", out)
    rc, out, _ = run(2, base + ["--max-skip-rate", "0.2", "--out", f"{work}/skip_np2",
                                "--baseline", f"{work}/skip_np1/results.json"])
    if rc:
        fail(f"2-rank run with --baseline exited {rc}", out)
    with open(f"{work}/skip_np1/results.json") as f:
        d1 = json.load(f)
    with open(f"{work}/skip_np2/results.json") as f:
        d2 = json.load(f)
    if d2["data"]["skipped"] < 1 or d1["data"]["skipped"] < 1:
        fail(f"skipped counts {d1['data']['skipped']}, {d2['data']['skipped']}")
    if d2["baseline"]["images_per_s"] != d1["images_per_s"]:
        fail("--baseline FILE did not take images_per_s from the file")
    eff = d2["images_per_s"] / (2 * d1["images_per_s"])
    if abs(d2["scaling_efficiency"] - eff) > 1e-9 * eff:
        fail(f"efficiency {d2['scaling_efficiency']} != {eff}")
    print(f"skips: {d2['data']['skipped']} skipped and reported; efficiency vs file baseline {eff:.3f}")
    # dptrain study over the two runs: both measured runs listed, decisions with their binding terms.
    report = f"{work}/study.md"
    p = subprocess.run([dptrain, "study", "--results", f"{work}/skip_np1/results.json",
                        f"{work}/skip_np2/results.json", "--out", report, "--json", f"{work}/study.json"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if p.returncode:
        fail(f"dptrain study exited {p.returncode}", p.stdout)
    text = open(report).read()
    rows = [l for l in text.splitlines() if "skip_np" in l and l.startswith("| ") and "| cnn |" in l]
    if not any("| 1 |" in r for r in rows) or not any("| 2 |" in r for r in rows):
        fail("study's measured-runs table does not list the 1- and 2-rank runs", text)
    if "## Decision summary" not in text or "**Production:**" not in text or "## Calibration" not in text:
        fail("study report lacks the decision summary, production pick or calibration", text)
    with open(f"{work}/study.json") as f:
        st = json.load(f)
    if len(st["runs"]) != 2 or not st["scenarios"] or not st["calibration"]["rows"]:
        fail("study.json lacks runs, scenarios or calibration rows")
    print("study: report lists both runs, decisions, calibration")
    print("ok")


def torchload(dptrain, shards, work):
    """model.safetensors loads into torchvision's resnet18 with strict=True (the scoring artifact)."""
    try:
        import torch
        import torchvision
    except ImportError:
        print("skip: no torch/torchvision")
        sys.exit(77)
    out_dir = f"{work}/r18"
    rc, out, _ = run(1, [dptrain, "train", "--model", "resnet18", "--image-size", "32", "--steps", "1",
                         "--out", out_dir] + common(shards, ["--batch", "4"]))
    if rc:
        fail(f"resnet18 run exited {rc}", out)
    tensors, meta = read_safetensors(f"{out_dir}/model.safetensors")
    sd = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    m = torchvision.models.resnet18(num_classes=int(meta["dptrain.classes"]))
    res = m.load_state_dict(sd, strict=True)
    print(f"torchload: {len(sd)} tensors loaded into torchvision resnet18 (strict): {res}")
    print("ok")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    test, dptrain, shards, work = sys.argv[1:]
    os.makedirs(work, exist_ok=True)
    if test == "equivalence":
        equivalence.vit(dptrain, shards, work)
    elif test == "equivalence_bn":
        equivalence.bn(dptrain, shards, work)
    elif test == "lossconfig":
        loss_config.lossconfig(dptrain, work)
    elif test == "schedule":
        schedule_check.schedule(dptrain, shards, work)
    elif test == "noise":
        # Measures the fp32 noise behind the equivalence tolerances (label long).
        equivalence.noise(dptrain, shards, work)
    elif test == "coverage":
        coverage(dptrain, shards, work)
    elif test == "fault":
        fault(dptrain, shards, work)
    elif test == "torchload":
        torchload(dptrain, shards, work)
    elif test == "skips":
        skips(dptrain, shards, work)
    elif test == "badconfig":
        badconfig(dptrain, shards, work)
    else:
        print(f"unknown test {test}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
