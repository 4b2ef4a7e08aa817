#!/usr/bin/env python3
"""import-idx on Debian's Fashion-MNIST (skips with 77 if absent): counts
60000/10000, 10 classes with the Fashion-MNIST names, raw_shape (28, 28, 1),
and pixels/labels equal to an independent parse of the gzip IDX files.
usage: import_idx_check.py DPTRAIN WORKDIR"""
import glob, gzip, os, shutil, subprocess, sys
import h5py
import numpy as np

SRC = "/usr/share/datasets/fashion-mnist"
if not os.path.isdir(SRC):
    print("skip: %s absent (apt install dataset-fashion-mnist)" % SRC)
    sys.exit(77)
dptrain, work = sys.argv[1], os.path.join(sys.argv[2], "import_idx")
shutil.rmtree(work, ignore_errors=True)
fails = 0
for split, n in (("train", 60000), ("t10k", 10000)):
    imgs, labs = "%s/%s-images-idx3-ubyte.gz" % (SRC, split), "%s/%s-labels-idx1-ubyte.gz" % (SRC, split)
    r = subprocess.run([dptrain, "data", "import-idx", "--images", imgs, "--labels", labs,
                        "--out", os.path.join(work, split), "--shard-size", "25000"], capture_output=True, text=True)
    print(r.stdout.strip(), r.stderr.strip())
    if r.returncode != 0:
        fails += 1
        continue
    ref_img = np.frombuffer(gzip.open(imgs).read()[16:], np.uint8).reshape(-1, 784)
    ref_lab = np.frombuffer(gzip.open(labs).read()[8:], np.uint8)
    got_img, got_lab = [], []
    for f in sorted(glob.glob(os.path.join(work, split + "-*.h5"))):
        with h5py.File(f, "r") as h:
            codec = h.attrs["codec"]
            codec = codec.decode() if isinstance(codec, bytes) else codec
            names = [x.decode() if isinstance(x, bytes) else x for x in h.attrs["class_names"]]
            if codec != "raw" or list(h.attrs["raw_shape"]) != [28, 28, 1] or names[0] != "T-shirt/top" \
                    or names[9] != "Ankle boot" or int(h.attrs["num_classes"]) != 10:
                print("FAIL: attributes of", f)
                fails += 1
            off = h["images/offsets"][:]
            if not np.array_equal(np.diff(off), np.full(len(off) - 1, 784)):
                print("FAIL: record sizes in", f)
                fails += 1
            got_img.append(h["images/bytes"][:].reshape(-1, 784))
            got_lab.append(h["labels"][:])
    got_img, got_lab = np.concatenate(got_img), np.concatenate(got_lab)
    ok = len(got_lab) == n and np.array_equal(got_img, ref_img) and np.array_equal(got_lab, ref_lab)
    print("%s: %d records, %s" % (split, len(got_lab), "match the IDX files" if ok else "MISMATCH"))
    fails += not ok
shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if fails else 0)
