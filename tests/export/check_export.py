#!/usr/bin/env python3
"""ONNX export parity test (ctest export_onnx, labels onnx + oracle).

For each model family dptrain makes a weights file (one by `dptrain train
--steps 1` on a raw-codec shard, the others by export_helper init: random
weights with every BN/LN/zero-initialised tensor and the BN running stats
perturbed). `dptrain export` turns it into ONNX; then on the same inputs
  ONNX Runtime's logits, and the torch twin's (python/dptrain),
must equal dptrain's CPU graph's (export_helper forward) to rel. error
<= 1e-4, rel. error = max |x - dptrain| / max |dptrain| (tests/common's
tu_rel_err). Also checked: the dynamic batch axis, the metadata_props
(preprocessing and class names), that the Python preprocessing
(Preprocessing.transform) reproduces dptrain's eval input pipeline on raw
records (and ONNX Runtime on it dptrain's logits), and that the twin refuses
files whose tensors do not match its model.

Writes the per-model figures to WORK/onnx_parity.json and prints a table.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from dptrain.models import load_model  # noqa: E402
from dptrain.onnx_model import OnnxClassifier  # noqa: E402
from dptrain.safetensors_io import SafetensorsError, read_safetensors, write_safetensors  # noqa: E402
from export_common import check, dptrain_logits, finish, rel_err, run  # noqa: E402

TOL = 1e-4
PIXEL_TOL = 1e-4            # preprocessed inputs, absolute (values are O(1))
BATCH = 3                   # the export example has batch 2: this checks the dynamic axis
# name, export_helper init options (None: weights from `dptrain train`), loader check
CASES = [
    ("cnn (trained 1 step)", None, True),
    ("cnn gray w8", "--model cnn --image-size 20 --channels 1 --classes 5 --cnn-width 8", True),
    ("resnet18 small-stem zero-init gray 28px", "--model resnet18 --image-size 28 --channels 1 --classes 7 "
     "--small-stem --zero-init-residual", False),
    ("resnet18 64px", "--model resnet18 --image-size 64 --channels 3 --classes 6", False),
    ("resnet50 64px", "--model resnet50 --image-size 64 --channels 3 --classes 10", False),
    ("vit_ti16 patch 8 32px", "--model vit_ti16 --image-size 32 --channels 3 --classes 4 --patch 8", False),
    ("vit_s16 gray 32px", "--model vit_s16 --image-size 32 --channels 1 --classes 3", False),
]
SHARD_HWC = (45, 37, 3)     # raw records: not square, resize and crop both act
SHARD_N, SHARD_CLASSES = 16, 5

def write_raw_shard(path):
    """A schema-v1 raw-codec shard of SHARD_N random RGB images (h5py)."""
    rng = np.random.default_rng(7)
    h, w, c = SHARD_HWC
    imgs = rng.integers(0, 256, size=(SHARD_N, h, w, c), dtype=np.uint8)
    blob = imgs.reshape(-1)
    offs = np.arange(SHARD_N + 1, dtype=np.int64) * (h * w * c)
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int32(1)
        f.attrs["codec"] = "raw"
        f.attrs["raw_shape"] = np.array(SHARD_HWC, np.int32)
        f.attrs["num_classes"] = np.int64(SHARD_CLASSES)
        f.attrs["class_names"] = ["ok", "blurry", "watermark", "wrong background", "duplicate"]
        f.create_dataset("images/bytes", data=blob)
        f.create_dataset("images/offsets", data=offs)
        f.create_dataset("labels", data=np.arange(SHARD_N, dtype=np.int32) % SHARD_CLASSES)
        f.create_dataset("ids", data=np.arange(SHARD_N, dtype=np.int64) + 100)
    return imgs


def make_weights(a, work, name, opts, seed, shard, env):
    tag = "_".join("".join(ch if ch.isalnum() else " " for ch in name).split())
    if opts is None:
        out = os.path.join(work, "train_" + tag)
        run([a.dptrain, "train", "--model", "cnn", "--image-size", "32", "--train", shard, "--steps", "1",
             "--batch", "8", "--out", out, "--threads", "1", "--loader-threads", "1", "--log-every", "1"], env=env)
        return os.path.join(out, "model.safetensors"), tag
    w = os.path.join(work, tag + ".safetensors")
    run([a.helper, "init"] + opts.split() + ["--seed", str(seed), "--out", w], env=env)
    return w, tag


def check_onnx_model(m, info, name):
    inp, outp = m.graph.input[0], m.graph.output[0]
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    c, s, k = info.config.channels, info.config.image_size, info.config.classes
    check(inp.name == "input" and dims[0] == "batch" and dims[1:] == [c, s, s],
          f"{name}: ONNX input 'input' (batch, {c}, {s}, {s}): {inp.name} {dims}")
    odims = [d.dim_param or d.dim_value for d in outp.type.tensor_type.shape.dim]
    check(outp.name == "logits" and odims == ["batch", k], f"{name}: ONNX output 'logits' (batch, {k}): {odims}")
    props = {p.key: p.value for p in m.metadata_props}
    pre = json.loads(props.get("dptrain.preprocessing", "{}"))
    check(pre == json.loads(json.dumps(info.preprocessing.describe())),
          f"{name}: metadata dptrain.preprocessing describes the eval transform (resize {pre.get('resize')})")
    check(json.loads(props.get("dptrain.class_names", "[]")) == info.class_names,
          f"{name}: metadata dptrain.class_names = {props.get('dptrain.class_names')}")
    check(props.get("dptrain.model") == info.config.model and "dptrain.weights_sha256" in props,
          f"{name}: metadata carries dptrain.model and the weights' SHA-256")


def loader_check(a, work, tag, weights, onnx_path, imgs, shard, sess, info, env):
    """dptrain's eval pipeline vs Preprocessing.transform on the raw records,
    and ONNX Runtime on the Python-preprocessed batch vs dptrain's logits."""
    xin, lout = os.path.join(work, tag + "_loader_x.npy"), os.path.join(work, tag + "_loader_logits.npy")
    run([a.helper, "loader", "--weights", weights, "--data", shard, "--inputs", xin, "--output", lout], env=env)
    x_dp, l_dp = np.load(xin), np.load(lout)
    x_py = torch.stack([info.preprocessing.transform(im) for im in imgs]).numpy()
    dx = float(np.abs(x_py - x_dp).max()) if x_py.shape == x_dp.shape else float("inf")
    check(dx <= PIXEL_TOL, f"{tag}: Preprocessing.transform vs dptrain's eval loader on {len(imgs)} raw "
          f"{SHARD_HWC} images: max abs diff {dx:.3g} (tol {PIXEL_TOL:g})")
    e = rel_err(sess.run(["logits"], {"input": x_py.astype(np.float32)})[0], l_dp)
    check(e <= TOL, f"{tag}: ONNX Runtime on Python-preprocessed images vs dptrain's loader+forward: "
          f"rel. error {e:.3g}")
    # The scoring path of docs/export.md: everything from the .onnx file alone.
    clf = OnnxClassifier(onnx_path, providers=["CPUExecutionProvider"])
    z = l_dp.astype(np.float64)
    p_dp = np.exp(z - z.max(1, keepdims=True))
    p_dp /= p_dp.sum(1, keepdims=True)
    ep = float(np.abs(clf.predict(list(imgs)) - p_dp).max())
    check(ep <= TOL and clf.class_names == info.class_names,
          f"{tag}: OnnxClassifier(.onnx alone).predict(raw images) vs softmax of dptrain's logits: "
          f"max abs diff {ep:.3g}, class names {clf.class_names[:3]}...")
    return dx, e


