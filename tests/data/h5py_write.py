#!/usr/bin/env python3
"""Writes schema-v1 shards with h5py (the spec as another implementation reads
it) plus a corpus of bad shards, into $DP_FIXTURE_DIR/data/. test_shard_h5py
checks that shard_open reads the good ones exactly and rejects the bad ones
with a message naming the file and the first bad record.

Record i of the good shards: length 10 + 3*i, byte k = (7*i + k) & 255,
label i % 3, id 1000 + i, meta category = i % 5 (missing -1 when i % 4 == 0),
width = 100 + i, no other meta columns. Class names alpha, beta, gamma."""
import os, sys
import h5py
import numpy as np

N = 40
out = os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.environ["DP_FIXTURE_DIR"], "data")
os.makedirs(out, exist_ok=True)


def records():
    recs = [np.array([(7 * i + k) & 255 for k in range(10 + 3 * i)], np.uint8) for i in range(N)]
    offs = np.zeros(N + 1, np.int64)
    offs[1:] = np.cumsum([len(r) for r in recs])
    return np.concatenate(recs), offs


def write(name, *, chunked=False, ids="int", names="vlen", schema=1, offs_fix=None, labels_fix=None,
          drop=None, codec="jpeg"):
    blob, offs = records()
    labels = np.arange(N, dtype=np.int32) % 3
    if offs_fix:
        offs_fix(offs)
    if labels_fix:
        labels_fix(labels)
    path = os.path.join(out, name)
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int32(schema)
        f.attrs["codec"] = codec
        f.attrs["num_classes"] = np.int64(3)
        cn = ["alpha", "beta", "gamma"]
        if names == "vlen":
            f.attrs["class_names"] = cn
        else:
            f.attrs["class_names"] = np.array([c.encode() for c in cn], dtype="S8")
        if codec == "raw":
            f.attrs["raw_shape"] = np.array([2, 5, 1], np.int32)
        if chunked:
            f.create_dataset("images/bytes", data=blob, chunks=(64,), compression="gzip")
        else:
            f.create_dataset("images/bytes", data=blob)
        f.create_dataset("images/offsets", data=offs)
        f.create_dataset("labels", data=labels)
        if ids == "int":
            f.create_dataset("ids", data=np.arange(N, dtype=np.int64) + 1000)
        elif ids == "fixed":
            f.create_dataset("ids", data=np.array([("rec%d" % i).encode() for i in range(N)], dtype="S12"))
        else:
            f.create_dataset("ids", data=["rec%d" % i for i in range(N)], dtype=h5py.string_dtype())
        cat = np.arange(N, dtype=np.int32) % 5
        cat[::4] = -1
        f.create_dataset("meta/category", data=cat)
        f.create_dataset("meta/width", data=np.arange(N, dtype=np.int32) + 100)
        for d in drop or []:
            del f[d]
    return path


write("good_contig.h5")
write("good_chunked.h5", chunked=True, names="fixed", ids="fixed")
write("good_vlen_ids.h5", ids="vlen")

# Bad corpus.
p = write("bad_truncated_src.h5")
data = open(p, "rb").read()
open(os.path.join(out, "bad_truncated.h5"), "wb").write(data[: len(data) // 2])
os.remove(p)
open(os.path.join(out, "bad_not_hdf5.h5"), "wb").write(b"this is not an HDF5 file\n" * 20)
open(os.path.join(out, "bad_empty.h5"), "wb").write(b"")


def past(o):
    o[13:] += 5000   # record 12 ends past the blob


def nonmono(o):
    o[8] = o[7] - 1   # record 7 ends before it starts


def lab(l):
    l[21] = 3         # label out of [0, 3)


write("bad_offsets_past.h5", offs_fix=past)
write("bad_offsets_nonmono.h5", offs_fix=nonmono)
write("bad_label.h5", labels_fix=lab)
write("bad_missing_labels.h5", drop=["labels"])
write("bad_missing_bytes.h5", drop=["images/bytes"])
write("bad_schema.h5", schema=7)
write("bad_codec.h5", codec="webp")
print("wrote fixtures to", out)
