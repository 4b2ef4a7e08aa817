#!/usr/bin/env python3
"""Training state that outlives the process: exact resume, preemption,
faults, the collective watchdog, atomic outputs (issue: training state).

usage: state_tests.py TEST DPTRAIN DATA_DIR WORK_DIR [N]
TEST:
  exact      stop (SIGUSR1) at a step and resume: final weights bitwise equal to an
             uninterrupted run, for 1 and 2 ranks mid-epoch, mixup, --accum 2, AdamW
             across an unfreezing boundary
  kill       N trials (default 5): SIGKILL of a random rank at a random step, a third
             of them while the checkpoint is being written; resume; bitwise equal
  fallback   the newest checkpoint corrupted: --resume auto falls back to the previous
             one with a message naming both, and still ends bitwise equal
  reshard    2 ranks stopped mid-epoch, resumed on 1 rank: every sample of that epoch
             seen exactly once (--dump-ids), the run completes with a warning
  signals    SIGUSR1 and SIGTERM to mpirun and SIGTERM to one rank: status preempted,
             exit 75 from the ranks, within 20 s
  watchdog   kill -STOP of one rank with --collective-timeout 10: the other rank exits
             non-zero within 20 s naming the stopped rank and the step
  rankdeath  SIGKILL of one rank during training: every survivor exits non-zero in 30 s
  outputs    unwritable --out refused before any step (exit 2); steps.csv never has a
             partial row after SIGKILL; an injected fatal error writes status failed
Exit 0 on success, 1 on failure (with the reason).
"""
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", DPTRAIN_PROGRESS="plain")
# SIGTERM to mpirun: Open MPI forwards it, then sends SIGKILL after
# odls_base_sigkill_timeout (1 s by default) -- the ranks must stop at their
# next step boundary and write the checkpoint within that second (a small
# model here; docs/checkpoints.md says what to do for large ones).
SIGTERM_GRACE = {}
for k in ("MLFLOW_TRACKING_URI", "DPTRAIN_INJECT_FAULT", "DPTRAIN_INJECT_KILL", "DPTRAIN_INJECT_SIGNAL"):
    ENV.pop(k, None)

DPTRAIN = DATA = WORK = None


def fail(msg, out=""):
    if out:
        print(out[-5000:])
    print("FAIL:", msg)
    sys.exit(1)


def mpirun(np_, args):
    return ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none", DPTRAIN] + args


def train_args(out, extra):
    return ["train", "--model", "cnn", "--cnn-width", "8", "--image-size", "32",
            "--train", f"{DATA}/train-*.h5", "--val", f"{DATA}/val-*.h5", "--out", out,
            "--epochs", "3", "--batch", "16", "--seed", "5", "--threads", "1", "--loader-threads", "1",
            "--lr", "0.05", "--warmup-steps", "3", "--log-every", "4", "--collective-timeout", "60"] + extra


