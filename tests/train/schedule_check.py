"""The LR schedule of a real `dptrain train` run (mpi_tests.py schedule): the
lr column of steps.csv against torch's schedulers for the same settings
(SGD, LinearLR(start_factor 0.1) for the warmup, then CosineAnnealingLR or
constant, joined by SequentialLR). test_optim_sched and the optim oracle
check optim_lr_at itself; this checks the wiring from --warmup-steps,
--warmup-epochs (x steps per epoch), --schedule, --min-lr and the run length
to it. steps.csv prints the lr with 6 significant digits: tolerance 1e-5
relative. Without warmup the first lr would be 10x the expected one.
"""
from mpi_util import fail, run

STEPS_PER_EPOCH = 16   # 64 samples, batch 4, 1 rank


def torch_lrs(lr, steps, warmup, cosine, min_lr):
    import warnings
    import torch
    warnings.filterwarnings("ignore")
    p = [torch.nn.Parameter(torch.zeros(1))]
    o = torch.optim.SGD(p, lr=lr)
    after = (torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=steps - warmup, eta_min=min_lr) if cosine
             else torch.optim.lr_scheduler.ConstantLR(o, factor=1.0, total_iters=0))
    if warmup > 0:
        s = torch.optim.lr_scheduler.SequentialLR(
            o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=warmup), after], milestones=[warmup])
    else:
        s = after
    out = []
    for _ in range(steps):
        out.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    return out


def schedule(dptrain, shards, work):
    cases = [  # (name, flags, steps, warmup steps, cosine, min_lr)
        ("warmup-steps 3 + cosine", ["--warmup-steps", "3", "--schedule", "cosine", "--min-lr", "0.01"], 10, 3,
         True, 0.01),
        ("warmup-epochs 0.5, constant", ["--warmup-epochs", "0.5", "--schedule", "constant"], 12,
         STEPS_PER_EPOCH // 2, False, 0.0),
    ]
    for k, (name, flags, steps, warmup, cosine, min_lr) in enumerate(cases):
        out = f"{work}/sched{k}"
        rc, text, _ = run(1, [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16",
                              "--batch", "4", "--steps", str(steps), "--lr", "0.1", "--train", f"{shards}/train-*.h5",
                              "--seed", "3", "--threads", "1", "--loader-threads", "1", "--out", out] + flags)
        if rc:
            fail(f"{name}: dptrain exited {rc}", text)
        with open(f"{out}/steps.csv") as f:
            rows = f.read().strip().splitlines()
        col = rows[0].split(",").index("lr")
        ours = [float(r.split(",")[col]) for r in rows[1:]]
        ref = torch_lrs(0.1, steps, warmup, cosine, min_lr)
        worst = max(abs(a - b) / b for a, b in zip(ours, ref)) if len(ours) == len(ref) else float("inf")
        print(f"schedule {name}: lr {['%.4g' % x for x in ours]}")
        print(f"  torch {['%.4g' % x for x in ref]}: worst relative difference {worst:.1e} (tol 1e-5)")
        if not worst <= 1e-5:
            fail(f"{name}: the run's learning rates differ from torch's schedule")
    print("ok")
