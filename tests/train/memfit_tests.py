#!/usr/bin/env python3
"""The batch-size finder and the memory budget, end to end (docs/memory.md).

usage: memfit_tests.py TEST DPTRAIN MAKE_SHARDS WORK_DIR
TEST:
  refuse  --batch 1000000 (ResNet-50, 224 px) is refused from the plan, with the
          planned size in the message, before anything is allocated (fast, exit 2,
          little memory); an explicit batch whose plan passes --memory-budget too.
  tune    dptrain tune-batch under a small budget: the largest batch's plan fits the
          budget less the margin, its one probe step measured within the margin of
          the plan, the table has smaller rows,
          --global-batch gives an accumulation that holds it.
  steps   train --batch auto with the budget enforced: 1,000 training steps, zero
          out-of-memory failures, the log says the budget held.
Exits 0 on success, 1 on failure (with the reason).
"""
import os
import re
import resource
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
           DPTRAIN_PROGRESS="plain", DPTRAIN_NO_BIND="1")
MIB = 1024.0 * 1024.0


def fail(msg, out=""):
    print(out[-4000:])
    print("FAIL:", msg)
    sys.exit(1)


def run(args, timeout=300):
    t0 = time.time()
    p = subprocess.run(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)
    return p.returncode, p.stdout, time.time() - t0


def size_mib(s):
    v, u = s.split()
    return float(v) * {"MiB": 1, "GiB": 1024, "TiB": 1024 * 1024}[u]


def shards(make, work):
    d = os.path.join(work, "data")
    if not os.path.exists(os.path.join(d, "val-00000.h5")):
        os.makedirs(d, exist_ok=True)
        subprocess.run([make, d, "512", "64", "16", "5"], check=True, env=ENV, stdout=subprocess.DEVNULL)
    return ["--train", os.path.join(d, "train-*.h5"), "--val", os.path.join(d, "val-*.h5")]


TINY = ["--model", "cnn", "--cnn-width", "4", "--image-size", "16", "--lr", "0.05"]


def test_refuse(dptrain, make, work):
    data = shards(make, work)
    rc, out, dt = run([dptrain, "train", "--model", "resnet50", "--image-size", "224", "--batch", "1000000",
                       "--steps", "1", "--out", os.path.join(work, "refuse")] + data)
    print(out.strip().splitlines()[-1] if out.strip() else "(no output)")
    if rc != 2:
        fail(f"--batch 1000000 exited {rc}, want 2 (bad configuration)", out)
    m = re.search(r"batch 1000000 needs ([0-9.]+ [MGT]iB) of memory per rank as planned", out)
    if not m:
        fail("the refusal does not give the planned size", out)
    if size_mib(m.group(1)) < 1024 * 1024:
        fail(f"planned size {m.group(1)} is implausibly small for ResNet-50 at batch 10^6", out)
    # Under a second on an idle machine; the limit leaves room for a loaded one.
    if dt > 3.0:
        fail(f"the refusal took {dt:.2f} s", out)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if child > 1024:
        fail(f"a child grew to {child:.0f} MiB before refusing: something was allocated first", out)
    print(f"ok: refused in {dt:.2f} s, planned {m.group(1)}, largest child RSS {child:.0f} MiB")
    rc, out, _ = run([dptrain, "train", "--batch", "400", "--memory-budget", "12MiB", "--steps", "1",
                      "--out", os.path.join(work, "refuse2")] + TINY + data)
    if rc != 2 or "more than the budget of 12.0 MiB (--memory-budget 12MiB)" not in out:
        fail(f"batch 400 under a 12 MiB budget: exit {rc}, want 2 with the budget in the message", out)
    print("ok: an explicit batch over --memory-budget is refused from the plan")


def table(out):
    rows = []
    for m in re.finditer(r"^\| (\d+)( \(largest\))? \| ([0-9.]+ [MGT]iB) \| ([0-9.]+ [MGT]iB|-) \|", out, re.M):
        rows.append((int(m.group(1)), bool(m.group(2)), size_mib(m.group(3)),
                     None if m.group(4) == "-" else size_mib(m.group(4))))
    return rows


def test_tune(dptrain, make, work):
    data = shards(make, work)
    rc, out, dt = run([dptrain, "tune-batch", "--memory-budget", "24MiB", "--global-batch", "1000"] + TINY + data)
    print(out[-1500:])
    if rc != 0:
        fail(f"tune-batch exited {rc}", out)
    rows = table(out)
    largest = [r for r in rows if r[1]]
    if len(rows) < 3 or len(largest) != 1:
        fail(f"want the largest batch and at least two smaller rows, got {rows}", out)
    b, _, planned, measured = largest[0]
    usable = 24 * 0.95
    if planned > usable + 0.1:   # the table rounds to 0.1 MiB
        fail(f"batch {b} plans {planned:.1f} MiB > usable {usable:.1f} MiB", out)
    if measured is None or measured > planned * 1.05:
        fail(f"the probe of batch {b} measured {measured} MiB, plan {planned:.1f} MiB (margin 5 %)", out)
    if any(r[0] >= b for r in rows if not r[1]):
        fail("the other rows must be smaller batches", out)
    m = re.search(r"global batch 1000: --accum (\d+) x --batch (\d+) x 1 rank\(s\) = (\d+)", out)
    if not m or int(m.group(2)) > b or int(m.group(1)) * int(m.group(2)) < 1000:
        fail("no accumulation split that holds global batch 1000 under the largest batch", out)
    print(f"ok: largest batch {b}, planned {planned:.1f} MiB, measured {measured:.1f} MiB, {dt:.1f} s")


def test_steps(dptrain, make, work):
    data = shards(make, work)
    out_dir = os.path.join(work, "steps")
    rc, out, dt = run([dptrain, "train", "--batch", "auto", "--memory-budget", "24MiB", "--steps", "1000",
                       "--eval-every", "1000", "--out", out_dir] + TINY + data, timeout=900)
    if rc != 0:
        fail(f"1000 steps under the enforced budget exited {rc}", out)
    m = re.search(r"--batch auto chose batch (\d+) per rank", out)
    held = re.search(r"memory: the budget of 24.0 MiB held: peak growth ([0-9.]+ [MGT]iB)", out)
    if not m or not held:
        fail("the log must say which batch was chosen and that the budget held", out)
    cfg = open(os.path.join(out_dir, "config.ini")).read()
    if not re.search(rf"^batch = {m.group(1)}$", cfg, re.M):
        fail("config.ini must repeat the run with the batch found", cfg)
    print(f"ok: batch {m.group(1)}, 1000 steps, peak growth {held.group(1)} of 24.0 MiB, {dt:.1f} s, no failure")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    test, dptrain, make, work = sys.argv[1:]
    if test in ("tune", "steps") and os.environ.get("DPTRAIN_SANITIZED"):
        print(f"skip: memfit {test} compares measured RSS with the plan; under ASan the RSS holds shadow "
              "memory and the quarantine (this test runs in the default suite)")
        return 77
    os.makedirs(work, exist_ok=True)
    {"refuse": test_refuse, "tune": test_tune, "steps": test_steps}[test](dptrain, make, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
