#!/usr/bin/env python3
"""The Slurm scripts on a real (one-node, localhost) Slurm cluster.

usage: slurm_tests.py REPO DPTRAIN DATA_DIR WORK_DIR

1. An uninterrupted job of slurm/train_single_node.sbatch (2 tasks, srun --mpi=pmix).
2. The same job sent USR1 mid-run (`scancel --signal=USR1 --batch`, what Slurm's
   --signal=B:USR1@300 does before the time limit): the batch script forwards it, dptrain
   checkpoints and exits 75, the script requeues the job, the restart resumes with
   --resume auto and completes; its final weights' SHA-256 equals the uninterrupted job's.
3. A rank SIGKILLed during training under srun: every survivor is gone within 30 s.
The cluster (munged, slurmctld, slurmd) is started by tests/slurm/slurm_cluster.sh and
always stopped. Exit 0 ok, 1 failure.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

REPO, DPTRAIN, DATA, WORK = sys.argv[1:5]
CLUSTER = os.path.join(WORK, "cluster")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           DPTRAIN_PROGRESS="plain")
for k in ("MLFLOW_TRACKING_URI", "SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_NPROCS"):
    ENV.pop(k, None)


def fail(msg, log=None):
    if log and os.path.exists(log):
        print(open(log).read()[-5000:])
    print("FAIL:", msg)
    stop()
    sys.exit(1)


def stop():
    subprocess.run([os.path.join(REPO, "tests/slurm/slurm_cluster.sh"), "stop", CLUSTER])


def sh(args, **kw):
    return subprocess.run(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def job_field(jid, field):
    out = sh(["scontrol", "show", "job", str(jid)]).stdout
    for tok in out.split():
        if tok.startswith(field + "="):
            return tok.split("=", 1)[1]
    return ""


def submit(name, epochs):
    out = os.path.join(WORK, name)
    shutil.rmtree(out, ignore_errors=True)
    env = dict(ENV, DATA=DATA, OUT=out, MODEL="cnn", IMAGE_SIZE="32", EPOCHS=str(epochs), BATCH="16",
               BASELINE_STEPS="0", CHECKPOINT_MINUTES="0", DPTRAIN=DPTRAIN, DPTRAIN_REPO=REPO,
               DPTRAIN_TASKS_PER_NODE="2",
               TRAIN_ARGS="--cnn-width 8 --threads 1 --loader-threads 1 --checkpoint-every 40 --seed 5 "
                          "--log-every 1 --lr 0.05 --warmup-steps 5")
    log = os.path.join(WORK, name + ".out")
    p = subprocess.run([os.path.join(REPO, "slurm/submit.sh"), os.path.join(REPO, "slurm/train_single_node.sbatch"),
                        "--parsable", "-o", log, "-J", name], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        fail(f"sbatch: {p.stdout}")
    return int(p.stdout.strip().split(";")[0]), out, log


def wait_state(jid, states, timeout, log):
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = job_field(jid, "JobState")
        if st in states:
            return st
        # A requeued job waits Slurm's fixed requeue delay (about 2 min) for its
        # BeginTime; the test moves it to now.
        if st == "PENDING" and job_field(jid, "Reason") == "BeginTime":
            sh(["scontrol", "update", f"JobId={jid}", "StartTime=now"])
        time.sleep(1)
    fail(f"job {jid} not in {states} after {timeout} s (state {job_field(jid, 'JobState')})", log)


def rows(out):
    p = os.path.join(out, "steps.csv")
    return sum(1 for _ in open(p)) if os.path.exists(p) else 0


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def main():
    os.makedirs(WORK, exist_ok=True)
    p = subprocess.run([os.path.join(REPO, "tests/slurm/slurm_cluster.sh"), "start", CLUSTER], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(p.stdout)
        print("FAIL: could not start the Slurm cluster")
        sys.exit(1)
    for line in p.stdout.splitlines():
        if line.startswith("export SLURM_CONF="):
            ENV["SLURM_CONF"] = line.split("=", 1)[1]
    print("cluster:", sh(["sinfo", "-h"]).stdout.strip())
    try:
        # 1. uninterrupted
        jid, ref_out, ref_log = submit("ref", 60)
        wait_state(jid, {"COMPLETED", "FAILED", "CANCELLED"}, 300, ref_log)
        if job_field(jid, "JobState") != "COMPLETED":
            fail("the uninterrupted job failed", ref_log)
        ref = sha(os.path.join(ref_out, "model-last.safetensors"))
        print(f"ok uninterrupted job {jid}: model-last.safetensors {ref[:16]}...")
        # 2. USR1 mid-run -> checkpoint, requeue, resume, complete
        jid, out, log = submit("preempted", 60)
        t0 = time.time()
        while rows(out) < 120:
            if time.time() - t0 > 240 or job_field(jid, "JobState") in ("COMPLETED", "FAILED"):
                fail("the job finished or stalled before it could be signalled", log)
            time.sleep(0.5)
        sh(["scancel", "--signal=USR1", "--batch", str(jid)])
        sent = time.time()
        wait_state(jid, {"COMPLETED", "FAILED", "CANCELLED"}, 400, log)
        text = open(log).read()
        restarts = int(job_field(jid, "Restarts") or 0)
        r = json.load(open(os.path.join(out, "results.json")))
        if job_field(jid, "JobState") != "COMPLETED" or restarts < 1 or r["status"] != "completed":
            fail(f"state {job_field(jid, 'JobState')}, restarts {restarts}, status {r['status']}", log)
        if "resumed from" not in text or "requeueing job" not in text:
            fail("the log does not show the requeue and the resume", log)
        got = sha(os.path.join(out, "model-last.safetensors"))
        if got != ref:
            fail(f"after preemption and requeue the final weights differ: {got[:16]} vs {ref[:16]}", log)
        pre = next(l for l in text.splitlines() if "preempted at step" in l)
        print(f"ok USR1 to the batch shell: {pre.strip()}; job {jid} requeued (Restarts={restarts}), resumed "
              f"(segments {r['state']['segments']}) and completed; model-last.safetensors SHA-256 {got[:16]}... "
              f"equals the uninterrupted job's ({time.time() - sent:.0f} s incl. the requeue)")
        # 3. a rank killed under srun
        jid, out, log = submit("rankdeath", 400)
        t0 = time.time()
        while rows(out) < 30:
            if time.time() - t0 > 240:
                fail("the job did not start", log)
            time.sleep(0.5)
        # The ranks themselves (srun's own command line matches the pattern too).
        pids = [int(x) for x in sh(["pgrep", "-f", f"dptrain train --out {out} "]).stdout.split()
                if os.path.realpath(f"/proc/{x}/exe") == os.path.realpath(DPTRAIN)]
        if len(pids) < 2:
            fail(f"expected 2 ranks, found {pids}", log)
        os.kill(pids[-1], signal.SIGKILL)
        killed = time.time()
        while time.time() - killed < 30:
            alive = [q for q in pids if os.path.exists(f"/proc/{q}") and
                     open(f"/proc/{q}/stat").read().split()[2] not in "ZX"]
            if not alive:
                break
            time.sleep(0.2)
        dt = time.time() - killed
        if alive:
            fail(f"processes {alive} still alive 30 s after one rank was killed", log)
        wait_state(jid, {"COMPLETED", "FAILED", "CANCELLED"}, 60, log)
        print(f"ok rank death under srun: every survivor gone {dt:.1f} s after SIGKILL, job {jid} "
              f"{job_field(jid, 'JobState')} ({job_field(jid, 'ExitCode')})")
    finally:
        stop()
    print("slurm_tests: all checks passed")


if __name__ == "__main__":
    main()
