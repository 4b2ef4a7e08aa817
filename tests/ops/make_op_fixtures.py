#!/usr/bin/python3
"""PyTorch oracle fixtures for the per-op tests (tests/ops/test_ops_oracle.c).

Writes $DP_FIXTURE_DIR/ops.h5: one group per case with the inputs, weights,
a fixed upstream gradient `dy`, the output `y` and the gradients, all in
torch's layout (NCHW images, (O, I, kh, kw) conv weights). Computed in
float64 so the oracle's own rounding is negligible; stored as float32.
The C test transposes images to NHWC. Case parameters here and in
test_ops_oracle.c must agree (the C side checks every dataset's size).
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
D = torch.float64


def rnd(*shape, scale=1.0):
    # Round through float32 so the C side sees exactly the same values.
    return (torch.rand(*shape, dtype=torch.float32) * 2 - 1).mul(scale).to(D)


def put(grp, name, t):
    grp.create_dataset(name, data=t.detach().to(torch.float32).numpy())


def run_case(f, name, fn, inputs, params=()):
    """fn(*inputs, *params) -> y; stores inputs, params, y, dy and grads."""
    g = f.create_group(name)
    leaves = [t.clone().requires_grad_(True) for t in list(inputs) + list(params)]
    y = fn(*leaves)
    dy = rnd(*y.shape)
    y.backward(dy)
    put(g, "y", y)
    put(g, "dy", dy)
    for i, t in enumerate(leaves):
        put(g, "in%d" % i, t)
        put(g, "grad%d" % i, t.grad)
    return g


def main():
    out_dir = os.environ.get("DP_FIXTURE_DIR", ".")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "ops.h5")
    with h5py.File(path + ".tmp", "w") as f:
        # conv2d: (name, N, C, H, W, O, k, stride, pad, bias)
        convs = [("conv_a", 2, 3, 9, 9, 8, 3, 1, 1, True),
                 ("conv_b", 2, 16, 9, 8, 32, 3, 2, 1, False),
                 ("conv_c", 2, 32, 7, 7, 64, 1, 2, 0, False),
                 ("conv_d", 2, 64, 5, 6, 32, 1, 1, 0, True),
                 ("conv_stem", 2, 3, 16, 15, 16, 7, 2, 3, False)]
        for name, n, c, h, w, o, k, s, p, bias in convs:
            x = rnd(n, c, h, w)
            wt = rnd(o, c, k, k, scale=(1.0 / (c * k * k)) ** 0.5)
            params = [wt] + ([rnd(o)] if bias else [])
            run_case(f, name, lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, s, p),
                     [x], params)
        # batchnorm: (name, N, C, H, W, training, relu)
        bns = [("bn_train", 4, 16, 5, 5, True, False),
               ("bn_relu_train", 3, 24, 6, 5, True, True),
               ("bn_eval", 2, 16, 4, 3, False, False),
               ("bn_relu_eval", 2, 8, 5, 5, False, True)]
        for name, n, c, h, w, training, relu in bns:
            x = rnd(n, c, h, w, scale=2.0) + 0.3
            rm, rv = rnd(c) * 0.5, rnd(c) * 0.5 + 1.2
            rm_t, rv_t = rm.clone(), rv.clone()

            def bn(x, wt, b):
                y = F.batch_norm(x, rm_t, rv_t, wt, b, training, 0.1, 1e-5)
                return F.relu(y) if relu else y
            g = run_case(f, name, bn, [x], [rnd(c) + 1.0, rnd(c) * 0.5])
            put(g, "running_mean_in", rm)
            put(g, "running_var_in", rv)
            put(g, "running_mean", rm_t)
            put(g, "running_var", rv_t)
        run_case(f, "relu", F.relu, [rnd(2, 5, 4, 3)])
        run_case(f, "maxpool_a", lambda x: F.max_pool2d(x, 3, 2, 1), [rnd(2, 6, 9, 8)])
        run_case(f, "maxpool_b", lambda x: F.max_pool2d(x, 2, 2, 0), [rnd(2, 4, 7, 6)])
        run_case(f, "gap", lambda x: x.mean(dim=(2, 3)), [rnd(2, 8, 3, 5)])
        run_case(f, "flatten", lambda x: torch.flatten(x, 1), [rnd(2, 4, 3, 2)])
        run_case(f, "linear", lambda x, w, b: F.linear(x, w, b), [rnd(3, 4, 10)], [rnd(6, 10), rnd(6)])
        run_case(f, "linear_nobias", lambda x, w: F.linear(x, w), [rnd(5, 12)], [rnd(7, 12)])
        run_case(f, "add", lambda a, b: a + b, [rnd(2, 3, 4, 5), rnd(2, 3, 4, 5)])
        run_case(f, "add_relu", lambda a, b: F.relu(a + b), [rnd(2, 3, 4, 5), rnd(2, 3, 4, 5)])
        # softmax cross-entropy: (name, N, C, num_valid, smoothing, weighted, soft)
        xents = [("xent_hard", 6, 5, 6, 0.0, False, False),
                 ("xent_ls_w", 7, 4, 5, 0.1, True, False),
                 ("xent_soft", 5, 6, 5, 0.2, False, True),
                 ("xent_soft_ls_w", 8, 5, 6, 0.1, True, True)]
        for name, n, c, nv, ls, weighted, soft in xents:
            z = rnd(n, c, scale=3.0)
            labels = torch.tensor([(i * 7 + 3) % c for i in range(n)], dtype=torch.int64)
            wts = rnd(c) * 0.5 + 1.0
            probs = torch.softmax(rnd(n, c, scale=2.0), dim=1).to(torch.float32).to(D)
            zz = z.clone().requires_grad_(True)
            tgt = probs[:nv] if soft else labels[:nv]
            loss = F.cross_entropy(zz[:nv], tgt, weight=wts if weighted else None,
                                   label_smoothing=ls, reduction="mean")
            dl = torch.tensor(0.75, dtype=D)
            loss.backward(dl)
            g = f.create_group(name)
            put(g, "in0", z)
            put(g, "grad0", zz.grad)
            put(g, "y", loss.reshape(1))
            put(g, "dy", dl.reshape(1))
            put(g, "weights", wts)
            put(g, "soft", probs)
            g.create_dataset("labels", data=labels.to(torch.int32).numpy())
    os.replace(path + ".tmp", path)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
