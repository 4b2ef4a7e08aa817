"""Equivalence of data-parallel training with one big batch (mpi_tests.py
equivalence | equivalence_bn | noise).

What is compared is the update of every parameter tensor, dW = W_5 - W_0 after
5 SGD steps (lr 0.01, momentum 0.9), as max|dW_a - dW_b| / max|dW_b| per tensor
(the worst tensor is reported), never the absolute weights: 5 steps move ||W||
by well under 1 %, so with absolute weights a run with no all-reduce at all
passed at tolerance 0.1.

* vit: ViT (no batch norm). 2 ranks x batch 4 and 2 ranks x batch 2 x accum 2
  must update like 1 rank x batch 8: rank r reads positions r, r + 2, ... of the
  same permutation, so each step covers the same 8 samples.
* bn: the baseline CNN with batch norm. Each rank normalises over its own 4
  samples, so 1 rank x 8 is a different computation. The same computation is
  1 rank x batch 4 x accum 2 whose micro-batch m of step s holds rank m's batch
  of step s: the shards are rewritten so that the single rank's sampler reads
  exactly that (checked through --dump-ids). Also the saved BN running
  statistics after one step must be the mean over ranks of each rank's own
  statistics (two 1-rank runs, each on one rank's first batch).

Tolerances come from the fp32 noise of the same comparison, measured by
`noise` (ctest test_train_noise, label long): it reruns each reference with the
samples of every batch (micro-batch) in another order -- the same sums taken in
another order, the maths unchanged -- in 5 other orders (EQ_NOISE_ORDERS; the
table used 8), and with 2 compute threads
instead of 1. Measured on the 2-core AMD EPYC (AVX2) development machine,
2026-12-01 (max over the reruns; worst tensor / all parameters L2):

  comparison                          noise              error seen         tolerance
  vit 2x4 vs 1x8                      7.1e-4 / 1.0e-6    6.1e-4 / 9.7e-7    5e-3 / 1e-5
  vit 2x2 accum 2 vs 1x8              7.1e-4 / 1.0e-6    7.1e-4 / 1.3e-6    5e-3 / 1e-5
  cnn_bn 2x4 vs 1x4 accum 2           3.9e-5 / 4.1e-6    0 / 0 (bitwise)    5e-4 / 5e-5
  BN running stats vs mean of ranks   2.1e-6             3.3e-6             2e-5

(2 threads changed nothing in the ViT: its kernels do not split reductions
by thread here.) The worst-tensor noise is large for fp32 because LayerNorm
and BN scales start at 1.0, where one ulp is 6e-8 (below 1) or 1.2e-7, and
their 5-step updates can be as small as 8e-5: one ulp of the weight is then
7e-4 .. 1.4e-3 of the update. The L2 figure is
dominated by the big tensors and sits near fp32 rounding. Tolerances are
7-12x the noise; `noise` fails when one is under 2x the noise it measures or
under the error seen. What real bugs give (tests/mutation/RESULTS.md): no
all-reduce: worst tensor 0.99 / 1.9, L2 0.26 / 0.99 (vit / cnn_bn); a sum
instead of the mean: 3.2 / 2.6, L2 0.77 / 1.3; no BN running-stat averaging:
4.5 on the running stats. The previous check (relative L2 of the absolute
weights, tolerance 0.1) passed the cnn_bn run with no all-reduce at 3.7e-2.
"""
import glob
import os
import random

import numpy as np

from mpi_util import fail, load_safetensors, run

# (worst tensor, all parameters L2); running stats: worst tensor.
TOL = {"vit": (5e-3, 1e-5), "vit_accum": (5e-3, 1e-5), "bn": (5e-4, 5e-5), "bn_stats": 2e-5}
NOISE_MARGIN = 2.0   # `noise` fails when a tolerance is under 2x the noise it measures
EQ_STEPS = 5
VIT = ["--model", "vit_ti16", "--image-size", "16", "--patch", "8"]
CNN = ["--model", "cnn", "--cnn-width", "8", "--image-size", "16"]


# ---- shards, dumps, runs ------------------------------------------------------
def read_dump(prefix, rank):
    """[(epoch, global sample index, id)] in consumption order (--dump-ids)."""
    with open(f"{prefix}.rank{rank}") as f:
        return [tuple(map(int, line.split())) for line in f]


