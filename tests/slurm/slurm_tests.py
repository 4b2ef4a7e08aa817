#!/usr/bin/env python3
"""The Slurm scripts on a real (one-node, localhost) Slurm cluster.

usage: slurm_tests.py REPO DPTRAIN DATA_DIR WORK_DIR

1. An uninterrupted job of slurm/train_single_node.sbatch (2 tasks, srun --mpi=pmix).
2. The same job sent USR1 mid-run (`scancel --signal=USR1 --batch`, what Slurm's
   --signal=B:USR1@300 does before the time limit): the batch script forwards it, dptrain
   checkpoints and exits 75, the script requeues the job, the restart resumes with
   --resume auto and completes; its final weights' SHA-256 equals the uninterrupted job's.
3. A rank SIGKILLed during training under srun: every survivor is gone within 30 s.
4. slurm/weekly_retrain.sbatch twice with the directory registry: the first run passes the
   gate and is published as `production` with its lineage; the second, under a gate it
   cannot meet, is kept but not published (production unchanged).
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
        # 4. the weekly retrain and its quality gate
        cfg = os.path.join(WORK, "weekly.ini")
        with open(cfg, "w") as f:
            f.write("model = cnn\ncnn-width = 8\nimage-size = 32\nepochs = 3\nbatch = 16\nthreads = 1\n"
                    "loader-threads = 1\nseed = 5\nlr = 0.05\n")
        art = os.path.join(WORK, "artifacts")
        shutil.rmtree(art, ignore_errors=True)
        seen = []
        for k, min_f1 in enumerate(("0.0", "0.99")):
            out = os.path.join(WORK, f"weekly{k}")
            shutil.rmtree(out, ignore_errors=True)
            log = os.path.join(WORK, f"weekly{k}.out")
            env = dict(ENV, DATA=DATA, CONFIG=cfg, ARTIFACTS=art, MIN_MACRO_F1=min_f1, OUT=out, DPTRAIN=DPTRAIN,
                       DPTRAIN_REPO=REPO, DPTRAIN_NODES="1", DPTRAIN_TASKS_PER_NODE="2")
            p = subprocess.run([os.path.join(REPO, "slurm/submit.sh"), os.path.join(REPO, "slurm/weekly_retrain.sbatch"),
                                "--parsable", "-o", log, "-J", f"weekly{k}"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            jid = int(p.stdout.strip().split(";")[0])
            wait_state(jid, {"COMPLETED", "FAILED", "CANCELLED"}, 400, log)
            if job_field(jid, "JobState") != "COMPLETED":
                fail(f"weekly job {k} did not complete", log)
            seen.append(open(log).read())
        prod = os.path.realpath(os.path.join(art, "production"))
        manifest = json.load(open(os.path.join(prod, "artifact.json")))
        lin = manifest["lineage"]
        if "published" not in seen[0] or "NOT published" not in seen[1]:
            fail("the gate did not publish the first and refuse the second", log)
        if not manifest["gate"]["passed"] or not lin.get("data_fingerprint") or not lin.get("config_hash"):
            fail(f"production artifact manifest: {manifest}")
        refused = [d for d in os.listdir(art) if d.endswith(str(jid)) and not os.path.islink(os.path.join(art, d))]
        if not refused or os.path.realpath(os.path.join(art, refused[0])) == prod:
            fail(f"the refused run's artifact: {refused}, production {prod}")
        m2 = json.load(open(os.path.join(art, refused[0], "artifact.json")))
        print(f"ok weekly retrain: run 1 published as production (test macro-F1 {manifest['test']['macro_f1']:.3f}, "
              f"lineage data {lin['data_fingerprint'][:24]}..., config {lin['config_hash'][:24]}..., commit "
              f"{str(lin.get('git_commit'))[:12]}); run 2 refused by the gate (macro-F1 {m2['test']['macro_f1']:.3f} "
              f"< 0.99, production re-scored at {m2['gate']['production_macro_f1']:.3f}) and kept unpublished")
    finally:
        stop()
    print("slurm_tests: all checks passed")


if __name__ == "__main__":
    main()
