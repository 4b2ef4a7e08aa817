#!/usr/bin/env python3
"""CMYK JPEGs made by PIL: `dptrain data verify` and training agree on them.

usage: cmyk_agree.py DPTRAIN TEST_INPUT_CMYK WORK_DIR
  1. PIL writes CMYK JPEGs (Adobe APP14, inverted CMYK, as Photoshop does) and the RGB PIL
     converts them to; the training decoder's pixels (test_input_cmyk) match PIL's within 2/255.
  2. A shard of CMYK and RGB JPEGs: `verify --strict` finds no corrupt record (it used to call
     every CMYK record corrupt while training decoded them), and a training run skips none.
"""
import json
import os
import subprocess
import sys

try:
    import h5py
    import numpy as np
    from PIL import Image
except ImportError as e:
    print("skip:", e)
    sys.exit(77)

dptrain, cmyk_tool, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
fails = 0


def check(cond, what, out=""):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        print(out[-3000:])
        fails += 1


def cmyk_image(w, h, seed):
    y, x = np.mgrid[0:h, 0:w]
    c = np.stack([(x * 4 + seed) % 256, (y * 5 + 2 * seed) % 256, ((x + y) * 2) % 256, (96 + x + seed) % 256], -1)
    return Image.fromarray(c.astype(np.uint8), "CMYK")


records = []
for i in range(8):
    im = cmyk_image(64 + 8 * i, 48 + 4 * i, i)
    p = f"{work}/cmyk{i}.jpg"
    im.save(p, quality=95)
    r = Image.open(p)
    check(r.mode == "CMYK", f"PIL wrote a CMYK JPEG ({r.info.get('adobe_transform')=})")
    np.asarray(r.convert("RGB")).tofile(f"{work}/cmyk{i}.rgb")
    rc = subprocess.run([cmyk_tool, p, f"{work}/cmyk{i}.rgb"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
    check(rc.returncode == 0, f"training decoder == PIL's RGB for cmyk{i}.jpg: {rc.stdout.strip()}", rc.stdout)
    records.append(open(p, "rb").read())
for i in range(8):
    p = f"{work}/rgb{i}.jpg"
    Image.fromarray((np.random.RandomState(i).rand(40, 56, 3) * 255).astype(np.uint8)).save(p, quality=90)
    records.append(open(p, "rb").read())

shard = f"{work}/train-00000.h5"
blob = np.frombuffer(b"".join(records), dtype=np.uint8)
offs = np.cumsum([0] + [len(r) for r in records]).astype(np.int64)
with h5py.File(shard, "w") as f:
    f.attrs["schema_version"] = np.int32(1)
    f.attrs["codec"] = "jpeg"
    f.attrs["num_classes"] = np.int32(2)
    f.attrs["class_names"] = np.array(["cmyk", "rgb"], dtype=h5py.string_dtype())
    f.create_dataset("images/bytes", data=blob)
    f.create_dataset("images/offsets", data=offs)
    f.create_dataset("labels", data=np.array([0] * 8 + [1] * 8, dtype=np.int32))
    f.create_dataset("ids", data=np.arange(16, dtype=np.int64))

p = subprocess.run([dptrain, "data", "verify", "--strict", shard], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   text=True)
check(p.returncode == 0 and "corrupt=0" in p.stdout, f"verify --strict: exit {p.returncode}, no corrupt record",
      p.stdout)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
out = f"{work}/run"
p = subprocess.run([dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "32", "--train", shard,
                    "--batch", "8", "--epochs", "1", "--threads", "1", "--loader-threads", "1", "--out", out],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
skipped = json.load(open(f"{out}/results.json"))["data"]["skipped"] if p.returncode == 0 else -1
check(p.returncode == 0 and skipped == 0, f"training on the same shard: exit {p.returncode}, {skipped} skipped",
      p.stdout)
print("cmyk_agree:", "OK" if not fails else f"{fails} failure(s)")
sys.exit(1 if fails else 0)