def read_records(pattern):
    """All records of the shards in the loader's global order (sorted paths,
    then record order), and the root attributes of the first shard."""
    import h5py
    recs, attrs = [], None
    for p in sorted(glob.glob(pattern)):
        with h5py.File(p, "r") as f:
            if attrs is None:
                attrs = dict(f.attrs)
            blob, offs = f["images/bytes"][...], f["images/offsets"][...]
            labels, ids = f["labels"][...], f["ids"][...]
            for i in range(len(labels)):
                recs.append((blob[offs[i]:offs[i + 1]].copy(), int(labels[i]), int(ids[i])))
    if not recs:
        fail(f"no records in {pattern}")
    return recs, attrs


def write_shard(directory, recs, attrs):
    """One schema-v1 shard (data/SCHEMA.md) with recs in this order; returns its glob."""
    import h5py
    os.makedirs(directory, exist_ok=True)
    offs = np.zeros(len(recs) + 1, np.int64)
    offs[1:] = np.cumsum([len(r[0]) for r in recs])
    with h5py.File(f"{directory}/train-00000.h5", "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        f.create_dataset("images/bytes", data=np.concatenate([r[0] for r in recs]).astype(np.uint8))
        f.create_dataset("images/offsets", data=offs)
        f.create_dataset("labels", data=np.array([r[1] for r in recs], np.int32))
        f.create_dataset("ids", data=np.array([r[2] for r in recs], np.int64))
    return f"{directory}/train-*.h5"


def train(dptrain, np_, model, extra, out, shards, threads=1, steps=EQ_STEPS, lr="0.01"):
    """dptrain train without augmentation or decay; returns (weights, losses)."""
    args = [dptrain, "train"] + model + [
        "--steps", str(steps), "--augment", "0", "--lr", lr, "--schedule", "constant", "--weight-decay", "0",
        "--momentum", "0.9", "--train", shards, "--seed", "3", "--threads", str(threads),
        "--loader-threads", "1", "--out", out] + extra
    rc, text, _ = run(np_, args)
    if rc:
        fail(f"{np_}-rank run {' '.join(extra)} (out {out}) exited {rc}", text)
    with open(f"{out}/steps.csv") as f:
        rows = f.read().strip().splitlines()
    col = rows[0].split(",").index("loss")
    losses = [float(r.split(",")[col]) for r in rows[1:]]
    if len(losses) != steps:
        fail(f"{out}: expected {steps} steps, got {len(losses)}")
    return load_safetensors(f"{out}/model.safetensors"), losses


def initial_weights(dptrain, model, work, name, shards):
    """W0, from one step at lr 1e-30 (--lr must be > 0): below half an ulp of
    every nonzero weight, so those stay bitwise equal; the zero-initialised
    ones (biases) move by ~1e-30, 1e-25 of the smallest update compared."""
    w0, _ = train(dptrain, 1, model, ["--batch", "4"], f"{work}/{name}_w0", shards, steps=1, lr="1e-30")
    return {k: v.astype(np.float64) for k, v in w0.items()}


# ---- sample order -------------------------------------------------------------
def perm_from_dumps(dumps, n):
    """The epoch permutation: rank r of W reads position r + W k at its k-th
    sample (the sampler's rule), so the dumps give perm[position] = index."""
    W = len(dumps)
    perm = [None] * n
    for r, d in enumerate(dumps):
        for k, (_, idx, _) in enumerate(d):
            perm[r + W * k] = idx
    return perm


def arrange(perm, wanted, n):
    """order[i] = index of the source record to store at index i, so that a
    single rank (which reads index perm[q] at position q) reads wanted[q] at
    position q < len(wanted). wanted must permute perm[:len(wanted)]."""
    order = list(range(n))
    for q, src in enumerate(wanted):
        if perm[q] is None:
            fail("the dumps do not cover the positions to rearrange")
        order[perm[q]] = src
    if sorted(order) != list(range(n)):
        fail("rearranged order is not a permutation (the dumps repeat samples: see test_train_coverage)")
    return order


def shuffled_blocks(seq, block, seed):
    """seq with the elements of every block of `block` consecutive entries in
    another (seeded) order: each batch's sums taken in another order."""
    rng = random.Random(seed)
    out = []
    for a in range(0, len(seq), block):
        blk = list(seq[a:a + block])
        while len(blk) > 1:
            rng.shuffle(blk)
            if blk != list(seq[a:a + block]):
                break
        out += blk
    return out


# ---- comparisons --------------------------------------------------------------
def param_keys(w):
    # BN running statistics are buffers, not updates: see bn().
    return sorted(k for k in w if "running" not in k)


def update_error(a, b, w0):
    """(worst, name, l2): the worst over parameter tensors of
    max|dA - dB| / max|dB| with dX = X - W0, that tensor, and the global
    ||dA - dB|| / ||dB|| over all parameters (float64)."""
    worst, worst_name, num, den = -1.0, "", 0.0, 0.0
    for k in param_keys(b):
        if k not in a:
            fail(f"tensor {k} missing from the compared weights")
        da = a[k].astype(np.float64) - w0[k]
        db = b[k].astype(np.float64) - w0[k]
        scale = float(np.max(np.abs(db)))
        if scale == 0:
            fail(f"tensor {k} did not move in the reference run: nothing to compare")
        err = float(np.max(np.abs(da - db))) / scale
        if not err <= worst:   # NaN counts as worst
            worst, worst_name = err, k
        num += float(np.sum((da - db) ** 2))
        den += float(np.sum(db ** 2))
    return worst, worst_name, float(np.sqrt(num / den))


def stats_error(a, b):
    """Worst over BN running-stat tensors of max|a - b| / max|b|."""
    keys = sorted(k for k in b if "running" in k)
    if not keys:
        fail("no BN running statistics in the saved weights")
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) / float(np.max(np.abs(b[k]))) for k in keys)


