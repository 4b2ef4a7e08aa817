#!/usr/bin/env python3
"""Tests of `dptrain score` (docs/scoring.md), run with Debian's python3
(torch, h5py, numpy, PIL: the oracles).

usage: score_tests.py CASE --dptrain BIN --helper EXPORT_HELPER --fixture DIR [--work DIR]
CASE:
  fixture   synthetic shards (clean and with corrupt records) and a random-weight CNN
            whose class names are the shards' (setup for the others)
  eval      score == eval on labelled shards (macro-F1, confusion); predictions vs
            dptrain's own eval-pipeline logits (argmax, softmax top-k, sum <= 1) and the
            torch twin; the logit-adjusted column; score_results.json
  ranks     2 and 3 ranks give the 1-rank predictions.csv row for row (shards with
            corrupt records, an ImageFolder)
  inputs    unlabelled shards (eval refuses them, score does not), an ImageFolder with a
            corrupt JPEG, a PNG, a dangling link, flat files, a non-class folder; a CSV
            with quoted paths and labels by name and index
  bad       model files without metadata / with mismatched channels / an unknown
            transform, bad options and inputs: exit 2 with a clear message; --device cuda
            (exit 2 here without a GPU; with a GPU its rows are compared with the CPU's)
Exit 0 on success, 1 on failure (with the reason).
"""
import argparse
import csv
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", DPTRAIN_PROGRESS="plain")
CLASSES = ["ok", "blurry", "wrong_background", "watermark", "duplicate"]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))


def fail(msg, out=""):
    if out:
        print(out[-6000:])
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg, out=""):
    if not cond:
        fail(msg, out)


def run(args, np_=1, timeout=300):
    cmd = args if np_ == 1 else ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none"] + args
    t0 = time.time()
    p = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return p.returncode, p.stdout, time.time() - t0


def score(a, extra, np_=1, expect=0):
    rc, out, dt = run([a.dptrain, "score", "--threads", "1", "--loader-threads", "1"] + extra, np_)
    check(rc == expect, f"dptrain score {' '.join(extra)}: exit {rc}, expected {expect}", out)
    return out


def read_rows(path):
    with open(path, newline="") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def st_rewrite(src, dst, update=None, drop_meta=False):
    """Copies a safetensors file with its __metadata__ changed (values are strings)."""
    b = open(src, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    if drop_meta:
        h.pop("__metadata__", None)
    else:
        m = h.setdefault("__metadata__", {})
        for k, v in (update or {}).items():
            if v is None:
                m.pop(k, None)
            else:
                m[k] = v
    hj = json.dumps(h).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b[8 + n:])


def st_set_tensors(path, tensors):
    """Overwrites F32 tensors of a safetensors file in place (same shapes)."""
    b = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    for k, v in tensors.items():
        lo, hi = h[k]["data_offsets"]
        x = np.ascontiguousarray(v, dtype=np.float32)
        assert x.nbytes == hi - lo and list(x.shape) == h[k]["shape"], k
        b[8 + n + lo:8 + n + hi] = x.tobytes()
    open(path, "wb").write(bytes(b))


def st_tensor(path, name):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    lo, hi = h[name]["data_offsets"]
    return np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(h[name]["shape"]).copy()


def load_npy(path):
    return np.load(path)


def softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---- fixture ------------------------------------------------------------------------
def case_fixture(a):
    fx = a.fixture
    shutil.rmtree(fx, ignore_errors=True)
    os.makedirs(fx)
    for name, count, frac, size in (("clean", 150, "0", "60"), ("corrupt", 113, "0.06", "40")):
        rc, out, _ = run([a.dptrain, "data", "synth", "--preset", "shopsight5", "--count", str(count), "--out",
                          f"{fx}/{name}", "--size-min", "36", "--size-max", "70", "--shard-size", size,
                          "--val-frac", "0.1", "--test-frac", "0.1", "--corrupt-frac", frac, "--threads", "1"])
        check(rc == 0, f"synth {name}", out)
    rc, out, _ = run([a.helper, "init", "--model", "cnn", "--image-size", "32", "--channels", "3", "--classes", "5",
                      "--cnn-width", "8", "--seed", "11", "--out", f"{fx}/random.safetensors"])
    check(rc == 0, "export_helper init", out)
    # The shards' class names, so labelled shards are accepted (eval and score check them).
    model = f"{fx}/model.safetensors"
    st_rewrite(f"{fx}/random.safetensors", model, {"dptrain.class_names": "\n".join(CLASSES)})
    # A random CNN predicts nearly one class (its logits differ little between images):
    # centre and sharpen the head on the clean images so every class is predicted and
    # the probabilities are not flat, else a swapped row or class would go unnoticed.
    rc, out, _ = run([a.helper, "loader", "--weights", model, "--data", f"{fx}/clean/train-*.h5", "--inputs",
                      f"{fx}/x0.npy", "--output", f"{fx}/z0.npy"])
    check(rc == 0, "export_helper loader", out)
    z = np.load(f"{fx}/z0.npy").astype(np.float64)
    gain = 3.0 / z.std(axis=0).mean()
    wt, bs = st_tensor(model, "fc.weight"), st_tensor(model, "fc.bias")
    st_set_tensors(model, {"fc.weight": wt * gain, "fc.bias": (bs - z.mean(axis=0)) * gain})
    print("fixture ready in", fx)


