"""python -m dptrain.export --weights model.safetensors --onnx model.onnx [--opset 17]

Exports a dptrain weights file to ONNX through its torch twin:
  input   "input"  float32 (batch, C, S, S), NCHW, preprocessed as the
                   metadata says (dptrain.preprocessing)
  output  "logits" float32 (batch, classes); softmax gives probabilities
The batch axis is dynamic. metadata_props carry dptrain.preprocessing (JSON),
dptrain.class_names (JSON list), every dptrain.* key of the weights file and
the weights file's SHA-256. Unless --no-check, ONNX Runtime (when installed)
runs the exported model on a random batch and its logits must equal the torch
twin's to rel. error <= 1e-4 (max |ort - torch| / max |torch|).

Exit codes: 0 done, 1 check failed, 2 bad input or missing packages.
"""
import argparse
import io
import json
import os
import sys
import warnings

CHECK_TOL = 1e-4
MISSING_HINT = ("make the project's environment with .ci/venv.sh (or pip install -r python/requirements.txt "
                "into a venv that sees torch/torchvision), or point DPTRAIN_PYTHON at a python that has them")


def fail(code, msg):
    print(f"dptrain export: {msg}", file=sys.stderr)
    sys.exit(code)


def need_modules(*names):
    missing = []
    for n in names:
        try:
            __import__(n)
        except ImportError:
            missing.append(n)
    if missing:
        fail(2, f"missing Python package(s) {', '.join(missing)} in {sys.executable}: {MISSING_HINT}")


def rel_err(got, want):
    import numpy as np
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def onnx_metadata(info, weights_path):
    """metadata_props of the exported model (str -> str)."""
    from dptrain.afile import sha256_file
    md = {k: v for k, v in info.metadata.items() if k.startswith("dptrain.") and k != "dptrain.class_names"}
    md["dptrain.preprocessing"] = json.dumps(info.preprocessing.describe())
    md["dptrain.class_names"] = json.dumps(info.class_names)
    md["dptrain.output"] = "logits: float32 (batch, classes), class order = dptrain.class_names; softmax -> probabilities"
    md["dptrain.weights_file"] = os.path.basename(weights_path)
    md["dptrain.weights_sha256"] = sha256_file(weights_path)
    return md


def export(weights, onnx_path, opset=17, example_batch=2):
    """Writes onnx_path; returns (onnx ModelProto, torch twin, WeightsInfo)."""
    import onnx
    import torch

    from dptrain.afile import atomic_write
    from dptrain.models import load_model

    model, info = load_model(weights)
    c, s = info.config.channels, info.config.image_size
    x = torch.randn(example_batch, c, s, s, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    # Traced with autograd on and parameters that require grad: in eval mode
    # under no_grad, torch 1.13's nn.MultiheadAttention takes its fused fast
    # path (even head counts), which has no ONNX symbolic.
    for p in model.parameters():
        p.requires_grad_(True)
    with torch.enable_grad(), warnings.catch_warnings():
        # torchvision's ViT asserts the input size, which the tracer reports
        # as a constant: right, the size is fixed (only the batch is dynamic).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, x, buf, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    for k, v in onnx_metadata(info, weights).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "dptrain"
    m.doc_string = (f"dptrain {info.config.model}, {c}x{s}x{s} input, {info.config.classes} classes. "
                    "Input: NCHW float32, " + info.preprocessing.describe()["torchvision"] +
                    ". See metadata dptrain.preprocessing.")
    onnx.checker.check_model(m)
    data = m.SerializeToString()
    atomic_write(onnx_path, lambda f: f.write(data))
    return m, model, info


def check_with_ort(onnx_path, model, info, batch=3):
    """ONNX Runtime vs the torch twin on a random batch of another size than the
    export example (exercises the dynamic axis). Returns the rel. error."""
    import numpy as np
    import onnxruntime as ort
    import torch

    c, s = info.config.channels, info.config.image_size
    x = torch.randn(batch, c, s, s, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x).numpy()
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x.numpy()})[0]
    if got.shape != want.shape:
        raise RuntimeError(f"ONNX Runtime returned {got.shape}, the twin {want.shape}")
    return rel_err(np.asarray(got), want)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="dptrain export", description="Export dptrain weights to ONNX.")
    ap.add_argument("--weights", required=True, help="model.safetensors written by dptrain train")
    ap.add_argument("--onnx", required=True, help="output .onnx file")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17; torch 1.13 exports 7..17)")
    ap.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs torch check")
    a = ap.parse_args(argv)
    need_modules("numpy", "torch", "torchvision", "onnx")
    if not 7 <= a.opset <= 17:
        fail(2, f"bad configuration: setting 'opset': {a.opset} is outside 7..17")
    from dptrain.safetensors_io import SafetensorsError
    try:
        m, model, info = export(a.weights, a.onnx, a.opset)
    except SafetensorsError as e:
        fail(2, f"bad input: setting 'weights': {e}")
    except OSError as e:
        fail(2, f"setting 'onnx': {e}")
    except Exception as e:   # torch.onnx / onnx.checker: an operator this opset cannot express, ...
        fail(1, f"exporting '{a.weights}' with opset {a.opset} failed: {type(e).__name__}: {e}")
    size = os.path.getsize(a.onnx)
    print(f"wrote {a.onnx}: {info.config.model}, input (batch, {info.config.channels}, {info.config.image_size}, "
          f"{info.config.image_size}), {info.config.classes} classes, opset {a.opset}, {size / 1e6:.1f} MB")
    if a.no_check:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("dptrain export: onnxruntime not installed: ONNX Runtime check skipped", file=sys.stderr)
        return 0
    e = check_with_ort(a.onnx, model, info)
    print(f"check: ONNX Runtime vs torch twin, batch 3: rel. error {e:.3g} (limit {CHECK_TOL:g})")
    if not e <= CHECK_TOL:
        fail(1, f"ONNX Runtime disagrees with the torch twin (rel. error {e:.3g} > {CHECK_TOL:g})")
    return 0


def _drop_cwd_from_path():
    """python -m puts the working directory first on sys.path, so a folder
    there named like a package (./onnx/ for the outputs, say) would shadow
    it. Kept only when it is where the dptrain package lives."""
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cwd = os.getcwd()
    if cwd != pkg_root:
        sys.path[:] = [p for p in sys.path if p != "" and os.path.abspath(p) != cwd]


if __name__ == "__main__":
    _drop_cwd_from_path()
    sys.exit(main())