def strictness_checks(a, work, weights, env):
    """The twin (and so the export) refuses files that do not match its model."""
    tensors, md = read_safetensors(weights)
    first = next(iter(tensors))
    bad = {
        "a missing tensor": ({k: v for k, v in tensors.items() if k != first}, md, "missing: " + first),
        "an unexpected tensor": (dict(tensors, **{"extra.weight": torch.zeros(2)}), md, "unexpected: extra.weight"),
        "a tensor of another shape": (tensors, dict(md, **{"dptrain.classes": "4", "dptrain.class_names": "a\nb\nc\nd"}),
                  "of another shape or dtype: fc.weight"),
        "a tensor of another dtype": (dict(tensors, **{first: tensors[first].double()}), md, "of another shape or dtype: " + first),
        "no dptrain metadata": (tensors, {"format": "pt"}, "no dptrain model metadata"),
    }
    for what, (ts, m, needle) in bad.items():
        p = os.path.join(work, "bad_" + what.replace(" ", "_") + ".safetensors")
        write_safetensors(p, ts, m, backend="pure")
        try:
            load_model(p)
            msg = "loaded"
        except SafetensorsError as e:
            msg = str(e)
        check(needle in msg, f"twin refuses a file with {what}: {msg[:150]}")
    out, _ = run([a.dptrain, "export", "--weights", p, "--onnx", os.path.join(work, "bad.onnx")], env=env, expect=2)
    check("no dptrain model metadata" in out, f"dptrain export exits 2 on a file without metadata: {out[:120]}")
    raw = open(weights, "rb").read()
    p = os.path.join(work, "bad_truncated.safetensors")
    with open(p, "wb") as f:
        f.write(raw[: len(raw) - 100])
    out, _ = run([a.dptrain, "export", "--weights", p, "--onnx", os.path.join(work, "bad.onnx")], env=env, expect=2)
    check("truncated" in out, f"dptrain export exits 2 on a truncated file: {out[:150]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dptrain", required=True)
    ap.add_argument("--helper", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(2)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="2",
               DPTRAIN_NO_BIND="1")
    # `dptrain export` finds <source>/.venv/bin/python itself; a venv elsewhere
    # (DPTRAIN_VENV) is passed on as DPTRAIN_PYTHON.
    if os.access(os.path.join(REPO, ".venv", "bin", "python"), os.X_OK):
        env.pop("DPTRAIN_PYTHON", None)
        print(f"dptrain export: finds the venv at {REPO}/.venv itself")
    else:
        env["DPTRAIN_PYTHON"] = sys.executable
    shard = os.path.join(a.work, "raw-00000.h5")
    imgs = write_raw_shard(shard)
    rows = []
    for k, (name, opts, with_loader) in enumerate(CASES):
        t0 = time.time()
        weights, tag = make_weights(a, a.work, name, opts, 10 + k, shard, env)
        onnx_path = os.path.join(a.work, tag + ".onnx")
        if k == 1:   # the module directly, another opset
            out, t_exp = run([sys.executable, "-m", "dptrain.export", "--weights", weights, "--onnx", onnx_path,
                              "--opset", "14"], env=dict(env, PYTHONPATH=os.path.join(REPO, "python")))
        else:        # the dptrain subcommand (finds the package and the venv itself)
            out, t_exp = run([a.dptrain, "export", "--weights", weights, "--onnx", onnx_path], env=env)
        check("check: ONNX Runtime vs torch twin" in out, f"{name}: export ran its own check: {out.splitlines()[-1]}")
        model, info = load_model(weights)
        m = onnx.load(onnx_path)
        check_onnx_model(m, info, name)
        c, s = info.config.channels, info.config.image_size
        x = torch.randn(BATCH, c, s, s, generator=torch.Generator().manual_seed(100 + k))
        want = dptrain_logits(a.helper, a.work, weights, x.numpy(), tag, env=env)
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        e_ort = rel_err(sess.run(["logits"], {"input": x.numpy()})[0], want)
        with torch.no_grad():
            e_twin = rel_err(model(x).numpy(), want)
        one = sess.run(["logits"], {"input": x[:1].numpy()})[0]
        check(one.shape == (1, info.config.classes), f"{name}: ONNX Runtime at batch 1 gives {one.shape}")
        check(e_ort <= TOL, f"{name}: ONNX Runtime vs dptrain, batch {BATCH}: rel. error {e_ort:.3g} (tol {TOL:g})")
        check(e_twin <= TOL, f"{name}: torch twin vs dptrain, batch {BATCH}: rel. error {e_twin:.3g} (tol {TOL:g})")
        row = {"case": name, "model": info.config.model, "image_size": s, "channels": c,
               "classes": info.config.classes, "params": sum(p.numel() for p in model.parameters()),
               "rel_err_ort_vs_dptrain": e_ort, "rel_err_twin_vs_dptrain": e_twin,
               "max_abs_logit": float(np.abs(want).max()), "export_s": round(t_exp, 2),
               "onnx_mb": round(os.path.getsize(onnx_path) / 1e6, 2)}
        if with_loader:
            row["preprocess_max_abs_diff"], row["rel_err_ort_on_py_preprocessing"] = loader_check(
                a, a.work, tag, weights, onnx_path, imgs, shard, sess, info, env)
        if opts is None:
            check("dptrain.eval_resize_ratio" in info.metadata and info.preprocessing.resize_ratio == 0.875,
                  f"{name}: the trainer wrote the eval transform: ratio {info.metadata.get('dptrain.eval_resize_ratio')}"
                  f", filter {info.metadata.get('dptrain.eval_resize_filter')}")
            check(info.class_names == ["ok", "blurry", "watermark", "wrong background", "duplicate"],
                  f"{name}: class names from the shard: {info.class_names}")
        row["case_s"] = round(time.time() - t0, 1)
        rows.append(row)
    strictness_checks(a, a.work, os.path.join(a.work, "cnn_gray_w8.safetensors"), env)

    print("\nONNX export parity (rel. error = max |x - dptrain| / max |dptrain|, batch %d, tol %g)" % (BATCH, TOL))
    print(f"{'case':42s} {'params':>10s} {'ORT vs dptrain':>15s} {'twin vs dptrain':>16s} {'export s':>9s}")
    for r in rows:
        print(f"{r['case']:42s} {r['params']:10d} {r['rel_err_ort_vs_dptrain']:15.3e} "
              f"{r['rel_err_twin_vs_dptrain']:16.3e} {r['export_s']:9.1f}")
    with open(os.path.join(a.work, "onnx_parity.json"), "w") as f:
        json.dump({"tolerance": TOL, "batch": BATCH, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
                   "torch": torch.__version__, "cases": rows}, f, indent=1)
    return finish("export_onnx")


if __name__ == "__main__":
    sys.exit(main())
