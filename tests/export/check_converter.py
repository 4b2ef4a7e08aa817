#!/usr/bin/env python3
"""tools/torch2safetensors.py test (ctest export_torch2safetensors, labels
oracle + unit).

1. torch builds a torchvision ResNet-18 (5 classes) with random weights and
   randomised BN affine parameters and running statistics, and saves its
   state_dict as .pth. The converter converts it twice: in this venv with the
   safetensors package, and with --pure-python (Debian's python3: torch, no
   safetensors package), which must use the built-in writer.
   Both files must load with safetensors.torch.load_file and hold every
   tensor of the state_dict exactly: same names, F32 parameters and BN
   buffers, I64 scalar num_batches_tracked; the built-in reader agrees.
2. dptrain (export_helper forward, model given on the command line) loads the
   file with weights_load into its ResNet-18 and its eval logits equal
   torch's to rel. error <= 1e-4.
3. timm names: a torchvision ViT state_dict renamed to timm's names (by the C
   map, export_helper names) converts back to torchvision's names, the Python
   map (dptrain.names) agrees with the C map name for name, and dptrain's
   ViT logits on the converted file equal torch's; the same from a timm-named
   .safetensors file (timm's hub format).
4. --torchvision NAME writes random weights, the same with either writer.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))

import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from dptrain.names import timm_to_torchvision, torchvision_to_timm  # noqa: E402
from dptrain.safetensors_io import read_safetensors, write_safetensors  # noqa: E402
from export_common import check, dptrain_logits, finish, rel_err, run  # noqa: E402

CONVERTER = os.path.join(REPO, "tools", "torch2safetensors.py")
TOL = 1e-4
def randomise(model, seed):
    """BN affine and running stats, and every constant-initialised tensor, so a
    swapped or dropped tensor changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
        for _, p in model.named_parameters():
            if p.numel() > 1 and bool((p == p.flatten()[0]).all()):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def compare_file(path, sd, label, want_names=None):
    """Every tensor of sd (renamed by want_names) is in path, exactly."""
    want = {want_names(k) if want_names else k: v for k, v in sd.items()}
    got = safetensors.torch.load_file(path)
    check(set(got) == set(want), f"{label}: safetensors.torch loads {len(got)} tensors, the state_dict has "
          f"{len(want)} (missing {sorted(set(want) - set(got))[:3]}, extra {sorted(set(got) - set(want))[:3]})")
    bad = [k for k in want if k in got and (got[k].dtype != (torch.int64 if k.endswith("num_batches_tracked")
                                                                else torch.float32)
                                            or got[k].shape != want[k].shape or not torch.equal(got[k], want[k]))]
    check(not bad, f"{label}: every tensor equal, F32 (I64 num_batches_tracked), same shape ({len(bad)} differ: {bad[:3]})")
    nbt = [k for k in got if k.endswith("num_batches_tracked")]
    check(all(got[k].shape == () for k in nbt), f"{label}: {len(nbt)} num_batches_tracked, all I64 scalars")
    mine, md = read_safetensors(path)
    check(set(mine) == set(got) and all(torch.equal(mine[k], got[k]) for k in got),
          f"{label}: dptrain.safetensors_io reads the same tensors")
    with safetensors.safe_open(path, "pt") as f:
        md2 = f.metadata()
    check(md == md2 and md.get("dptrain.source_names") and md.get("dptrain.source"),
          f"{label}: metadata {{source: {md.get('dptrain.source')}, names: {md.get('dptrain.source_names')}}}")
    return md


def resnet_case(a):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    randomise(model, 1)
    model.eval()
    sd = model.state_dict()
    pth = os.path.join(a.work, "resnet18.pth")
    torch.save(sd, pth)
    st_pkg, st_pure = os.path.join(a.work, "r18_pkg.safetensors"), os.path.join(a.work, "r18_pure.safetensors")
    out, _ = run([sys.executable, CONVERTER, "--pth", pth, "--out", st_pkg])
    check("writer safetensors" in out, f"venv: converter used the safetensors package: {out}")
    out, _ = run([a.pure_python, CONVERTER, "--pth", pth, "--out", st_pure])
    check("writer pure" in out, f"{a.pure_python} (no safetensors package): converter wrote the format itself: {out}")
    for p, label in ((st_pkg, "package writer"), (st_pure, "built-in writer")):
        md = compare_file(p, sd, label)
        check(len(md.get("dptrain.source_sha256", "")) == 64, f"{label}: source SHA-256 recorded")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x).numpy()
    for p, label in ((st_pkg, "package writer"), (st_pure, "built-in writer")):
        got = dptrain_logits(a.helper, a.work, p, x.numpy(), "r18",
                             "--model resnet18 --image-size 64 --channels 3 --classes 5".split())
        e = rel_err(got, want)
        check(e <= TOL, f"{label}: dptrain's ResNet-18 (weights_load) on the converted file vs torch: "
              f"rel. error {e:.3g} (tol {TOL:g})")
    return st_pure


