#!/usr/bin/python3
"""Oracle fixtures for the model tests (tests/models/test_model_oracle.c).

For each case it writes $DP_FIXTURE_DIR/models_<case>.h5 with
  /params/<name>        every state_dict entry (parameters and BN running
                        stats; num_batches_tracked is not part of the C model)
  /input (N, C, H, W)   float32, NCHW as torch (the C test transposes to NHWC)
  /labels (N)           int32
  /logits (N, K), /loss  training-mode forward and CrossEntropyLoss (mean)
  /logits_eval (N, K)   eval-mode forward with the initial running stats
  /grads/<name>         d loss / d param for every parameter
  /running_after/<name> running stats after that one training forward
  /meta (4)             int32 image_size, channels, batch, classes
  /sgd_cfg (lr, momentum, wd), /adamw_cfg (lr, beta1, beta2, eps, wd)
  /sgd_losses (S+1), /adamw_losses (S+1)
                        loss before each of S optimizer steps on the same
                        batch (5; 1 for ResNet-50), and after the last one
  /update_cfg (lr, momentum, wd), /update/<name>
                        the parameter update W1 - W0 of one torch.optim.SGD
                        step with update_cfg (float64 from the float32 W0):
                        the test compares our update tensor by tensor. Its lr
                        is large so that the update is far above one ulp of
                        the fp32 weights: at lr 0.5 one ulp of a tensor's
                        largest weight is at most 1.2e-5 of its largest
                        update in these cases (BN scales near 1.0); at the
                        lr 0.002 of the loss checks it would be 3e-3.
and models_<arch>_names.txt (torchvision, 1000 classes, 224 input): one line
"param|buffer <name> <d0,d1,...>" per tensor, for the name/count test.

The reference is computed in float64 from float32 weights and inputs, so the
fixture holds (nearly) exact values and the C test measures only its own fp32
error. BN affine parameters and running stats are randomised so a swapped
weight/bias or mean/var cannot pass.
"""
import copy
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cnn import BaselineCNN  # noqa: E402

SGD = dict(lr=0.002, momentum=0.9, weight_decay=1e-4)
UPDATE = dict(lr=0.5, momentum=0.9, weight_decay=1e-2)
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
STEPS = 5