# ---- eval ---------------------------------------------------------------------------
def case_eval(a):
    fx, w = a.fixture, a.work
    data = f"{fx}/clean/train-*.h5"
    model = f"{fx}/model.safetensors"
    out = score(a, ["--weights", model, "--data", data, "--out", f"{w}/pred.csv", "--batch", "16"])
    hdr, rows = read_rows(f"{w}/pred.csv")
    check(hdr == ["shard", "record", "id", "label", "top1", "p1", "top2", "p2", "top3", "p3", "error"],
          f"header {hdr}")
    res = json.load(open(f"{w}/score_results.json"))
    rc, eout, _ = run([a.dptrain, "eval", "--weights", model, "--data", data, "--out", w, "--batch", "16",
                       "--threads", "1", "--loader-threads", "1"])
    check(rc == 0, "dptrain eval", eout)
    ev = json.load(open(f"{w}/eval_results.json"))["quality"]
    sq = res["quality"]
    check(sq["evaluated"] and ev["evaluated"], "both evaluated")
    check(sq["samples"] == ev["samples"] == len(rows), f"samples {sq['samples']} / {ev['samples']} / {len(rows)}")
    check(sq["confusion"] == ev["confusion"], f"confusion differs: score {sq['confusion']} eval {ev['confusion']}")
    check(sq["macro_f1"] == ev["macro_f1"] and sq["accuracy"] == ev["accuracy"],
          f"macro-F1 {sq['macro_f1']} vs {ev['macro_f1']}, accuracy {sq['accuracy']} vs {ev['accuracy']}")
    check(abs(sq["val_loss"] - ev["val_loss"]) <= 1e-4 * max(1.0, abs(ev["val_loss"])),
          f"loss {sq['val_loss']} vs eval {ev['val_loss']}")
    npred = sum(1 for c in range(5) if any(sq["confusion"][t][c] for t in range(5)))
    check(npred >= 4, f"the fixture model should predict most classes (confusion {sq['confusion']})")
    # The confusion again from the rows: (label, top1).
    cm = [[0] * 5 for _ in range(5)]
    for r in rows:
        cm[CLASSES.index(r[3])][CLASSES.index(r[4])] += 1
    check(cm == sq["confusion"], "confusion from predictions.csv differs from score_results.json")
    # dptrain's own eval pipeline (export_helper loader: the first 64 records of the shards).
    rc, hout, _ = run([a.helper, "loader", "--weights", model, "--data", data, "--inputs", f"{w}/x.npy",
                       "--output", f"{w}/z.npy"])
    check(rc == 0, "export_helper loader", hout)
    z = load_npy(f"{w}/z.npy")
    p = softmax(z)
    check(len(z) == 64, f"{len(z)} reference logits")
    worst = 0.0
    for i in range(len(z)):
        r = rows[i]
        order = np.argsort(-z[i], kind="stable")
        check(CLASSES.index(r[4]) == int(np.argmax(z[i])), f"row {i}: top1 {r[4]} != argmax of dptrain's logits")
        probs = [float(r[5]), float(r[7]), float(r[9])]
        check(sum(probs) <= 1 + 2e-6, f"row {i}: top-3 probabilities sum to {sum(probs)}")
        check(probs[0] >= probs[1] >= probs[2], f"row {i}: probabilities not sorted")
        for k in range(3):
            check(r[4 + 2 * k] == CLASSES[order[k]], f"row {i}: top{k + 1} {r[4 + 2 * k]} != {CLASSES[order[k]]}")
            worst = max(worst, abs(probs[k] - p[i, order[k]]) / max(p[i, order[k]], 1e-30))
    check(worst <= 1e-5, f"probabilities differ from softmax(dptrain logits) by rel. {worst:.2e}")
    # The torch twin on the same preprocessed inputs (an independent forward).
    import torch
    import dptrain
    net, info = dptrain.load_model(model)
    with torch.no_grad():
        zt = net(torch.from_numpy(load_npy(f"{w}/x.npy"))).numpy()
    pt = softmax(zt)
    twin = max(abs(float(rows[i][5]) - pt[i].max()) for i in range(len(zt)))
    check(twin <= 1e-4, f"p1 differs from the torch twin's softmax by {twin:.2e}")
    check(info.class_names == CLASSES, "twin class names")
    # --top-k 5 on 5 classes sums to 1; a logit-adjusted model.
    bias = [0.9, -1.2, 0.6, 0.0, -0.3]
    st_rewrite(model, f"{w}/adj.safetensors", {"dptrain.logit_bias": ",".join(str(b) for b in bias)})
    score(a, ["--weights", f"{w}/adj.safetensors", "--data", data, "--out", f"{w}/adj.csv", "--top-k", "7",
              "--batch", "16"])
    hdr2, rows2 = read_rows(f"{w}/adj.csv")
    check(hdr2[-2:] == ["adjusted", "error"] and "top5" in hdr2 and "top6" not in hdr2, f"header {hdr2}")
    adj_res = json.load(open(f"{w}/score_results.json"))
    check(adj_res["logit_adjusted"] and adj_res["top_k"] == 5, "score_results: logit_adjusted, top_k")
    cma = [[0] * 5 for _ in range(5)]
    for i, r in enumerate(rows2):
        s5 = sum(float(r[5 + 2 * k]) for k in range(5))
        check(abs(s5 - 1) <= 5e-6, f"row {i}: 5 of 5 probabilities sum to {s5}")
        if i < len(z):
            want = CLASSES[int(np.argmax(z[i] + np.array(bias, dtype=np.float32)))]
            check(r[-2] == want, f"row {i}: adjusted {r[-2]} != argmax(logits + bias) {want}")
        cma[CLASSES.index(r[3])][CLASSES.index(r[-2])] += 1
    check(cma == adj_res["quality_adjusted"]["confusion"], "adjusted confusion differs from the rows")
    check(adj_res["quality"]["confusion"] == sq["confusion"], "raw metrics changed with a logit bias")
    changed = sum(r[4] != r[-2] for r in rows2)
    check(0 < changed < len(rows2), f"the bias changed {changed} of {len(rows2)} predictions: the test would "
          "not see a broken adjustment")
    # Results fields.
    for k in ("images_per_s", "steady_images_per_s", "wall_s", "per_rank_images_per_s", "load_1m_start"):
        check(k in res["throughput"], f"score_results.throughput.{k}")
    check(res["scored"] == len(rows) and res["errors"] == 0 and res["input"]["records"] == len(rows),
          "scored/errors/records")
    print(f"score == eval on {len(rows)} records (macro-F1 {sq['macro_f1']:.4f}); probabilities vs softmax "
          f"rel. {worst:.1e}, vs torch twin {twin:.1e}; {changed} rows changed by the logit bias")