def report(label, e, tol):
    print(f"{label}: update error after {EQ_STEPS} steps: worst tensor {e[0]:.3e} ({e[1]}), tolerance {tol[0]:.1e}; "
          f"all parameters (L2) {e[2]:.3e}, tolerance {tol[1]:.1e}")


def within(e, tol):
    return e[0] <= tol[0] and e[2] <= tol[1]


def beyond(what, e, tol):
    return (f"the updates of {what} differ beyond fp32 noise: worst tensor {e[0]:.3e} ({e[1]}, tol {tol[0]:.0e}), "
            f"L2 {e[2]:.3e} (tol {tol[1]:.0e})")


def losses_moved(losses):
    if not max(losses) - min(losses) > 1e-3:
        fail(f"loss did not change ({losses}): nothing trained")


# ---- the ViT case -------------------------------------------------------------
def vit_runs(dptrain, shards, work):
    g = f"{shards}/train-*.h5"
    w0 = initial_weights(dptrain, VIT, work, "vit", g)
    dump = f"{work}/vit_ids"
    b, lb = train(dptrain, 1, VIT, ["--batch", "8", "--dump-ids", dump], f"{work}/vit_np1", g)
    a, la = train(dptrain, 2, VIT, ["--batch", "4"], f"{work}/vit_np2", g)
    c, _ = train(dptrain, 2, VIT, ["--batch", "2", "--accum", "2"], f"{work}/vit_acc", g)
    losses_moved(lb)
    e_np, e_acc = update_error(a, b, w0), update_error(c, b, w0)
    report("vit 2x4 vs 1x8", e_np, TOL["vit"])
    report("vit 2x2 accum 2 vs 1x8", e_acc, TOL["vit_accum"])
    dl = max(abs(x - y) for x, y in zip(la, lb))
    print(f"vit: losses {['%.4f' % x for x in lb]}; the 2-rank run's differ by at most {dl:.2e}")
    return dict(w0=w0, ref=b, dump=dump, e_np=e_np, e_acc=e_acc, dl=dl)


def vit(dptrain, shards, work):
    r = vit_runs(dptrain, shards, work)
    if not within(r["e_np"], TOL["vit"]):
        fail(beyond("2 ranks x 4 and 1 rank x 8", r["e_np"], TOL["vit"]))
    if not within(r["e_acc"], TOL["vit_accum"]):
        fail(beyond("2 ranks x 2 x accum 2 and 1 rank x 8", r["e_acc"], TOL["vit_accum"]))
    if not r["dl"] <= 1e-4:
        fail(f"loss curves differ by {r['dl']}")
    print("ok")


