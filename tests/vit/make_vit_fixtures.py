#!/usr/bin/python3
"""PyTorch/torchvision oracle fixtures for the ViT ops and model.

Writes into $DP_FIXTURE_DIR (or argv[1]):
  vit_ops.h5    per op: inputs, params, upstream grad dy, output y and the
                input/param gradients, all in dptrain layouts (NHWC images,
                (N, T, D) tokens, torch layouts for params).
  vit_model.h5  torchvision VisionTransformer (ViT-Ti/16 widths, 32x32, patch 8,
                batch 2, 10 classes, dropout 0, train mode): params/<name>,
                input x (N, H, W, C), labels, logits, loss, grads/<name>, and the
                loss before each of 5 SGD / AdamW steps and after the last one.
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)
out_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DP_FIXTURE_DIR", ".")
os.makedirs(out_dir, exist_ok=True)


def put(f, name, t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    f.create_dataset(name, data=np.ascontiguousarray(t))


def attention_core(qkv, heads):
    """Self-attention core on packed [q | k | v] (N, T, 3D), as in torch's
    multi_head_attention_forward (q scaled by 1/sqrt(dh) before q k^T)."""
    n, t, d3 = qkv.shape
    d = d3 // 3
    dh = d // heads
    q, k, v = qkv.chunk(3, dim=-1)
    q, k, v = (z.reshape(n, t, heads, dh).transpose(1, 2) for z in (q, k, v))
    p = torch.softmax((q / dh ** 0.5) @ k.transpose(-2, -1), dim=-1)
    return (p @ v).transpose(1, 2).reshape(n, t, d)


def check_core_against_mha():
    """The core plus in/out projections must equal nn.MultiheadAttention: pins
    the [q | k | v] packing and the head split to torch's."""
    d, heads = 24, 3
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    x = torch.randn(2, 9, d)
    ref = mha(x, x, x, need_weights=False)[0]
    qkv = F.linear(x, mha.in_proj_weight, mha.in_proj_bias)
    mine = F.linear(attention_core(qkv, heads), mha.out_proj.weight, mha.out_proj.bias)
    err = (ref - mine).abs().max().item()
    assert err < 1e-5, f"attention core disagrees with nn.MultiheadAttention: {err}"


def op_case(f, name, fn, inputs, extras=None):
    """inputs: dict name -> tensor (requires grad); fn(**inputs) -> y."""
    g = f.create_group(name)
    ins = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**ins)
    dy = torch.randn_like(y)
    y.backward(dy)
    for k, v in ins.items():
        put(g, k, v)
        put(g, "d" + k, v.grad)
    put(g, "y", y)
    put(g, "dy", dy)
    for k, v in (extras or {}).items():
        g.attrs[k] = v


def make_ops():
    check_core_against_mha()
    with h5py.File(os.path.join(out_dir, "vit_ops.h5"), "w") as f:
        d = 24
        op_case(f, "layernorm",
                lambda x, weight, bias: F.layer_norm(x, (d,), weight, bias, 1e-6),
                {"x": torch.randn(2, 5, d) * 2 + 1, "weight": torch.randn(d) + 1, "bias": torch.randn(d)})
        op_case(f, "gelu", lambda x: F.gelu(x), {"x": torch.randn(4, 50) * 3})
        op_case(f, "softmax", lambda x: torch.softmax(x, -1), {"x": torch.randn(2, 3, 9) * 3})
        op_case(f, "attention", lambda x: attention_core(x, 3), {"x": torch.randn(2, 17, 3 * d)},
                {"heads": 3})
        # Patch embed: x in NHWC; torch conv on NCHW, tokens in row-major patch order.
        p, c, dim = 4, 3, 10
        op_case(f, "patch_embed",
                lambda x, weight, bias: F.conv2d(x.permute(0, 3, 1, 2), weight, bias, stride=p)
                .flatten(2).transpose(1, 2),
                {"x": torch.randn(2, 8, 12, c), "weight": torch.randn(dim, c, p, p) * 0.2,
                 "bias": torch.randn(dim)}, {"patch": p, "dim": dim})
        op_case(f, "class_token",
                lambda x, weight: torch.cat([weight.expand(x.shape[0], -1, -1), x], dim=1),
                {"x": torch.randn(3, 4, 5), "weight": torch.randn(1, 1, 5)})
        op_case(f, "pos_embed", lambda x, weight: x + weight,
                {"x": torch.randn(3, 4, 5), "weight": torch.randn(1, 4, 5)})
        op_case(f, "take_token0", lambda x: x[:, 0], {"x": torch.randn(3, 4, 5)})


def vit_model():
    m = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=12, num_heads=3,
                                             hidden_dim=192, mlp_dim=768, num_classes=10,
                                             dropout=0.0, attention_dropout=0.0)
    # torchvision zero-initialises the head, biases and class token, and sets LN
    # to ones/zeros: that would hide gradient bugs (zero head -> zero backbone
    # grads). Perturb every parameter so each one matters.
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "heads.head.weight":
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif p.ndim == 1 or name == "class_token":
                p.add_(torch.randn(p.shape, generator=g) * (0.1 if "ln" in name else 0.02))
    m.train()
    return m


def decay_groups(m, wd):
    # dptrain's no_decay_norm_bias: decay only conv/linear weights (2-D or 4-D,
    # not the class token / position embedding).
    dec, nodec = [], []
    for name, p in m.named_parameters():
        (dec if p.ndim in (2, 4) else nodec).append(p)
    return [{"params": dec, "weight_decay": wd}, {"params": nodec, "weight_decay": 0.0}]


def train_losses(m0, x, y, opt_name, steps=5):
    m = vit_model()
    m.load_state_dict(m0.state_dict())
    if opt_name == "sgd":
        opt = torch.optim.SGD(decay_groups(m, 1e-4), lr=3e-4, momentum=0.9)
    else:
        opt = torch.optim.AdamW(decay_groups(m, 0.05), lr=1e-5, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(F.cross_entropy(m(x), y).item())
    return np.array(losses, dtype=np.float64)


def make_model():
    m = vit_model()
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([3, 7], dtype=torch.int64)
    logits = m(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    with h5py.File(os.path.join(out_dir, "vit_model.h5"), "w") as f:
        for name, p in m.named_parameters():
            put(f, "params/" + name, p)
            put(f, "grads/" + name, p.grad)
        put(f, "x", x.permute(0, 2, 3, 1))   # NHWC
        put(f, "labels", y.to(torch.int32))
        put(f, "logits", logits)
        put(f, "loss", np.array([loss.item()]))
        put(f, "sgd_losses", train_losses(m, x, y, "sgd"))
        put(f, "adamw_losses", train_losses(m, x, y, "adamw"))
        put(f, "nparams", np.array([sum(p.numel() for p in m.parameters())], dtype=np.float64))
        put(f, "ntensors", np.array([len(list(m.parameters()))], dtype=np.float64))


if __name__ == "__main__":
    torch.set_num_threads(2)
    make_ops()
    make_model()
    print("vit fixtures written to", out_dir)