# ---- ranks --------------------------------------------------------------------------
def case_ranks(a):
    fx, w = a.fixture, a.work
    model = f"{fx}/model.safetensors"
    data = f"{fx}/corrupt/train-*.h5"
    truth = [l.split("\t") for l in open(f"{fx}/corrupt/corrupt.txt") if not l.startswith("#")]
    want_err = {(t[0], int(t[1])) for t in truth if t[0].startswith("train-")}
    check(len(want_err) >= 3, "the fixture needs corrupt train records")
    ref = None
    for np_ in (1, 2, 3):
        score(a, ["--weights", model, "--data", data, "--out", f"{w}/r{np_}.csv", "--batch", "8"], np_)
        text = open(f"{w}/r{np_}.csv").read()
        if ref is None:
            ref = text
            hdr, rows = read_rows(f"{w}/r1.csv")
            got_err = {(os.path.basename(r[0]), int(r[1])) for r in rows if r[-1]}
            check(got_err == want_err, f"error rows {sorted(got_err)} != corrupt.txt {sorted(want_err)}")
            check(all((r[4] == "") == bool(r[-1]) for r in rows), "error rows must have no prediction")
            n = len(rows)
            check(n % 2 and n % 3, f"{n} records: pick a count that 2 and 3 ranks do not divide")
            continue
        if text != ref:
            a_rows, b_rows = ref.splitlines(), text.splitlines()
            bad = [i for i in range(min(len(a_rows), len(b_rows))) if a_rows[i] != b_rows[i]][:3]
            fail(f"{np_} ranks: predictions.csv differs from 1 rank ({len(b_rows)} vs {len(a_rows)} lines; "
                 f"first differing lines {[(a_rows[i], b_rows[i]) for i in bad]})")
        res = json.load(open(f"{w}/score_results.json"))
        check(res["world_size"] == np_ and len(res["throughput"]["per_rank_images_per_s"]) == np_, "world size")
    # An ImageFolder on 2 ranks.
    folder = f"{w}/folder"
    make_folder(fx, folder)
    score(a, ["--weights", model, "--imagefolder", folder, "--out", f"{w}/f1.csv", "--batch", "4"])
    score(a, ["--weights", model, "--imagefolder", folder, "--out", f"{w}/f2.csv", "--batch", "4"], 2)
    check(open(f"{w}/f1.csv").read() == open(f"{w}/f2.csv").read(), "ImageFolder: 2 ranks differ from 1")
    print(f"1, 2 and 3 ranks: identical predictions.csv ({len(ref.splitlines()) - 1} rows, {len(want_err)} errors)")


# ---- inputs -------------------------------------------------------------------------
def shard_records(path):
    import h5py
    with h5py.File(path, "r") as f:
        b = f["images/bytes"][:]
        o = f["images/offsets"][:]
        return [bytes(b[o[i]:o[i + 1]]) for i in range(len(o) - 1)], f["labels"][:], f["ids"][:]


