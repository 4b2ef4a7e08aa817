#!/usr/bin/env python3
"""pack: ImageFolder with JPEG (stored byte for byte), PNG (RGB, palette,
gray+alpha, RGBA, 16-bit gray; decoded by our PNG decoder and re-encoded),
PGM/PPM, and files that must be skipped (BMP, text, truncated PNG), checked
with h5py + PIL; a CSV manifest with metadata; stratified splits and
--shard-bytes. usage: pack_check.py DPTRAIN WORKDIR"""
import glob, io, os, shutil, subprocess, sys
import h5py
import numpy as np
from PIL import Image

dptrain, work = sys.argv[1], os.path.join(sys.argv[2], "pack_check")
shutil.rmtree(work, ignore_errors=True)
src = os.path.join(work, "in")
fails = 0


def check(cond, msg):
    global fails
    if not cond:
        print("FAIL:", msg)
        fails += 1


rng = np.random.default_rng(0)
originals = {}
jpegs = set()
for cls in ("apple", "banana"):
    os.makedirs(os.path.join(src, cls, "sub"))
for i in range(20):
    # Smooth images so JPEG re-encoding stays close to the original.
    y, x = np.mgrid[0:48, 0:64]
    a = np.stack([(x * 4 + i * 5) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
    p = os.path.join(src, "apple", "a%02d.jpg" % i)
    Image.fromarray(a).save(p, quality=92)
    jpegs.add(open(p, "rb").read())
    kind = i % 5
    p = os.path.join(src, "banana", "sub" if i % 2 else "", "b%02d" % i)
    if kind == 0:
        Image.fromarray(a).save(p + ".png"); originals[p + ".png"] = a
    elif kind == 1:
        Image.fromarray(a).convert("P", palette=Image.ADAPTIVE).save(p + ".png")
        originals[p + ".png"] = np.asarray(Image.open(p + ".png").convert("RGB"))
    elif kind == 2:
        Image.fromarray(a).convert("RGBA").save(p + ".png"); originals[p + ".png"] = a
    elif kind == 3:
        Image.fromarray(a[:, :, 0]).save(p + ".pgm"); originals[p + ".pgm"] = a[:, :, :1]
    else:
        g16 = (a[:, :, 1].astype(np.uint16) * 257)
        Image.fromarray(g16).save(p + ".png"); originals[p + ".png"] = a[:, :, 1:2]
Image.fromarray(a).save(os.path.join(src, "banana", "skip.bmp"))
open(os.path.join(src, "apple", "readme.txt"), "w").write("not an image")
png = open(os.path.join(src, "banana", "b00.png"), "rb").read()
open(os.path.join(src, "banana", "trunc.png"), "wb").write(png[: len(png) // 2])

out = os.path.join(work, "out")
r = subprocess.run([dptrain, "data", "pack", "--imagefolder", src, "--out", out, "--val-frac", "0.2",
                    "--test-frac", "0.2", "--shard-size", "7"], capture_output=True, text=True)
print(r.stdout.strip())
check(r.returncode == 0, "pack failed: " + r.stderr)
skipped = open(os.path.join(out, "skipped.txt")).read()
for name in ("skip.bmp", "readme.txt", "trunc.png"):
    check(name in skipped, name + " not reported as skipped")
check(len(skipped.strip().splitlines()) == 3, "skipped.txt: " + skipped)
per_split = {}
seen = 0
for f in sorted(glob.glob(os.path.join(out, "*.h5"))):
    split = os.path.basename(f).split("-")[0]
    with h5py.File(f, "r") as h:
        names = [x.decode() if isinstance(x, bytes) else x for x in h.attrs["class_names"]]
        check(names == ["apple", "banana"], "class names %r" % names)
        pol = h.attrs.get("augment_policy")
        check((pol.decode() if isinstance(pol, bytes) else pol) == "defects", "augment_policy %r" % pol)
        check(len(h["labels"]) <= 7, "shard size")
        off, blob, lab = h["images/offsets"][:], h["images/bytes"][:], h["labels"][:]
        w, hh = h["meta/width"][:], h["meta/height"][:]
        per_split.setdefault(split, np.zeros(2, int))
        per_split[split] += np.bincount(lab, minlength=2)
        for i in range(len(lab)):
            b = bytes(blob[off[i]:off[i + 1]])
            im = np.asarray(Image.open(io.BytesIO(b)))
            check(w[i] == 64 and hh[i] == 48, "width/height meta")
            if lab[i] == 0:
                check(b in jpegs, "JPEG not stored byte for byte")
            else:
                best = min(np.abs(im.reshape(48, 64, -1).astype(int) - o.astype(int)).mean()
                           for o in originals.values() if o.shape[2] == im.reshape(48, 64, -1).shape[2])
                check(best < 8.0, "re-encoded image far from every original (mean abs %.1f)" % best)
            seen += 1
check(seen == 40, "%d records, want 40" % seen)
# apple: 20 JPEGs (readme.txt is excluded before splitting); banana: 21 image
# files (skip.bmp excluded), one of which (trunc.png) fails to decode later.
for s, want in (("train", 12), ("val", 4), ("test", 4)):
    got = per_split.get(s, np.zeros(2, int))
    check(got[0] == want and want - 1 <= got[1] <= want + 1, "split %s counts %s" % (s, got))

# CSV manifest with metadata, and shards by bytes.
csv = os.path.join(src, "manifest.csv")
with open(csv, "w") as f:
    f.write("path,label,category,seller_tier,upload_region\n")
    for i in range(20):
        f.write("apple/a%02d.jpg,%s,%d,%s,3\n" % (i, "good" if i % 3 else "bad", i, "" if i % 4 == 0 else str(i % 4)))
out2 = os.path.join(work, "out2")
r = subprocess.run([dptrain, "data", "pack", "--csv", csv, "--out", out2, "--val-frac", "0", "--test-frac", "0",
                    "--shard-bytes", "20000"], capture_output=True, text=True)
check(r.returncode == 0, "pack --csv failed: " + r.stderr)
files = sorted(glob.glob(os.path.join(out2, "train-*.h5")))
check(len(files) >= 2, "--shard-bytes made %d shards" % len(files))
n = 0
for f in files:
    with h5py.File(f, "r") as h:
        names = [x.decode() if isinstance(x, bytes) else x for x in h.attrs["class_names"]]
        check(names == ["bad", "good"], "csv class names %r" % names)
        check(h["images/bytes"].shape[0] <= 20000 or len(h["labels"]) == 1, "shard bytes")
        cat, tier = h["meta/category"][:], h["meta/seller_tier"][:]
        for i in range(len(cat)):
            c = int(cat[i])
            check(h["labels"][i] == (0 if c % 3 == 0 else 1), "csv label")
            check(tier[i] == (-1 if c % 4 == 0 else c % 4), "csv seller_tier")
        check(np.all(h["meta/upload_region"][:] == 3) and np.all(h["meta/image_source"][:] == -1), "csv meta")
        n += len(cat)
check(n == 20, "csv records %d" % n)
shutil.rmtree(work, ignore_errors=True)
print("pack checks:", "OK" if fails == 0 else "%d failures" % fails)
sys.exit(1 if fails else 0)