# ---- the batch-norm case ------------------------------------------------------
def bn_runs(dptrain, shards, work):
    g = f"{shards}/train-*.h5"
    recs, attrs = read_records(g)
    n, B, W = len(recs), 4, 2
    w0 = initial_weights(dptrain, CNN, work, "bn", g)
    dump = f"{work}/bn_ids"
    a, la = train(dptrain, 2, CNN, ["--batch", str(B), "--dump-ids", dump], f"{work}/bn_np2", g)
    per_rank = [read_dump(dump, r) for r in range(W)]
    if any(len(p) != EQ_STEPS * B for p in per_rank):
        fail(f"dumps hold {[len(p) for p in per_rank]} samples, expected {EQ_STEPS * B} per rank")
    perm = perm_from_dumps(per_rank, n)
    # Position q = 8s + 4m + j of the single rank (step s, micro-batch m, slot
    # j) must hold rank m's slot j of step s.
    wanted = [per_rank[m][s * B + j][1] for s in range(EQ_STEPS) for m in range(W) for j in range(B)]
    order = arrange(perm, wanted, n)
    reordered = write_shard(f"{work}/bn_reordered", [recs[i] for i in order], attrs)
    rdump = f"{work}/bn_ids_acc"
    b, lb = train(dptrain, 1, CNN, ["--batch", str(B), "--accum", "2", "--dump-ids", rdump], f"{work}/bn_acc",
                  reordered)
    got = [x[2] for x in read_dump(rdump, 0)]
    want = [recs[i][2] for i in wanted]
    if got != want:
        fail(f"setup: the single rank read ids {got[:8]}..., the ranks' micro-batches were {want[:8]}...")
    losses_moved(lb)
    e_upd = update_error(a, b, w0)
    report("cnn_bn 2x4 vs 1x4 accum 2 on the same micro-batches", e_upd, TOL["bn"])
    dl = max(abs(x - y) for x, y in zip(la, lb))
    print(f"cnn_bn: losses {['%.4f' % x for x in lb]}; the 2-rank run's differ by at most {dl:.2e}")
    # BN running statistics after one step from W0: each rank's depend on W0
    # and its own batch only; the saved ones must be their mean.
    sdump = f"{work}/bn_stats_ids"
    st2, _ = train(dptrain, 2, CNN, ["--batch", str(B), "--dump-ids", sdump], f"{work}/bn_stats_np2", g, steps=1)
    singles, batches = [], []
    for r in range(W):
        batch = [x[1] for x in read_dump(sdump, r)]
        batches.append(batch)
        sh = write_shard(f"{work}/bn_stats_rank{r}", [recs[i] for i in batch], attrs)
        w, _ = train(dptrain, 1, CNN, ["--batch", str(B)], f"{work}/bn_stats_rank{r}/out", sh, steps=1)
        singles.append(w)
    mean = {k: (singles[0][k].astype(np.float64) + singles[1][k]) / 2 for k in singles[0] if "running" in k}
    e_st = stats_error(st2, mean)
    gap = stats_error(singles[0], singles[1])
    print(f"cnn_bn: BN running stats vs the mean of the per-rank runs: {e_st:.3e}, tolerance {TOL['bn_stats']:.1e} "
          f"(the two ranks' own statistics differ by {gap:.2e})")
    return dict(w0=w0, ref=b, perm=perm, wanted=wanted, recs=recs, attrs=attrs, singles=singles,
                batches=batches, e_upd=e_upd, e_st=e_st, gap=gap, dl=dl)


def bn(dptrain, shards, work):
    r = bn_runs(dptrain, shards, work)
    if not r["gap"] > 100 * TOL["bn_stats"]:
        fail(f"the ranks' own running stats differ by only {r['gap']:.2e}: a missing average would pass")
    if not within(r["e_upd"], TOL["bn"]):
        fail(beyond("2 ranks x 4 and 1 rank x 4 x accum 2", r["e_upd"], TOL["bn"]))
    if not r["dl"] <= 1e-4:
        fail(f"loss curves differ by {r['dl']}")
    if not r["e_st"] <= TOL["bn_stats"]:
        fail(f"saved BN running stats differ from the mean over ranks by {r['e_st']:.3e} > {TOL['bn_stats']}")
    print("ok")


# ---- noise (label long) -------------------------------------------------------
ORDERS = int(os.environ.get("EQ_NOISE_ORDERS", "5"))