def make_folder(fx, folder):
    """ImageFolder from the clean test shard's JPEGs: class folders, a nested one, a flat
    file, a non-class folder, a corrupt JPEG, a PNG, a dangling link, a text file."""
    from PIL import Image
    shutil.rmtree(folder, ignore_errors=True)
    recs, labels, _ = shard_records(sorted_glob(f"{fx}/clean/test-*.h5")[0])
    plan = {}
    for i in range(8):
        sub = CLASSES[labels[i]]
        rel = f"{sub}/r{i:02d}.jpg" if i != 3 else f"{sub}/deeper/r{i:02d}.JPG"
        plan[rel] = recs[i]
    plan["flat.jpeg"] = recs[8]
    plan["notaclass/r09.jpg"] = recs[9]
    plan["ok/broken.jpg"] = recs[0][: len(recs[0]) // 2]
    for rel, b in plan.items():
        os.makedirs(os.path.dirname(f"{folder}/{rel}"), exist_ok=True)
        open(f"{folder}/{rel}", "wb").write(b)
    im = Image.open(io.BytesIO(recs[10])).convert("RGB")
    os.makedirs(f"{folder}/blurry", exist_ok=True)
    im.save(f"{folder}/blurry/p10.png")
    os.symlink(f"{folder}/nowhere.jpg", f"{folder}/ok/gone.jpg")
    open(f"{folder}/README.txt", "w").write("not an image\n")
    return recs, labels


def sorted_glob(p):
    import glob
    return sorted(glob.glob(p))


def case_inputs(a):
    import h5py
    fx, w = a.fixture, a.work
    model = f"{fx}/model.safetensors"
    test = sorted_glob(f"{fx}/clean/test-*.h5")[0]
    # 1. Unlabelled shards: all -1 (with other class names), and half -1.
    un, half = f"{w}/unlabelled.h5", f"{w}/half.h5"
    shutil.copy(test, un)
    shutil.copy(test, half)
    with h5py.File(un, "r+") as f:
        f["labels"][:] = -1
        f.attrs["class_names"] = np.array([f"other{k}" for k in range(5)], dtype=h5py.string_dtype())
    with h5py.File(half, "r+") as f:
        lab = f["labels"][:]
        lab[::2] = -1
        f["labels"][:] = lab
        nl = int((lab >= 0).sum())
    rc, out, _ = run([a.dptrain, "eval", "--weights", model, "--data", half, "--out", w])
    check(rc == 2 and "label -1" in out and "unlabelled" in out, f"eval must refuse label -1 (exit {rc})", out)
    score(a, ["--weights", model, "--data", un, "--out", f"{w}/un.csv"])
    res = json.load(open(f"{w}/score_results.json"))
    _, rows = read_rows(f"{w}/un.csv")
    check(all(r[3] == "" and r[4] in CLASSES and not r[-1] for r in rows), "unlabelled rows")
    check(not res["quality"]["evaluated"] and res["input"]["labelled"] == 0, "no metrics without labels")
    score(a, ["--weights", model, "--data", half, "--out", f"{w}/half.csv"])
    res = json.load(open(f"{w}/score_results.json"))
    _, hrows = read_rows(f"{w}/half.csv")
    check(res["quality"]["evaluated"] and res["quality"]["samples"] == nl, f"metrics on the {nl} labelled records")
    check([r[4:10] for r in hrows] == [r[4:10] for r in rows], "labels changed the predictions")
    # 2. ImageFolder.
    folder = f"{w}/folder"
    recs, labels = make_folder(fx, folder)
    score(a, ["--weights", model, "--data", test, "--out", f"{w}/shard.csv"])
    _, srows = read_rows(f"{w}/shard.csv")
    out = score(a, ["--weights", model, "--imagefolder", folder, "--out", f"{w}/folder.csv"])
    hdr, frows = read_rows(f"{w}/folder.csv")
    check(hdr[:2] == ["path", "label"], f"header {hdr}")
    names = [r[0] for r in frows]
    expect = sorted(["flat.jpeg", "notaclass/r09.jpg", "ok/broken.jpg", "ok/gone.jpg", "blurry/p10.png"] +
                    [f"{CLASSES[labels[i]]}/r{i:02d}.jpg" if i != 3 else f"{CLASSES[labels[3]]}/deeper/r03.JPG"
                     for i in range(8)], key=lambda s: s.encode())
    check(names == order_like_walk(expect), f"rows {names}\nexpected {order_like_walk(expect)}")
    byname = {r[0]: r for r in frows}
    for i in range(8):
        rel = f"{CLASSES[labels[i]]}/r{i:02d}.jpg" if i != 3 else f"{CLASSES[labels[3]]}/deeper/r03.JPG"
        r = byname[rel]
        check(r[1] == CLASSES[labels[i]], f"{rel}: label {r[1]}")
        check(r[2:8] == srows[i][4:10], f"{rel}: {r[2:8]} != the shard record's {srows[i][4:10]} (same JPEG bytes)")
    check(byname["flat.jpeg"][1] == "" and byname["notaclass/r09.jpg"][1] == "", "flat / non-class files unlabelled")
    check(byname["flat.jpeg"][2:8] == srows[8][4:10], "flat file != its shard record")
    for bad in ("ok/broken.jpg", "ok/gone.jpg"):
        check(byname[bad][-1] and byname[bad][2] == "", f"{bad}: needs an error and no prediction: {byname[bad]}")
    check("cannot open" in byname["ok/gone.jpg"][-1], f"dangling link reason: {byname['ok/gone.jpg'][-1]}")
    res = json.load(open(f"{w}/score_results.json"))
    check(res["errors"] == 2 and res["input"]["ignored_files"] == 1 and "notaclass" in res["input"]["note"],
          f"errors {res['errors']}, ignored {res['input'].get('ignored_files')}, note {res['input'].get('note')}")
    check(res["quality"]["samples"] == 9, f"metrics count the 9 labelled decodable files ({res['quality']['samples']})")
    # The PNG against the torch twin on its own pixels (no JPEG in between: exact transform).
    import torch
    import dptrain
    from PIL import Image
    net, info = dptrain.load_model(model)
    x = info.preprocessing.transform(np.array(Image.open(f"{folder}/blurry/p10.png")))
    with torch.no_grad():
        pt = softmax(net(x[None]).numpy())[0]
    r = byname["blurry/p10.png"]
    check(r[1] == "blurry" and r[2] == CLASSES[int(pt.argmax())], f"PNG row {r} vs twin {pt}")
    dpng = abs(float(r[3]) - pt.max())
    check(dpng <= 1e-4, f"PNG p1 {r[3]} vs twin {pt.max()}")
    # 3. CSV with quoted paths (comma, quotes, spaces), labels by name / index / none, an absolute path.
    cdir = f"{w}/cs v"
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(f"{cdir}/im ages")
    files = [("im ages/a, b.jpg", recs[0], "ok"), ('im ages/q "x".jpg', recs[1], "2"),
             ("im ages/plain.jpg", recs[2], ""), ("im ages/p.png", None, "blurry")]
    for rel, b, _ in files:
        if b is None:
            shutil.copy(f"{folder}/blurry/p10.png", f"{cdir}/{rel}")
        else:
            open(f"{cdir}/{rel}", "wb").write(b)
    absp = os.path.abspath(f"{cdir}/im ages/plain.jpg")
    with open(f"{cdir}/list.csv", "w", newline="") as f:
        wr = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        wr.writerow(["id", "path", "label"])
        for k, (rel, _, lab) in enumerate(files):
            wr.writerow([k, rel, lab])
        wr.writerow([9, absp, "watermark"])
        wr.writerow([10, "im ages/missing.jpg", ""])
    raw = open(f"{cdir}/list.csv").read()
    check('"im ages/a, b.jpg"' in raw and '"im ages/q ""x"".jpg"' in raw, "the CSV must hold quoted fields")
    score(a, ["--weights", model, "--csv", f"{cdir}/list.csv", "--out", f"{w}/csv.csv"])
    _, crows = read_rows(f"{w}/csv.csv")
    check([r[0] for r in crows] == [f[0] for f in files] + [absp, "im ages/missing.jpg"],
          f"CSV paths round trip: {[r[0] for r in crows]}")
    check([r[1] for r in crows] == ["ok", CLASSES[2], "", "blurry", "watermark", ""], f"labels {[r[1] for r in crows]}")
    check(crows[0][2:8] == srows[0][4:10] and crows[1][2:8] == srows[1][4:10] and crows[4][2:8] == srows[2][4:10],
          "CSV JPEG rows != the shard records")
    check(crows[3][2:8] == byname["blurry/p10.png"][2:8], "CSV PNG row != the ImageFolder's")
    check(crows[5][-1] and "cannot open" in crows[5][-1], f"missing file row {crows[5]}")
    print(f"unlabelled and half-labelled shards, ImageFolder ({len(frows)} files, 2 errors, PNG vs twin "
          f"{dpng:.1e}) and CSV with quoted paths: ok")


def order_like_walk(names):
    """The order score_files.c lists an ImageFolder in: top-level entries sorted by bytes,
    each folder walked in place, recursively."""
    tree = {}
    for n in names:
        d = tree
        parts = n.split("/")
        for p in parts[:-1]:
            d = d.setdefault(p + "/", {})
        d[parts[-1]] = None

    def walk(d, prefix):
        out = []
        for k in sorted(d, key=lambda s: s.rstrip("/").encode()):
            if d[k] is None:
                out.append(prefix + k)
            else:
                out += walk(d[k], prefix + k)
        return out
    return walk(tree, "")


# ---- bad ----------------------------------------------------------------------------
def case_bad(a):
    fx, w = a.fixture, a.work
    model = f"{fx}/model.safetensors"
    data = f"{fx}/clean/test-*.h5"
    st_rewrite(model, f"{w}/nometa.safetensors", drop_meta=True)
    st_rewrite(model, f"{w}/gray.safetensors", {"dptrain.channels": "1"})
    st_rewrite(model, f"{w}/nearest.safetensors", {"dptrain.eval_resize_filter": "nearest"})
    st_rewrite(model, f"{w}/shortbias.safetensors", {"dptrain.logit_bias": "1,2"})
    st_rewrite(f"{fx}/random.safetensors", f"{w}/othernames.safetensors", {})
    open(f"{w}/badlabel.csv", "w").write("path,label\nx.jpg,cat\n")
    open(f"{w}/nopath.csv", "w").write("file,label\nx.jpg,ok\n")
    os.makedirs(f"{w}/empty", exist_ok=True)
    out = f"{w}/p.csv"
    cases = [
        (["--weights", f"{w}/nometa.safetensors", "--data", data, "--out", out], ["weights", "metadata"]),
        (["--weights", f"{w}/gray.safetensors", "--data", data, "--out", out], ["weights", "conv", "shape"]),
        (["--weights", f"{w}/nearest.safetensors", "--data", data, "--out", out], ["eval_resize_filter", "nearest"]),
        (["--weights", f"{w}/shortbias.safetensors", "--data", data, "--out", out], ["logit_bias", "5 finite"]),
        (["--weights", f"{w}/othernames.safetensors", "--data", data, "--out", out], ["classes", "cls_0"]),
        (["--weights", model, "--data", data, "--csv", f"{w}/badlabel.csv", "--out", out], ["exactly one"]),
        (["--weights", model, "--out", out], ["exactly one"]),
        (["--weights", model, "--data", f"{w}/none-*.h5", "--out", out], ["data", "no shards"]),
        (["--weights", model, "--data", data, "--out", f"{w}/no/such/dir/p.csv"], ["out", "not an existing"]),
        (["--weights", model, "--data", data, "--out", out, "--top-k", "0"], ["top-k"]),
        (["--weights", model, "--data", data, "--out", out, "--top-k", "65"], ["top-k"]),
        (["--weights", model, "--data", data, "--out", out, "--device", "tpu"], ["device", "tpu"]),
        (["--weights", model, "--data", data, "--out", out, "--batch", "-1"], ["batch"]),
        (["--weights", model, "--csv", f"{w}/badlabel.csv", "--out", out], ["badlabel.csv:2", "cat"]),
        (["--weights", model, "--csv", f"{w}/nopath.csv", "--out", out], ["path"]),
        (["--weights", model, "--imagefolder", f"{w}/empty", "--out", out], ["imagefolder", "no .jpg"]),
        (["--weights", f"{w}/missing.safetensors", "--data", data, "--out", out], ["weights", "missing.safetensors"]),
    ]
    for args, words in cases:
        rc, o, _ = run([a.dptrain, "score"] + args)
        check(rc == 2, f"score {' '.join(args)}: exit {rc}, expected 2", o)
        low = o.lower()
        check(all(wd.lower() in low for wd in words), f"score {' '.join(args)}: message lacks {words}", o)
        check("segmentation" not in low and "abort" not in low, "crash", o)
    check(not os.path.exists(out), "a refused run must not write predictions")
    rc, o, _ = run([a.dptrain, "score", "--help"])
    check(rc == 0 and "--imagefolder" in o and "--top-k" in o and "--device" in o, "--help", o)
    # The GPU path: refused here without a GPU (exit 2); with one, its rows match the CPU's.
    rc, o, _ = run([a.dptrain, "score", "--weights", model, "--data", data, "--out", f"{w}/gpu.csv", "--device", "cuda"])
    if rc == 2:
        check("cuda" in o.lower(), "--device cuda without a GPU: the message must say why", o)
        print("--device cuda: refused (no usable GPU here): the CUDA path is not verified by this run")
    else:
        check(rc == 0, f"--device cuda: exit {rc}", o)
        score(a, ["--weights", model, "--data", data, "--out", f"{w}/cpu.csv"])
        _, g = read_rows(f"{w}/gpu.csv")
        _, c = read_rows(f"{w}/cpu.csv")
        same = sum(x[4] == y[4] for x, y in zip(g, c))
        dp = max(abs(float(x[5]) - float(y[5])) for x, y in zip(g, c) if x[5] and y[5])
        check(len(g) == len(c) and same >= len(c) - 1 and dp <= 1e-3, f"GPU vs CPU: top1 {same}/{len(c)}, p1 {dp}")
        print(f"--device cuda: {same}/{len(c)} top-1 equal to the CPU's, p1 max diff {dp:.1e}")
    print(f"{len(cases)} bad inputs refused with exit 2 and a message")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--dptrain", required=True)
    ap.add_argument("--helper", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--work")
    a = ap.parse_args()
    if a.work:
        shutil.rmtree(a.work, ignore_errors=True)
        os.makedirs(a.work)
    {"fixture": case_fixture, "eval": case_eval, "ranks": case_ranks, "inputs": case_inputs, "bad": case_bad}[a.case](a)


if __name__ == "__main__":
    main()
