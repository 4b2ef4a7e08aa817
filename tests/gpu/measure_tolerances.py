#!/usr/bin/env python3
"""Where the GPU-vs-CPU tolerances of tests/gpu/test_gpu_models.c come from.

No GPU is needed: this measures, on the CPU with PyTorch, the error that each
precision mode of the CUDA backend brings into the loss and the parameter
gradients of the test's exact configurations, against a float64 reference:

  fp32  plain float32 (two fp32 implementations differ by about this much;
        the CPU oracle tests needed the same order, 5e-4 / 3e-3 on ResNet-50);
  tf32  float32 with every conv / linear / attention GEMM operand rounded to
        tf32 (10 mantissa bits, round-to-nearest-even) in forward and backward,
        fp32 accumulation: what cuDNN/cuBLAS tensor-op math does;
  bf16  the backend's autocast scheme: conv (input channels % 8 == 0) and
        linear operands rounded to bf16 (x, W in forward; dy, W and x in
        backward), fp32 accumulation and fp32 activations, attention in tf32,
        the stem conv (C = 1 or 3) in tf32, BN / LN / softmax / loss in fp32.

The rounding is applied by custom autograd functions around F.conv2d,
F.linear and the attention matmuls, so forward and both backward GEMMs see
rounded operands exactly where the GPU code rounds them.

Metrics: per parameter gradient max|d| / max|ref| (tu_rel_err) and
||d|| / ||ref|| (the worst tensor of each model is printed), and the global
||d|| / ||ref|| over all gradients together. At random init some gradient
sums cancel to a small fraction of their terms (BN scale/shift, early
convs), so a per-tensor relative error is amplified there: under tf32/bf16
the worst tensor is off by 10-50 % even though every op rounds correctly.
The test therefore bounds the global L2 error (and the per-tensor one
loosely) in tf32/bf16. Its tolerances sit a few times above what this prints
(the table in test_gpu_models.c).

usage: tests/gpu/measure_tolerances.py [CASE ...]   (Debian's python3 with torch 1.13;
       cases: see CASES; default: the test's configurations)
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from torch_cnn import BaselineCNN  # noqa: E402

MODE = "fp32"   # set per run: fp32 | tf32 | bf16


def rnd(x, kind):
    if kind == "bf16":
        return x.to(torch.bfloat16).to(x.dtype)
    if kind == "tf32":
        b = x.contiguous().view(torch.int32)
        r = (b + 0x0FFF + ((b >> 13) & 1)) & ~0x1FFF   # RNE to 10 mantissa bits
        return r.view(torch.float32)
    return x


class RConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, kind):
        xr, wr = rnd(x, kind), rnd(w, kind)
        ctx.save_for_backward(xr, wr)
        ctx.conf = (stride, padding, kind, b is not None, x.shape, w.shape)
        return F_conv2d(xr, wr, b, stride, padding)

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        stride, padding, kind, has_b, xs, ws = ctx.conf
        dyr = rnd(dy, kind)
        # aten's own backward (torch.nn.grad.conv2d_weight would call the
        # patched F.conv2d with groups, which the rounding wrapper does not take).
        st = [stride] * 2 if isinstance(stride, int) else list(stride)
        pd = [padding] * 2 if isinstance(padding, int) else list(padding)
        dx, dw, _ = torch.ops.aten.convolution_backward(dyr, xr, wr, None, st, pd, [1, 1], False, [0, 0], 1,
                                                        [True, True, False])
        db = dy.sum((0, 2, 3)) if has_b else None   # bias gradient from fp32 dy
        return dx, dw, db, None, None, None


class RMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, kind):
        ar, br = rnd(a, kind), rnd(b, kind)
        ctx.save_for_backward(ar, br)
        ctx.kind = kind
        return ar @ br

    @staticmethod
    def backward(ctx, d):
        ar, br = ctx.saved_tensors
        dr = rnd(d, ctx.kind)
        return dr @ br.transpose(-1, -2), ar.transpose(-1, -2) @ dr, None


F_conv2d = F.conv2d
F_linear = F.linear


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if MODE == "fp32" or x.dtype == torch.float64:
        return F_conv2d(x, w, b, stride, padding, dilation, groups)
    kind = MODE
    if MODE == "bf16" and x.shape[1] % 8 != 0:
        kind = "tf32"   # the stem / patch embedding stays fp32 storage, tf32 math
    return RConv.apply(x, w, b, stride, padding, kind)


def linear(x, w, b=None):
    if MODE == "fp32" or x.dtype == torch.float64:
        return F_linear(x, w, b)
    y = RMM.apply(x, w.t(), MODE)
    return y + b if b is not None else y


def sdpa(q, k, v, attn_mask=None, dropout_p=0.0):   # torch 1.13's private helper
    kind = "tf32" if MODE in ("tf32", "bf16") else None
    q = q / math.sqrt(q.shape[-1])
    if kind and q.dtype == torch.float32:
        attn = F.softmax(RMM.apply(q, k.transpose(-2, -1), kind), dim=-1)
        return RMM.apply(attn, v, kind), attn
    attn = F.softmax(q @ k.transpose(-2, -1), dim=-1)
    return attn @ v, attn


F.conv2d = conv2d
F.linear = linear
if hasattr(F, "_scaled_dot_product_attention"):
    F._scaled_dot_product_attention = sdpa


CASES = {
    # name: (builder, channels, size, batch, train-mode BN)
    "resnet50_64_b2": (lambda: torchvision.models.resnet50(num_classes=5), 3, 64, 2, True),
    "resnet50_64_b2_eval": (lambda: torchvision.models.resnet50(num_classes=5), 3, 64, 2, False),
    "resnet50_96_b8": (lambda: torchvision.models.resnet50(num_classes=5), 3, 96, 8, True),
    "vit_ti16_32_p8_b2": (lambda: torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768, num_classes=5),
        3, 32, 2, True),
    "cnn_32_b8_rgb": (lambda: BaselineCNN(3, 5), 3, 32, 8, True),
    "cnn_32_b8_gray": (lambda: BaselineCNN(1, 5), 1, 32, 8, True),
    "cnn_32_b32_rgb": (lambda: BaselineCNN(3, 5), 3, 32, 32, True),
    "cnn_32_b32_gray": (lambda: BaselineCNN(1, 5), 1, 32, 32, True),
    "cnn_32_b8_rgb_eval": (lambda: BaselineCNN(3, 5), 3, 32, 8, False),
    "cnn_32_b8_gray_eval": (lambda: BaselineCNN(1, 5), 1, 32, 8, False),
    "vit_ti16_32_p8_b8": (lambda: torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768, num_classes=5),
        3, 32, 8, True),
}


def models(names):
    out = []
    for n in names:
        torch.manual_seed(0)
        build, ch, size, batch, train = CASES[n]
        m = build()
        if hasattr(m, "heads"):
            # torchvision (and dptrain) start the ViT head at zero, which makes
            # every backbone gradient zero; the test randomises it, so do we.
            torch.nn.init.uniform_(m.heads.head.weight, -0.05, 0.05)
        out.append((n, m, ch, size, batch, train))
    return out


def grads(model, x, y, dtype, train):
    global MODE
    m = model.to(dtype)
    m.train(train)
    for p in m.parameters():
        p.grad = None
    loss = F.cross_entropy(m(x.to(dtype)), y)
    loss.backward()
    return float(loss), {n: p.grad.double().clone() for n, p in m.named_parameters()}


def main():
    global MODE
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    print("%-22s %-5s %10s %14s %14s %14s %14s" % ("model", "mode", "loss rel", "max-norm worst", "L2 worst",
                                                   "global L2", "top-4 L2"))
    names = sys.argv[1:] or ["resnet50_64_b2", "vit_ti16_32_p8_b2", "cnn_32_b8_rgb", "cnn_32_b8_gray"]
    for name, model, ch, size, batch, train in models(names):
        g = torch.Generator().manual_seed(11)
        x = torch.rand(batch, ch, size, size, generator=g) * 2 - 1
        y = torch.tensor([(i * 3 + 11) % 5 for i in range(batch)])
        state = {k: v.clone() for k, v in model.state_dict().items()}
        MODE = "fp32"
        model.load_state_dict(state)
        l64, g64 = grads(model, x, y, torch.float64, train)
        for mode in ("fp32", "tf32", "bf16"):
            MODE = mode
            model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
            l32, g32 = grads(model.float(), x, y, torch.float32, train)
            worst_max = worst_l2 = 0.0
            wm = wl = ""
            dsq = rsq = 0.0
            top = list(g64)[-4:]   # the last four tensors: the head and the layer under it
            worst_top = 0.0
            for n, ref in g64.items():
                d = g32[n] - ref
                dsq += float((d * d).sum())
                rsq += float((ref * ref).sum())
                em = float(d.abs().max() / (ref.abs().max() + 1e-30))
                el = float(d.norm() / (ref.norm() + 1e-30))
                if n in top:
                    worst_top = max(worst_top, el)
                if em > worst_max:
                    worst_max, wm = em, n
                if el > worst_l2:
                    worst_l2, wl = el, n
            print("%-22s %-5s %10.2e %14.2e %14.2e %14.2e %14.2e   (%s / %s)" % (
                name, mode, abs(l32 - l64) / abs(l64), worst_max, worst_l2, math.sqrt(dsq / rsq), worst_top, wm, wl),
                flush=True)
            model.double()


if __name__ == "__main__":
    main()
