#!/usr/bin/env python3
"""Reads the shard test_shard_cwrite wrote with our C writer, using h5py, and
checks every dataset and attribute against the values the C test used:
record i has length 5 + (i * 37) % 300, byte k = (i * 13 + k * 7) & 255,
label i % 4, id 5000000000 + i, meta column c = -1 when (i + c) % 9 == 0 else i * 10 + c.
Raw shard: raw_shape (3, 4, 1), record i bytes = (i + k) & 255."""
import os, sys
import h5py
import numpy as np

d = os.path.join(os.environ["DP_FIXTURE_DIR"], "data")
fails = 0


def check(cond, msg):
    global fails
    if not cond:
        print("FAIL:", msg)
        fails += 1


metas = ["category", "seller_tier", "image_source", "upload_region", "width", "height"]
with h5py.File(os.path.join(d, "c_written.h5"), "r") as f:
    n = 257
    check(int(f.attrs["schema_version"]) == 1, "schema_version")
    codec = f.attrs["codec"]
    codec = codec.decode() if isinstance(codec, bytes) else codec
    check(codec == "jpeg", "codec %r" % codec)
    check(int(f.attrs["num_classes"]) == 4, "num_classes")
    names = [x.decode() if isinstance(x, bytes) else x for x in f.attrs["class_names"]]
    check(names == ["ok", "blurry", "über", "w m"], "class_names %r" % names)
    off = f["images/offsets"][:]
    check(f["images/offsets"].dtype == np.int64 and off.shape == (n + 1,), "offsets dtype/shape")
    check(f["images/bytes"].dtype == np.uint8, "bytes dtype")
    check(f["images/bytes"].chunks is None, "bytes must be contiguous")
    check(f["labels"].dtype == np.int32 and f["ids"].dtype == np.int64, "labels/ids dtype")
    blob = f["images/bytes"][:]
    lab, ids = f["labels"][:], f["ids"][:]
    for i in range(n):
        ln = 5 + (i * 37) % 300
        want = (np.arange(ln) * 7 + i * 13) & 255
        got = blob[off[i]:off[i + 1]]
        if len(got) != ln or not np.array_equal(got, want.astype(np.uint8)):
            check(False, "record %d bytes" % i)
            break
    check(np.array_equal(lab, np.arange(n) % 4), "labels")
    check(np.array_equal(ids, 5000000000 + np.arange(n)), "ids")
    for c, m in enumerate(metas):
        col = f["meta/" + m][:]
        want = np.where((np.arange(n) + c) % 9 == 0, -1, np.arange(n) * 10 + c)
        check(col.dtype == np.int32 and np.array_equal(col, want), "meta " + m)
with h5py.File(os.path.join(d, "c_written_raw.h5"), "r") as f:
    codec = f.attrs["codec"]
    codec = codec.decode() if isinstance(codec, bytes) else codec
    check(codec == "raw", "raw codec")
    check(list(f.attrs["raw_shape"]) == [3, 4, 1], "raw_shape %r" % (f.attrs["raw_shape"],))
    off = f["images/offsets"][:]
    blob = f["images/bytes"][:]
    check(len(off) == 11 and "meta" not in f, "raw shard layout")
    for i in range(10):
        check(np.array_equal(blob[off[i]:off[i + 1]], ((np.arange(12) + i) & 255).astype(np.uint8)), "raw %d" % i)
print("h5py read of C-written shards:", "OK" if fails == 0 else "%d failures" % fails)
sys.exit(1 if fails else 0)