def timm_case(a):
    # The C map, then the Python map against it.
    opts = "--model vit_ti16 --image-size 32 --channels 3 --classes 4 --patch 8"
    pairs = [line.split() for line in run([a.helper, "names"] + opts.split())[0].splitlines()]
    agree = [tv for tv, tm in pairs if torchvision_to_timm(tv) == tm and timm_to_torchvision(tm) == tv]
    check(len(agree) == len(pairs) > 0, f"dptrain.names agrees with src/nn/models/vit.c on {len(agree)}/{len(pairs)} names")
    c_map = dict(pairs)
    torch.manual_seed(3)
    model = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=12, num_heads=3,
                                                 hidden_dim=192, mlp_dim=768, num_classes=4)
    randomise(model, 4)
    model.eval()
    sd = model.state_dict()
    timm_sd = {c_map[k]: v for k, v in sd.items()}
    pth = os.path.join(a.work, "vit_timm.pth")
    torch.save({"model": timm_sd, "epoch": 3}, pth)   # a training checkpoint, as timm's train.py saves
    st = os.path.join(a.work, "vit_from_timm.safetensors")
    out, _ = run([a.pure_python, CONVERTER, "--pth", pth, "--out", st])
    check("timm (mapped to torchvision) names" in out, f"timm checkpoint recognised: {out}")
    compare_file(st, sd, "timm -> torchvision")
    # timm's Hugging Face hub format: a safetensors file with timm names.
    hub, st2 = os.path.join(a.work, "vit_timm_hub.safetensors"), os.path.join(a.work, "vit_from_hub.safetensors")
    write_safetensors(hub, timm_sd, {"format": "pt"}, backend="pure")
    out, _ = run([a.pure_python, CONVERTER, "--pth", hub, "--out", st2])
    check("timm (mapped to torchvision) names" in out, f"timm safetensors recognised: {out}")
    compare_file(st2, sd, "timm safetensors -> torchvision")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = model(x).numpy()
    e = rel_err(dptrain_logits(a.helper, a.work, st, x.numpy(), "vit", opts.split()), want)
    check(e <= TOL, f"dptrain's ViT-Ti/16 (patch 8) on the converted timm file vs torchvision: rel. error {e:.3g}")


def random_case(a):
    p1, p2 = os.path.join(a.work, "tv_a.safetensors"), os.path.join(a.work, "tv_b.safetensors")
    run([sys.executable, CONVERTER, "--torchvision", "resnet18", "--num-classes", "5", "--seed", "7", "--out", p1])
    run([a.pure_python, CONVERTER, "--torchvision", "resnet18", "--num-classes", "5", "--seed", "7", "--out", p2])
    t1, t2 = safetensors.torch.load_file(p1), safetensors.torch.load_file(p2)
    check(set(t1) == set(t2) and all(torch.equal(t1[k], t2[k]) for k in t1),
          f"--torchvision resnet18: both writers give the same {len(t1)} tensors")
    out, _ = run([sys.executable, CONVERTER, "--torchvision", "no_such_model", "--out", p1], expect=2)
    check("no model 'no_such_model'" in out, f"unknown torchvision model: exit 2: {out}")
    bad = os.path.join(a.work, "not_a_state_dict.pth")
    torch.save({"epoch": 1}, bad)
    out, _ = run([sys.executable, CONVERTER, "--pth", bad, "--out", p1], expect=2)
    check("holds no state_dict" in out, f"a .pth without a state_dict: exit 2: {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--helper", required=True)
    ap.add_argument("--pure-python", required=True, help="a python with torch and no safetensors package")
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch.set_num_threads(2)
    r = subprocess.run([a.pure_python, "-c", "import safetensors"], capture_output=True)
    check(r.returncode != 0, f"{a.pure_python} has no safetensors package (so the built-in writer is tested)")
    resnet_case(a)
    timm_case(a)
    random_case(a)
    return finish("export_torch2safetensors")


if __name__ == "__main__":
    sys.exit(main())
