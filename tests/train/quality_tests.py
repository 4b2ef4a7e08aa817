#!/usr/bin/env python3
"""End-to-end checks of evaluation, sampling and post-hoc adjustment (issue 12):
  quality_tests.py TEST DPTRAIN MAKE_SHARDS WORK
TEST:
  evalcount  a corrupt val record is excluded from the metrics (samples = decoded records), the
             val loss is plain cross-entropy (= `dptrain eval` on the saved weights, whose graph
             loss has no smoothing/weights), the training objective is reported separately, and
             early stopping on `loss` follows the printed plain losses.
  logitadjust  --logit-adjust 1 stores offsets in model.safetensors; `dptrain eval` on the val
             split reproduces both the raw and the adjusted macro-F1 of the training run.
  balanced   --sampler balanced on 2 ranks: each rank consumes its per-rank share, draws repeat
             (with replacement), the draws are the same for the same seed and differ by epoch.
"""
import json
import os
import shutil
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpi_tests import run, fail  # noqa: E402


def st_tensor_bytes(path):
    """A safetensors file's tensor table and data, without its metadata."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
        head.pop("__metadata__", None)
        return json.dumps(head, sort_keys=True), f.read()


def make(maker, d, *args):
    subprocess.run([maker, d] + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def evalcount(dptrain, maker, work):
    shards = f"{work}/shards"
    make(maker, shards, 64, 30, 16, 5, 0, 10)   # val: records 9, 19, 29 truncated -> 27 decode
    out_dir = f"{work}/run"
    args = [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16", "--epochs", "3",
            "--batch", "8", "--train", f"{shards}/train-*.h5", "--val", f"{shards}/val-*.h5",
            "--label-smoothing", "0.3", "--class-weights", "1,2,3,1,0.5", "--lr", "0.05",
            "--early-metric", "loss", "--patience", "1", "--seed", "5", "--threads", "1",
            "--loader-threads", "1", "--out", out_dir]
    rc, out, _ = run(2, args)
    if rc:
        fail(f"training exited {rc}", out)
    q = json.load(open(f"{out_dir}/results.json"))["quality"]
    if q["samples"] != 27 or q["excluded_corrupt"] != 3:
        fail(f"val counted {q['samples']} samples, excluded {q['excluded_corrupt']}: expected 27 and 3", out)
    if sum(q["support"]) != 27:
        fail(f"support sums to {sum(q['support'])}, expected 27")
    if abs(q["val_loss"] - q["val_objective"]) < 1e-3:
        fail(f"val_loss {q['val_loss']} equals the smoothed, weighted objective {q['val_objective']}")
    print(f"evalcount: train-time eval counted {q['samples']} (3 corrupt excluded); "
          f"loss {q['val_loss']:.5f}, objective {q['val_objective']:.5f}")
    # dptrain eval: one rank and two, on the final weights.
    for np_ in (1, 2):
        os.makedirs(f"{work}/eval{np_}", exist_ok=True)
        rc, eout, _ = run(np_, [dptrain, "eval", "--weights", f"{out_dir}/model.safetensors", "--data",
                                f"{shards}/val-*.h5", "--batch", "7", "--threads", "1", "--loader-threads", "1",
                                "--out", f"{work}/eval{np_}"])
        if rc:
            fail(f"dptrain eval -np {np_} exited {rc}", eout)
        e = json.load(open(f"{work}/eval{np_}/eval_results.json"))["quality"]
        if e["samples"] != 27 or e["excluded_corrupt"] != 3:
            fail(f"eval -np {np_}: samples {e['samples']}, excluded {e['excluded_corrupt']}", eout)
        # The eval graph's loss op (no smoothing, no weights; oracle-tested against torch) is the
        # plain cross-entropy, and must equal the loss computed from the logits.
        if abs(e["val_loss"] - e["val_objective"]) > 1e-5 * max(1.0, abs(e["val_loss"])):
            fail(f"eval -np {np_}: host cross-entropy {e['val_loss']} != graph loss {e['val_objective']}")
        if abs(e["val_loss"] - q["val_loss"]) > 1e-4 * max(1.0, abs(q["val_loss"])):
            fail(f"eval -np {np_}: loss {e['val_loss']} != the training run's final val loss {q['val_loss']}")
        if abs(e["macro_f1"] - q["macro_f1"]) > 1e-9:
            fail(f"eval -np {np_}: macro-F1 {e['macro_f1']} != training's {q['macro_f1']}")
        print(f"evalcount: dptrain eval -np {np_}: 27 samples, loss {e['val_loss']:.5f} = training's")
    # Early stopping on `loss` follows the printed plain losses.
    losses = [float(x) for x in re.findall(r"macro-F1 [0-9.]+  loss ([0-9.]+)", out)]
    best, since, stop_at = None, 0, None
    for i, v in enumerate(losses):
        if best is None or v < best:
            best, since = v, 0
        else:
            since += 1
            if since >= 1 and stop_at is None:
                stop_at = i
    stopped = "early stopping" in out
    if stopped != (stop_at is not None):
        fail(f"early stopping {'happened' if stopped else 'did not happen'} but the plain losses {losses} "
             f"say it should {'not ' if stop_at is None else ''}have", out)
    if stopped:
        m = re.search(r"early stopping: no loss improvement .* \(best ([0-9.]+) at", out)
        if not m or abs(float(m.group(1)) - best) > 1e-4:
            fail(f"early stopping reports best {m and m.group(1)}, plain losses {losses}", out)
    print(f"evalcount: early stopping on loss consistent with the plain losses {losses} (stopped: {stopped})")
    print("ok")


def logitadjust(dptrain, maker, work):
    shards = f"{work}/shards"
    make(maker, shards, 64, 40, 16, 5)
    out_dir = f"{work}/run"
    rc, out, _ = run(2, [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16",
                         "--epochs", "12", "--batch", "8", "--train", f"{shards}/train-*.h5", "--val",
                         f"{shards}/val-*.h5", "--logit-adjust", "1", "--seed", "2", "--lr", "0.05", "--threads", "1",
                         "--loader-threads", "1", "--out", out_dir])
    if rc:
        fail(f"training exited {rc}", out)
    res = json.load(open(f"{out_dir}/results.json"))
    q = res["quality"]
    a = q.get("logit_adjusted")
    models = (res.get("state") or {}).get("models") or res.get("models")
    best_f1, best_step, last_step = models["best"]["value"], models["best"]["step"], models["last"]["step"]
    # This seed's best evaluation is not the last one, so the best weights are
    # read back into the graph before the tuning.
    if best_step == last_step:
        fail(f"the run's best step is its last ({last_step}): the test no longer covers restoring the best", out)
    # model.safetensors must hold the best weights, not the last: the same run
    # without --logit-adjust writes the best model too, tensor for tensor.
    ref_dir = f"{work}/run_noadjust"
    rargs = [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16",
             "--epochs", "12", "--batch", "8", "--train", f"{shards}/train-*.h5", "--val",
             f"{shards}/val-*.h5", "--seed", "2", "--lr", "0.05", "--threads", "1",
             "--loader-threads", "1", "--out", ref_dir]
    rc, rout, _ = run(2, rargs)
    if rc:
        fail(f"reference training exited {rc}", rout)
    if st_tensor_bytes(f"{out_dir}/model.safetensors") != st_tensor_bytes(f"{ref_dir}/model.safetensors"):
        fail("model.safetensors after the logit adjustment does not hold the best model's weights", out)
    # The offsets are tuned for model.safetensors, the best model: its raw
    # macro-F1 is the best evaluation's, and the adjustment never loses on val.
    if not a or len(a["logit_bias"]) != 5 or a["macro_f1"] + 1e-12 < best_f1:
        fail(f"logit_adjusted block missing or worse than raw: {a}", out)
    os.makedirs(f"{work}/eval", exist_ok=True)
    rc, eout, _ = run(1, [dptrain, "eval", "--weights", f"{out_dir}/model.safetensors", "--data",
                          f"{shards}/val-*.h5", "--out", f"{work}/eval", "--threads", "1", "--loader-threads", "1"])
    if rc:
        fail(f"dptrain eval exited {rc}", eout)
    e = json.load(open(f"{work}/eval/eval_results.json"))["quality"]
    ea = e.get("logit_adjusted")
    if not ea or abs(e["macro_f1"] - best_f1) > 1e-9 or abs(ea["macro_f1"] - a["macro_f1"]) > 1e-9:
        fail(f"eval of model.safetensors raw/adjusted {e['macro_f1']}/{ea and ea['macro_f1']} vs training's best "
             f"{best_f1} (step {best_step}) / adjusted {a['macro_f1']}", eout)
    if "logit-adjusted" not in eout or "raw argmax" not in eout:
        fail("eval does not print raw and adjusted metrics separately", eout)
    print(f"logitadjust: best step {best_step} of {last_step}; val macro-F1 of the best raw {best_f1:.4f}, "
          f"adjusted {a['macro_f1']:.4f}; "
          f"dptrain eval reproduces both; offsets {[round(b, 2) for b in a['logit_bias']]}")
    print("ok")


def balanced(dptrain, maker, work):
    shards = f"{work}/shards"
    make(maker, shards, 64, 10, 16, 5)
    dumps = []
    for k in range(2):
        out_dir = f"{work}/run{k}"
        rc, out, _ = run(2, [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16",
                             "--epochs", "2", "--batch", "8", "--train", f"{shards}/train-*.h5",
                             "--sampler", "balanced", "--seed", "4", "--threads", "1", "--loader-threads", "1",
                             "--out", out_dir, "--dump-ids", f"{work}/ids{k}"])
        if rc:
            fail(f"training exited {rc}", out)
        d = {}
        for r in range(2):
            for line in open(f"{work}/ids{k}.rank{r}"):
                e, idx, _ = map(int, line.split())
                d.setdefault((r, e), []).append(idx)
        dumps.append(d)
    d = dumps[0]
    for key, v in d.items():
        if len(v) != 32:
            fail(f"rank/epoch {key}: {len(v)} samples, expected the per-rank share 32")
    every = d[(0, 0)] + d[(1, 0)]
    if len(set(every)) == len(every):
        fail("no sample repeats in an epoch: not drawn with replacement")
    if dumps[0] != dumps[1]:
        fail("same seed, different draws")
    if d[(0, 0)] == d[(0, 1)]:
        fail("epochs 0 and 1 drew the same samples")
    print(f"balanced: 2 ranks x 32 per epoch, {len(every) - len(set(every))} repeats in epoch 0, "
          "deterministic, epochs differ")
    print("ok")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    test, dptrain, maker, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)   # nothing left by an earlier build may make a check pass
    os.makedirs(work, exist_ok=True)
    tests = {"evalcount": evalcount, "logitadjust": logitadjust, "balanced": balanced}
    if test not in tests:
        print(f"unknown test {test}")
        return 2
    tests[test](dptrain, maker, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