def run(np_, args, env_extra=None, timeout=300, expect=None):
    env = dict(ENV)
    env.update(env_extra or {})
    t0 = time.time()
    p = subprocess.run(mpirun(np_, args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if expect is not None and p.returncode not in expect:
        fail(f"exit code {p.returncode}, expected {expect}: {' '.join(args[:3])} ...", p.stdout)
    return p.returncode, p.stdout, time.time() - t0


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def fresh(name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


_refs = {}


def reference(np_, extra, tag):
    """The uninterrupted run of a case (cached per case)."""
    if tag in _refs:
        return _refs[tag]
    out = os.path.join(fresh("ref-" + tag), "out")
    run(np_, train_args(out, extra), expect=[0])
    h = (sha(os.path.join(out, "model-last.safetensors")), sha(os.path.join(out, "model.safetensors")))
    _refs[tag] = (out, h)
    return _refs[tag]


def compare(tag, out, ref):
    got = (sha(os.path.join(out, "model-last.safetensors")), sha(os.path.join(out, "model.safetensors")))
    if got != ref:
        fail(f"{tag}: final weights differ from the uninterrupted run: last {got[0][:16]} vs {ref[0][:16]}, "
             f"best {got[1][:16]} vs {ref[1][:16]}")
    print(f"ok {tag}: model-last.safetensors SHA-256 {got[0][:16]}... equals the uninterrupted run's")


CASES = [  # (tag, ranks, extra flags, stop step, stopping rank)
    ("1rank-mid-epoch", 1, [], 11, 0),
    ("2ranks-mid-epoch", 2, [], 13, 1),
    ("2ranks-mixup", 2, ["--mixup", "0.4"], 9, 0),
    ("1rank-accum2", 1, ["--accum", "2"], 5, 0),
    ("adamw-unfreeze-boundary", 1, ["--optimizer", "adamw", "--lr", "0.003", "--unfreeze-every", "1",
                                     "--freeze-below-stage", "1"], 14, 0),
]


def steps_per_epoch(out):
    r = results(out)
    return r["throughput"]["steps"] // max(1, r["throughput"]["epochs_done"])


def t_exact():
    for tag, np_, extra, k, rank in CASES:
        ref_out, ref = reference(np_, extra + ["--checkpoint-every", "4"], tag)
        if tag.startswith("adamw"):
            spe = steps_per_epoch(ref_out)
            k = spe - 2   # stop 2 steps before epoch 1 unfreezes the next stage; resume crosses it
        out = os.path.join(fresh(tag), "out")
        rc, log, _ = run(np_, train_args(out, extra + ["--checkpoint-every", "4"]),
                         {"DPTRAIN_INJECT_SIGNAL": f"{rank}:{k}"}, expect=[75, 1])
        st = results(out)["status"]
        if st != "preempted":
            fail(f"{tag}: results.json status {st!r} after SIGUSR1, expected 'preempted'", log)
        run(np_, train_args(out, extra + ["--checkpoint-every", "4", "--resume", "auto"]), expect=[0])
        r = results(out)
        if r["status"] != "completed" or r["state"]["segments"] != 2:
            fail(f"{tag}: after resume status {r['status']}, segments {r['state']['segments']}")
        compare(tag + f" (stopped at step {k + 1})", out, ref)


def t_kill(trials):
    rnd = random.Random(int(os.environ.get("STATE_TEST_SEED", "20261201")))
    tag, np_, extra = "kill", 2, ["--checkpoint-every", "3"]
    ref_out, ref = reference(np_, extra, tag)
    total = results(ref_out)["throughput"]["steps"]
    for i in range(trials):
        rank = rnd.randrange(np_)
        during = i % 3 == 2
        if during:
            rank = 0                                   # rank 0 writes the checkpoints
            step = 3 * rnd.randrange(1, (total - 2) // 3)   # a checkpoint step
            spec = f"0:{step}:ckpt"
        else:
            step = rnd.randrange(2, total - 2)
            spec = f"{rank}:{step}"
        out = os.path.join(fresh(f"kill{i}"), "out")
        rc, log, dt = run(np_, train_args(out, extra), {"DPTRAIN_INJECT_KILL": spec}, timeout=200)
        if rc == 0:
            fail(f"kill trial {i} ({spec}): the job exited 0 after a rank was killed", log)
        ck = os.path.join(out, "checkpoints")
        left = sorted(os.listdir(ck)) if os.path.isdir(ck) else []
        if any(not f.startswith("ckpt-") for f in left if not f.startswith(".")):
            fail(f"kill trial {i}: unexpected files in checkpoints/: {left}")
        rc2, log2, _ = run(np_, train_args(out, extra + ["--resume", "auto"]), expect=[0])
        what = "while writing its checkpoint" if during else "mid-run"
        compare(f"kill trial {i}: rank {rank} SIGKILLed at step {step} {what}, job exited {rc} in {dt:.1f} s, "
                f"resumed", out, ref)


def t_fallback():
    tag, np_, extra = "fallback", 1, ["--checkpoint-every", "4"]
    ref_out, ref = reference(np_, extra, tag)
    out = os.path.join(fresh(tag), "out")
    run(np_, train_args(out, extra), {"DPTRAIN_INJECT_SIGNAL": "0:18"}, expect=[75])
    ck = os.path.join(out, "checkpoints")
    files = sorted(f for f in os.listdir(ck) if f.startswith("ckpt-"))
    newest, previous = os.path.join(ck, files[-1]), os.path.join(ck, files[-2])
    with open(newest, "r+b") as f:   # flip bytes inside the data section
        f.seek(-4096, os.SEEK_END)
        b = bytearray(f.read(16))
        f.seek(-4096, os.SEEK_END)
        f.write(bytes(x ^ 0xFF for x in b))
    rc, log, _ = run(np_, train_args(out, extra + ["--resume", "auto"]), expect=[0])
    if files[-1] not in log or files[-2] not in log or "corrupt" not in log:
        fail("the fallback message must name the corrupt checkpoint and the one used", log)
    line = [l for l in log.splitlines() if "corrupt" in l][0]
    print("message:", line.strip()[:300])
    compare("fallback past a corrupt newest checkpoint", out, ref)


def read_dump(prefix, ranks):
    seen = []
    for r in range(ranks):
        p = f"{prefix}.rank{r}"
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                e, idx, _id = line.split()
                seen.append((int(e), int(idx)))
    return seen


def t_reshard():
    global DATA
    DATA = DATA + "_clean"
    d = fresh("reshard")
    out, dump = os.path.join(d, "out"), os.path.join(d, "ids")
    extra = ["--checkpoint-every", "4", "--dump-ids", dump, "--epochs", "2"]
    run(2, train_args(out, extra), {"DPTRAIN_INJECT_SIGNAL": "0:5"}, expect=[75, 1])
    rc, log, _ = run(1, train_args(out, extra + ["--resume", "auto"]), expect=[0])
    if "dealt out again" not in log:
        fail("resuming on another world size must warn that the epoch is re-dealt", log)
    seen = read_dump(dump, 2)
    total = results(out)["throughput"]
    ep0 = [i for e, i in seen if e == 0]
    if len(ep0) != len(set(ep0)):
        dup = len(ep0) - len(set(ep0))
        fail(f"epoch 0 (interrupted on 2 ranks, finished on 1): {dup} sample(s) seen twice")
    ep1 = [i for e, i in seen if e == 1]
    if len(ep1) != len(set(ep1)):
        fail("epoch 1: a sample was seen twice")
    import h5py
    n = sum(len(h5py.File(os.path.join(DATA, f), "r")["labels"]) for f in os.listdir(DATA) if f.startswith("train-"))
    # drop_last drops at most one global batch of the (re-dealt) remainder.
    if len(ep0) < n - 2 * 16 * 2:
        fail(f"epoch 0 covered only {len(ep0)} of {n} samples")
    print(f"ok reshard: epoch 0 split 2 ranks -> 1 rank covered {len(ep0)} distinct of {n} samples once each "
          f"(drop_last tail {n - len(ep0)}); epoch 1 {len(ep1)}; {total['steps']} steps")


def start_bg(np_, args, env_extra=None):
    env = dict(ENV)
    env.update(env_extra or {})
    log = open(os.path.join(WORK, "bg.log"), "w")
    p = subprocess.Popen(mpirun(np_, args), env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    return p, log


def rank_pids(out):
    ps = subprocess.run(["pgrep", "-f", f"dptrain train .*--out {out} "], stdout=subprocess.PIPE, text=True).stdout
    pids = [int(x) for x in ps.split()]
    # Rank order: by the rank's environment (Open MPI sets OMPI_COMM_WORLD_RANK).
    ranked = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            r = env.get(b"OMPI_COMM_WORLD_RANK")
            if r is not None:
                ranked[int(r)] = pid
        except OSError:
            pass
    return ranked


def wait_steps(out, min_rows, timeout=120):
    t0 = time.time()
    p = os.path.join(out, "steps.csv")
    while time.time() - t0 < timeout:
        if os.path.exists(p):
            with open(p) as f:
                if sum(1 for _ in f) > min_rows:
                    return
        time.sleep(0.2)
    fail(f"the run did not reach {min_rows} steps in {timeout} s")


def long_run(out):
    return train_args(out, ["--epochs", "400", "--log-every", "1"])


def t_signals():
    for how in ("USR1 to mpirun", "TERM to mpirun", "TERM to rank 1"):
        out = os.path.join(fresh("sig-" + how.replace(" ", "_")), "out")
        p, log = start_bg(2, long_run(out), SIGTERM_GRACE if how == "TERM to mpirun" else None)
        wait_steps(out, 6)
        t0 = time.time()
        if how.endswith("mpirun"):
            p.send_signal(signal.SIGUSR1 if how.startswith("USR1") else signal.SIGTERM)
        else:
            pids = rank_pids(out)
            if 1 not in pids:
                fail(f"could not find rank 1's process: {pids}")
            os.kill(pids[1], signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            fail(f"{how}: still running 60 s after the signal")
        dt = time.time() - t0
        log.close()
        text = open(os.path.join(WORK, "bg.log")).read()
        r = results(out)
        ck = sorted(os.listdir(os.path.join(out, "checkpoints")))
        if r["status"] != "preempted" or not ck:
            fail(f"{how}: status {r['status']}, checkpoints {ck}", text)
        # mpirun itself exits 1 after a SIGTERM (it was told to end the job);
        # otherwise the ranks' 75 comes through.
        if how != "TERM to mpirun" and "Exit code:    75" not in text and p.returncode != 75:
            fail(f"{how}: no rank exited with 75 (mpirun {p.returncode})", text)
        if p.returncode == 0:
            fail(f"{how}: exit 0 for a preempted run")
        if dt > 20:
            fail(f"{how}: {dt:.1f} s from the signal to the exit (limit 20 s)")
        print(f"ok signal {how}: stopped at step {r['throughput']['steps']} with {ck[-1]}, status preempted, "
              f"ranks exit 75 (mpirun {p.returncode}), {dt:.2f} s from signal to exit")


def t_watchdog():
    out = os.path.join(fresh("watchdog"), "out")
    args = long_run(out)
    args[args.index("--collective-timeout") + 1] = "10"
    p, log = start_bg(2, args)
    wait_steps(out, 6)
    pids = rank_pids(out)
    if 1 not in pids:
        fail(f"no rank 1 process: {pids}")
    os.kill(pids[1], signal.SIGSTOP)
    t0 = time.time()
    try:
        p.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.kill(pids[1], signal.SIGCONT)
        p.kill()
        fail("the job was still hanging 40 s after rank 1 was stopped (--collective-timeout 10)")
    dt = time.time() - t0
    log.close()
    text = open(os.path.join(WORK, "bg.log")).read()
    try:
        os.kill(pids[1], signal.SIGCONT)
    except OSError:
        pass
    line = next((l for l in text.splitlines() if "collective timeout" in l), "")
    if p.returncode == 0 or "rank 1" not in line or "step" not in line:
        fail(f"survivor exit {p.returncode}; message: {line!r}", text)
    if dt > 20:
        fail(f"{dt:.1f} s from SIGSTOP to the job's end (limit timeout 10 + 10 s)")
    print(f"ok watchdog: job ended {dt:.1f} s after kill -STOP of rank 1 (exit {p.returncode}): {line.strip()[:240]}")


def t_rankdeath():
    out = os.path.join(fresh("rankdeath"), "out")
    p, log = start_bg(2, long_run(out))
    wait_steps(out, 6)
    pids = rank_pids(out)
    os.kill(pids[1], signal.SIGKILL)
    t0 = time.time()
    try:
        p.wait(timeout=40)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("survivors still running 40 s after a rank was killed")
    log.close()

    def alive():
        out_ = []
        for pid in pids.values():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split()[2] not in ("Z", "X"):
                        out_.append(pid)
            except OSError:
                pass
        return out_
    while alive() and time.time() - t0 < 30:
        time.sleep(0.2)
    dt = time.time() - t0
    if p.returncode == 0 or alive():
        fail(f"exit {p.returncode}, {dt:.1f} s, processes still alive: {alive()}")
    print(f"ok rank death (mpirun): rank 1 SIGKILLed, every survivor gone after {dt:.1f} s, exit {p.returncode}")


def t_outputs():
    # 1. An output directory that cannot be written: refused before the first step.
    d = fresh("outputs")
    blocker = os.path.join(d, "file")
    open(blocker, "w").close()
    rc, log, dt = run(1, train_args(os.path.join(blocker, "out"), []))
    if rc != 2 or "setting 'out'" not in log:
        fail(f"unwritable --out: exit {rc}", log)
    if os.path.exists(os.path.join(d, "file", "out")):
        fail("unwritable --out: something was created")
    print(f"ok unwritable --out refused before any work, exit 2 in {dt:.1f} s: "
          f"{[l for l in log.splitlines() if 'setting' in l][0][:160]}")
    # 2. SIGKILL mid-run: steps.csv ends with whole rows.
    out = os.path.join(d, "killed")
    run(1, train_args(out, ["--log-every", "1"]), {"DPTRAIN_INJECT_KILL": "0:17"})
    with open(os.path.join(out, "steps.csv"), "rb") as f:
        b = f.read()
    rows = b.split(b"\n")
    ncol = len(rows[0].split(b","))
    if not b.endswith(b"\n") or any(len(r.split(b",")) != ncol for r in rows[:-1]):
        fail("steps.csv has a partial row after SIGKILL")
    print(f"ok steps.csv after SIGKILL at step 17: {len(rows) - 2} whole rows, no partial row")
    # 3. A fatal error: results.json says failed and why.
    out = os.path.join(d, "fatal")
    rc, log, _ = run(1, train_args(out, []), {"DPTRAIN_INJECT_FAULT": "0:7"})
    r = results(out)
    if rc == 0 or r.get("status") != "failed" or "injected fault" not in r.get("reason", ""):
        fail(f"injected fault: exit {rc}, results {r}", log)
    print(f"ok fatal error: exit {rc}, results.json status failed, reason {r['reason'][:80]!r}")


def main():
    global DPTRAIN, DATA, WORK
    test, DPTRAIN, DATA, WORK = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    os.makedirs(WORK, exist_ok=True)
    {"exact": t_exact, "kill": lambda: t_kill(n), "fallback": t_fallback, "reshard": t_reshard,
     "signals": t_signals, "watchdog": t_watchdog, "rankdeath": t_rankdeath, "outputs": t_outputs}[test]()
    print(f"state_tests {test}: all checks passed")


if __name__ == "__main__":
    main()