def small_stem(model, in_ch):
    # 3x3 stride-1 stem, no max-pool (28-64 px inputs); same init as the rest.
    model.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def set_in_channels(model, in_ch):
    if in_ch != 3:
        c = model.conv1
        model.conv1 = nn.Conv2d(in_ch, c.out_channels, c.kernel_size, c.stride, c.padding, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


KINK = 1e-3        # minimum distance of a ReLU input from 0, in units of the tensor's std
KINK_POOL = 1e-5   # minimum gap of a max-pool window's top two (rarer; redraws the input)


def clear_kinks(model, x):
    """Moves every ReLU pre-activation at least KINK * std away from zero by
    shifting the bias of the BN that feeds it (a shift of ~1e-3 std), and
    counts max-pool windows whose top two values are closer than KINK_POOL * std.

    Why: at a ReLU input within ~1e-6 std of 0, or a max-pool near-tie, fp32
    rounding can take the other branch than the float64 reference; that one
    element then routes its gradient differently, which shows up as a 1e-3..1e-1
    error in every gradient upstream. ResNet-50 at batch 2 is ill-conditioned
    enough (layer4 activations carry ~1e-4 std of fp32 error) that 1e-4 was
    not enough margin; 1e-3 is. Such a mismatch is no bug, so the fixture
    avoids it instead of loosening the tolerance for everything."""
    m = copy.deepcopy(model).double()
    m.train()
    last_bn = [None]
    ties = [0]
    fixed = [0]

    def bn_hook(mod, inp, out):
        last_bn[0] = mod

    def relu_pre(mod, inp):
        t = inp[0]
        thr = KINK * t.std().item()
        bad = (t.abs() < thr).transpose(0, 1).flatten(1).any(1).nonzero().flatten().tolist()
        for c in bad:
            v = t[:, c]
            for k in range(1, 50):
                d = (2 * ((k + 1) // 2)) * thr * (1 if k % 2 else -1)
                if (v + d).abs().min().item() >= thr:
                    break
            v += d
            last_bn[0].bias.data[c] += d
            fixed[0] += 1
        return (t,)

    def pool_pre(mod, inp):
        t = inp[0].relu()
        k, st, p = mod.kernel_size, mod.stride, mod.padding
        tp = torch.nn.functional.pad(t, (p, p, p, p), value=-1.0)
        n, c, h, w = tp.shape
        u = torch.nn.functional.unfold(tp.reshape(n * c, 1, h, w), k, stride=st)
        top = u.topk(2, dim=1).values
        gap = (top[:, 0] - top[:, 1])[top[:, 0] > 0]
        ties[0] += int((gap < KINK_POOL * t.std()).sum().item())

    hs = []
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            hs.append(mod.register_forward_hook(bn_hook))
        elif isinstance(mod, nn.ReLU):
            hs.append(mod.register_forward_pre_hook(relu_pre))
        elif isinstance(mod, nn.MaxPool2d):
            hs.append(mod.register_forward_pre_hook(pool_pre))
    with torch.no_grad():
        m(x.double())
    for h in hs:
        h.remove()
    with torch.no_grad():
        for (name, mod), (_, mod64) in zip(model.named_modules(), m.named_modules()):
            if isinstance(mod, nn.BatchNorm2d):
                mod.bias.copy_(mod64.bias.float())
    return fixed[0], ties[0]


def losses_after_steps(model0, x, y, make_opt, steps):
    m = copy.deepcopy(model0)
    m.train()
    opt = make_opt(m.parameters())
    crit = nn.CrossEntropyLoss()
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = crit(m(x), y)
        out.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        out.append(crit(m(x), y).item())
    return np.array(out, dtype=np.float64)


def sgd_update(model0, x, y):
    """W1 - W0 for one SGD step from model0 (float64) on (x, y)."""
    m = copy.deepcopy(model0)
    m.train()
    opt = torch.optim.SGD(m.parameters(), **UPDATE)
    opt.zero_grad()
    nn.CrossEntropyLoss()(m(x), y).backward()
    before = {k: p.detach().clone() for k, p in m.named_parameters()}
    opt.step()
    return {k: (p.detach() - before[k]).numpy() for k, p in m.named_parameters()}


def write_case(path, model, in_ch, size, batch, classes, seed, steps=STEPS):
    t0 = time.time()
    gen = torch.Generator().manual_seed(seed)
    randomise_bn(model, gen)
    x32 = torch.randn(batch, in_ch, size, size, generator=gen)
    moved = 0
    for _ in range(50):
        fixed, ties = clear_kinks(model, x32)
        moved += fixed
        if ties:   # max-pool near-ties: redraw the input
            x32 = torch.randn(batch, in_ch, size, size, generator=gen)
        elif fixed == 0:
            break
    else:
        raise SystemExit("could not find a fixture input away from ReLU/max-pool kinks")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    y = torch.randint(0, classes, (batch,), generator=gen)

    m64 = copy.deepcopy(model).double()
    x = x32.double()
    crit = nn.CrossEntropyLoss()
    m64.eval()
    with torch.no_grad():
        logits_eval = m64(x)
    m64.train()
    logits = m64(x)
    loss = crit(logits, y)
    loss.backward()

    init64 = copy.deepcopy(model).double()
    sgd = losses_after_steps(init64, x, y, lambda p: torch.optim.SGD(p, **SGD), steps)
    adamw = losses_after_steps(init64, x, y, lambda p: torch.optim.AdamW(p, **ADAMW), steps)
    update = sgd_update(init64, x, y)

    with h5py.File(path, "w") as f:
        for k, v in state.items():
            f.create_dataset("params/" + k, data=v.numpy().astype(np.float32))
        f["input"] = x32.numpy()
        f["labels"] = y.numpy().astype(np.int32)
        f["logits"] = logits.detach().numpy().astype(np.float32)
        f["logits_eval"] = logits_eval.numpy().astype(np.float32)
        f["loss"] = np.array([loss.item()], dtype=np.float64)
        for k, p in m64.named_parameters():
            f.create_dataset("grads/" + k, data=p.grad.numpy().astype(np.float32))
        for k, v in m64.state_dict().items():
            if "running" in k:
                f.create_dataset("running_after/" + k, data=v.numpy().astype(np.float32))
        f["sgd_losses"] = sgd
        for k, v in update.items():
            f.create_dataset("update/" + k, data=v.astype(np.float32))
        f["update_cfg"] = np.array([UPDATE["lr"], UPDATE["momentum"], UPDATE["weight_decay"]])
        f["adamw_losses"] = adamw
        f["sgd_cfg"] = np.array([SGD["lr"], SGD["momentum"], SGD["weight_decay"]])
        f["adamw_cfg"] = np.array([ADAMW["lr"], *ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"]])
        f["meta"] = np.array([size, in_ch, batch, classes], dtype=np.int32)
    print(f"wrote {path} (ReLU kinks moved: {moved}): loss {loss.item():.6f} sgd {sgd[-1]:.6f} adamw {adamw[-1]:.6f} "
          f"({time.time() - t0:.1f} s)")


def write_names(path, model):
    n = 0
    with open(path, "w") as f:
        for k, p in model.named_parameters():
            f.write("param %s %s\n" % (k, ",".join(str(d) for d in p.shape)))
            n += p.numel()
        for k, b in model.named_buffers():
            if not k.endswith("num_batches_tracked"):
                f.write("buffer %s %s\n" % (k, ",".join(str(d) for d in b.shape)))
    print(f"wrote {path}: {n} parameters")


def main():
    out = os.environ.get("DP_FIXTURE_DIR", "fixtures")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    torch.manual_seed(1234)

    write_names(os.path.join(out, "models_resnet50_names.txt"), torchvision.models.resnet50())
    write_names(os.path.join(out, "models_resnet18_names.txt"), torchvision.models.resnet18())

    torch.manual_seed(1)
    write_case(os.path.join(out, "models_cnn.h5"), BaselineCNN(3, 10, 32), 3, 32, 4, 10, 11)
    torch.manual_seed(2)
    r18 = small_stem(torchvision.models.resnet18(num_classes=10), 1)
    # 28 px grayscale (Fashion-MNIST size; 7 -> 4 in layer4 checks odd sizes).
    write_case(os.path.join(out, "models_resnet18_small.h5"), r18, 1, 28, 4, 10, 12)
    torch.manual_seed(3)
    r50 = set_in_channels(torchvision.models.resnet50(num_classes=10), 3)
    # Only the first update is checked for ResNet-50 at batch 2 (its trajectory
    # is chaotic; see test_model_oracle.c), so only one step is computed.
    write_case(os.path.join(out, "models_resnet50.h5"), r50, 3, 64, 2, 10, 13, steps=1)


if __name__ == "__main__":
    main()
