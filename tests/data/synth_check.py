#!/usr/bin/env python3
"""synth oracle checks on a few thousand images (h5py + PIL, independent of
our reader): class balance against the preset table, disjoint product ids
across splits, duplicates pointing at a record of the same split, metadata
missing rates, image sizes, and the corrupt truth file == what `verify`
reports and what PIL fails to decode.
usage: synth_check.py DPTRAIN WORKDIR"""
import glob, io, os, shutil, subprocess, sys
import h5py
import numpy as np
from PIL import Image

dptrain, work = sys.argv[1], os.path.join(sys.argv[2], "synth_check")
PRESETS = {
    "shopsight5": ([62, 12, 10, 9, 7], 0.05),
    "shoplens12": ([41, 9, 7, 6.5, 6, 5, 5, 4.5, 4.5, 4, 4, 3.5], 0.07),
}
N = 1500
fails = 0


def check(cond, msg):
    global fails
    if not cond:
        print("FAIL:", msg)
        fails += 1


shutil.rmtree(work, ignore_errors=True)
for preset, (pct, miss) in PRESETS.items():
    out = os.path.join(work, preset)
    r = subprocess.run([dptrain, "data", "synth", "--preset", preset, "--count", str(N), "--out", out,
                        "--seed", "5", "--shard-size", "800", "--threads", "2"], capture_output=True, text=True)
    check(r.returncode == 0, "synth failed: " + r.stderr)
    print(r.stdout.strip())
    counts = np.zeros(len(pct), np.int64)
    products = {"train": set(), "val": set(), "test": set()}
    ids_split = {}
    missing = np.zeros(6)
    sizes = []
    undecodable = set()
    total = 0
    for f in sorted(glob.glob(os.path.join(out, "*.h5"))):
        split = os.path.basename(f).split("-")[0]
        with h5py.File(f, "r") as h:
            lab, ids, off = h["labels"][:], h["ids"][:], h["images/offsets"][:]
            blob = h["images/bytes"][:]
            check(len(h.attrs["class_names"]) == len(pct), "class_names length")
            pol = h.attrs.get("augment_policy")
            check((pol.decode() if isinstance(pol, bytes) else pol) == "defects", "augment_policy %r" % pol)
            counts += np.bincount(lab, minlength=len(pct))
            for i, pid in enumerate(ids):
                products[split].add(int(pid) >> 4)
                ids_split[int(pid)] = split
            for c, m in enumerate(["category", "seller_tier", "image_source", "upload_region", "width", "height"]):
                missing[c] += np.sum(h["meta/" + m][:] == -1)
            for i in range(len(lab)):
                b = bytes(blob[off[i]:off[i + 1]])
                try:
                    im = Image.open(io.BytesIO(b))
                    im.load()
                    sizes.append(im.size)
                except Exception:
                    undecodable.add((os.path.basename(f), int(ids[i])))
            total += len(lab)
    check(total == N, "total %d" % total)
    want = np.array(pct) / 100.0 * N
    check(np.all(np.abs(counts - want) <= 1.0), "class counts %s vs %s" % (counts.tolist(), want.tolist()))
    print(preset, "class counts:", counts.tolist())
    check(products["train"].isdisjoint(products["val"]) and products["train"].isdisjoint(products["test"])
          and products["val"].isdisjoint(products["test"]), "product ids overlap across splits")
    for pid, split in ids_split.items():   # a duplicate's source (shot 0) is in the same split
        if pid & 15:
            check(ids_split.get(pid & ~15) == split, "duplicate %d: source not in the same split" % pid)
    rate = missing / total
    check(np.all(rate > miss * 0.6) and np.all(rate < miss * 1.4), "missing rates %s (want ~%.2f)" % (rate, miss))
    w = np.array([s[0] for s in sizes]); hh = np.array([s[1] for s in sizes])
    check(w.min() >= 240 and w.max() <= 400 and hh.min() >= 240 and hh.max() <= 400 and w.std() > 20,
          "image sizes %d..%d x %d..%d" % (w.min(), w.max(), hh.min(), hh.max()))
    truth = set()
    for line in open(os.path.join(out, "corrupt.txt")):
        if line.startswith("#"):
            continue
        fn, idx, rid, kind = line.rstrip("\n").split("\t")
        truth.add((fn, int(rid)))
    check(abs(len(truth) - 0.02 * N) <= 1, "%d corrupt records, want ~%d" % (len(truth), 0.02 * N))
    r = subprocess.run([dptrain, "data", "verify", "--quiet"] + sorted(glob.glob(os.path.join(out, "*.h5"))),
                       capture_output=True, text=True)
    check(r.returncode == 0, "verify exit %d" % r.returncode)
    found = set()
    for line in r.stdout.splitlines():
        if line.startswith("CORRUPT"):
            _, fn, idx, rid, why = line.split("\t", 4)
            found.add((os.path.basename(fn), int(rid)))
    check(found == truth, "verify found %d, truth %d, differ: %s" % (len(found), len(truth), sorted(found ^ truth)[:5]))
    check(undecodable == truth, "PIL could not decode %d records; truth %d" % (len(undecodable), len(truth)))
    r = subprocess.run([dptrain, "data", "verify", "--quiet", "--strict"] + sorted(glob.glob(os.path.join(out, "*.h5"))),
                       capture_output=True, text=True)
    check(r.returncode == 2, "verify --strict must exit 2 (bad input) with corrupt records (got %d)" % r.returncode)
shutil.rmtree(work, ignore_errors=True)
print("synth checks:", "OK" if fails == 0 else "%d failures" % fails)
sys.exit(1 if fails else 0)
