#!/usr/bin/env python3
"""Converts a torchvision or timm state_dict into a safetensors file for
dptrain's --init-weights (fine-tuning from pretrained weights).

  tools/torch2safetensors.py --pth resnet50-11ad3fa6.pth --out resnet50.safetensors
  tools/torch2safetensors.py --pth vit_base_patch16_224.pth --out vit_b16.safetensors   # timm names
  tools/torch2safetensors.py --pth model.safetensors --out vit_b16.safetensors   # timm's hub format (timm names)
  tools/torch2safetensors.py --torchvision resnet18 --num-classes 5 --out r18.safetensors   # random weights (tests)

Output: every tensor under torchvision's names (timm ViT names are mapped with
dptrain.names, the same map as src/nn/models/vit.c), floating tensors as F32
(parameters and BN running_mean / running_var), num_batches_tracked as I64
scalars, in torch's layouts: what dptrain's weights_load expects for a
same-shaped model. The metadata says where the weights came from
(dptrain.source, dptrain.source_sha256, dptrain.source_names, ...). It has no
dptrain.model: the file is a set of tensors, not a trained dptrain model.

Needs only torch (and torchvision for --torchvision). The safetensors package
is used when installed; otherwise (or with --backend pure) the format is
written directly. A --pth file is loaded with torch.load: only convert files
you trust (a .pth is a pickle).

Exit codes: 0 done, 2 bad input.
"""
import argparse
import os
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import torch  # noqa: E402

from dptrain.afile import sha256_file  # noqa: E402
from dptrain.names import looks_like_timm_vit, timm_to_torchvision  # noqa: E402
from dptrain.safetensors_io import SafetensorsError, read_safetensors, write_safetensors  # noqa: E402

CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")


def fail(msg):
    print(f"torch2safetensors: {msg}", file=sys.stderr)
    sys.exit(2)


def is_state_dict(d):
    return isinstance(d, dict) and d and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def extract_state_dict(obj, path):
    """A state_dict from what torch.load returned: a state_dict, a module, or a
    training checkpoint holding one under a usual key."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if is_state_dict(obj):
        return obj
    if isinstance(obj, dict):
        for k in CONTAINER_KEYS:
            if is_state_dict(obj.get(k)):
                return obj[k]
    keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
    fail(f"'{path}' holds no state_dict (a dict of tensors, a module, or one under {'/'.join(CONTAINER_KEYS)}); "
         f"found {keys}")


def strip_prefix(sd, prefix="module."):
    """DistributedDataParallel's 'module.' prefix, when every name has it."""
    if sd and all(k.startswith(prefix) for k in sd):
        return OrderedDict((k[len(prefix):], v) for k, v in sd.items())
    return sd


def convert(sd):
    """Returns (tensors under torchvision names, naming scheme, unmapped timm names)."""
    names = "torchvision"
    unmapped = []
    out = OrderedDict()
    timm = looks_like_timm_vit(sd)
    if timm:
        names = "timm (mapped to torchvision)"
    for k, v in sd.items():
        nk = k
        if timm:
            nk = timm_to_torchvision(k)
            if nk is None:
                unmapped.append(k)
                nk = k
        if nk in out:
            fail(f"two tensors map to '{nk}'")
        t = v.detach().cpu()
        if k.endswith("num_batches_tracked"):
            t = t.to(torch.int64).reshape(())
        elif t.is_floating_point():
            t = t.to(torch.float32)
        out[nk] = t.contiguous()
    return out, names, unmapped


def main(argv=None):
    ap = argparse.ArgumentParser(description="torchvision/timm state_dict -> safetensors for dptrain --init-weights")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--pth", help="a .pth/.pt file (state_dict, module or checkpoint) from torchvision or timm, "
                                   "or a .safetensors file with their names")
    src.add_argument("--torchvision", metavar="NAME", help="a torchvision model with random weights, e.g. resnet18")
    ap.add_argument("--num-classes", type=int, default=1000, help="with --torchvision: classifier size [1000]")
    ap.add_argument("--seed", type=int, default=0, help="with --torchvision: torch.manual_seed [0]")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--backend", choices=("auto", "pure", "safetensors"), default="auto",
                    help="writer: the safetensors package (auto when installed) or the built-in one")
    a = ap.parse_args(argv)

    md = {"format": "pt", "dptrain.converter": "tools/torch2safetensors.py", "dptrain.torch_version": torch.__version__}
    if a.pth and a.pth.endswith(".safetensors"):   # e.g. timm's weights on the Hugging Face hub
        try:
            sd, _ = read_safetensors(a.pth)
        except SafetensorsError as e:
            fail(str(e))
        sd = strip_prefix(sd)
        md["dptrain.source"] = os.path.basename(a.pth)
        md["dptrain.source_sha256"] = sha256_file(a.pth)
    elif a.pth:
        try:
            obj = torch.load(a.pth, map_location="cpu")
        except (OSError, RuntimeError, EOFError, ValueError) as e:
            fail(f"cannot load '{a.pth}' with torch.load: {e}")
        sd = strip_prefix(extract_state_dict(obj, a.pth))
        md["dptrain.source"] = os.path.basename(a.pth)
        md["dptrain.source_sha256"] = sha256_file(a.pth)
    else:
        import torchvision
        fn = getattr(torchvision.models, a.torchvision, None)
        if not callable(fn) or a.torchvision.startswith("_"):
            fail(f"torchvision.models has no model '{a.torchvision}'")
        torch.manual_seed(a.seed)
        sd = fn(weights=None, num_classes=a.num_classes).state_dict()
        md["dptrain.source"] = f"torchvision.models.{a.torchvision}(weights=None, num_classes={a.num_classes})"
        md["dptrain.source_seed"] = str(a.seed)
        md["dptrain.torchvision_version"] = torchvision.__version__
    tensors, names, unmapped = convert(sd)
    md["dptrain.source_names"] = names
    md["dptrain.tensors"] = str(len(tensors))
    if unmapped:
        print(f"torch2safetensors: warning: {len(unmapped)} timm tensors have no torchvision name and keep theirs: "
              f"{', '.join(unmapped[:6])}{' ...' if len(unmapped) > 6 else ''}", file=sys.stderr)
    try:
        backend = write_safetensors(a.out, tensors, md, a.backend)
    except OSError as e:
        fail(str(e))
    except ImportError as e:
        fail(f"--backend safetensors: {e}")
    nparam = sum(t.numel() for k, t in tensors.items() if t.is_floating_point())
    print(f"wrote {a.out}: {len(tensors)} tensors ({nparam} floats), {names} names, writer {backend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