def noise(dptrain, shards, work):
    """Measures the fp32 noise of each comparison: reruns the reference with each
    batch's samples in ORDERS other orders, and with 2 threads. Fails when a
    tolerance is below NOISE_MARGIN x that noise or below the error seen."""
    bad = []

    def verdict(label, noises, seen, tol):
        tol = tol if isinstance(tol, tuple) else (tol,)
        for i, what in enumerate(["worst tensor", "L2"][:len(tol)]):
            nz = max(x[i] for x in noises)
            ok = tol[i] >= NOISE_MARGIN * nz and tol[i] >= seen[i]
            print(f"NOISE {label}, {what}: noise {nz:.2e} (orders {' '.join('%.1e' % x[i] for x in noises[:-1])}; "
                  f"2 threads {noises[-1][i]:.1e}), error seen {seen[i]:.2e}, tolerance {tol[i]:.1e} "
                  f"= {tol[i] / nz if nz > 0 else float('inf'):.1f}x the noise{'' if ok else '  TOO TIGHT'}")
            if not ok:
                bad.append(f"{label} ({what})")

    def upd(e):
        return (e[0], e[2])

    v = vit_runs(dptrain, shards, work)
    recs, attrs = read_records(f"{shards}/train-*.h5")
    n = len(recs)
    seen = [x[1] for x in read_dump(v["dump"], 0)]
    perm = seen + [None] * (n - len(seen))
    noises = []
    for k in range(ORDERS):
        sh = write_shard(f"{work}/vit_order{k}", [recs[i] for i in arrange(perm, shuffled_blocks(seen, 8, k), n)],
                         attrs)
        w, _ = train(dptrain, 1, VIT, ["--batch", "8"], f"{work}/vit_order{k}/out", sh)
        noises.append(upd(update_error(w, v["ref"], v["w0"])))
    w, _ = train(dptrain, 1, VIT, ["--batch", "8"], f"{work}/vit_threads2", f"{shards}/train-*.h5", threads=2)
    noises.append(upd(update_error(w, v["ref"], v["w0"])))
    verdict("vit 2x4 vs 1x8", noises, upd(v["e_np"]), TOL["vit"])
    verdict("vit 2x2 accum 2 vs 1x8", noises, upd(v["e_acc"]), TOL["vit_accum"])

    r = bn_runs(dptrain, shards, work)
    noises = []
    for k in range(ORDERS):
        order = arrange(r["perm"], shuffled_blocks(r["wanted"], 4, k), n)
        sh = write_shard(f"{work}/bn_order{k}", [r["recs"][i] for i in order], r["attrs"])
        w, _ = train(dptrain, 1, CNN, ["--batch", "4", "--accum", "2"], f"{work}/bn_order{k}/out", sh)
        noises.append(upd(update_error(w, r["ref"], r["w0"])))
    w, _ = train(dptrain, 1, CNN, ["--batch", "4", "--accum", "2"], f"{work}/bn_threads2",
                 f"{work}/bn_reordered/train-*.h5", threads=2)
    noises.append(upd(update_error(w, r["ref"], r["w0"])))
    verdict("cnn_bn 2x4 vs 1x4 accum 2", noises, upd(r["e_upd"]), TOL["bn"])
    # Running stats: rank 0's batch in other orders, and at 2 threads.
    noises = []
    for k in range(ORDERS):
        sh = write_shard(f"{work}/bn_stats_order{k}", [r["recs"][i] for i in shuffled_blocks(r["batches"][0], 4, k)],
                         r["attrs"])
        w, _ = train(dptrain, 1, CNN, ["--batch", "4"], f"{work}/bn_stats_order{k}/out", sh, steps=1)
        noises.append((stats_error(w, r["singles"][0]),))
    w, _ = train(dptrain, 1, CNN, ["--batch", "4"], f"{work}/bn_stats_threads2",
                 f"{work}/bn_stats_rank0/train-*.h5", steps=1, threads=2)
    noises.append((stats_error(w, r["singles"][0]),))
    verdict("cnn_bn running stats", noises, (r["e_st"],), TOL["bn_stats"])
    if bad:
        fail(f"tolerances too tight for the noise measured here: {bad} (see the table in equivalence.py)")
    print("ok")
