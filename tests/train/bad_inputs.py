#!/usr/bin/env python3
"""Every bad input refused, end to end through the dptrain binary (issue 10 section 3).

usage: bad_inputs.py GROUP DPTRAIN MAKE_SHARDS WORK_DIR
GROUP: options | configfiles | batch | classnames | skips | emptyval | evalout | cli | csv
Each group exits 0 on success, 1 on failure (naming the case), 77 to skip.
Exit-code convention checked everywhere: 0 ok, 1 runtime failure, 2 bad input or config.
"""
import json
import re
import os
import resource
import shutil
import subprocess
import sys
import time

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", DPTRAIN_PROGRESS="plain")
FAILS = []


def run(args, np_=None, timeout=120, env=None, stdin=None):
    """Runs dptrain (as an MPI singleton unless np_ is given); returns (rc, output, seconds)."""
    cmd = (["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none"] if np_ else []) + args
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           text=True, errors="replace", stdin=stdin)
        return p.returncode, p.stdout, time.time() - t0
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), \
            time.time() - t0


def check(cond, what, out=""):
    if cond:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}\n{out[-3000:]}")
        FAILS.append(what)


def expect(args, rc_want, needles, what, np_=None, absent=(), timeout=120):
    rc, out, secs = run(args, np_, timeout)
    good = rc == rc_want and all(n in out for n in needles) and not any(a in out for a in absent)
    check(good, f"{what}: exit {rc} (want {rc_want}), {secs:.1f} s", out)
    return rc, out


def shards(make, d, *args):
    if not os.path.exists(os.path.join(d, "train-00000.h5")):
        subprocess.run([make, d] + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL)
    return d


def train_args(dptrain, data, out, *extra):
    return [dptrain, "train", "--model", "cnn", "--cnn-width", "8", "--image-size", "16", "--train",
            f"{data}/train-*.h5", "--out", out, "--batch", "4", "--threads", "1", "--loader-threads", "1"] + list(extra)


# ---- option ranges on every command --------------------------------------------------------------
def options(dptrain, make, work):
    data = shards(make, f"{work}/data", 64, 16, 16, 5)
    base = train_args(dptrain, data, f"{work}/opt", "--steps", "1")
    cases = [
        (["--channels", "4294967299"], "'channels'"),   # became 3 by int truncation
        (["--max-skip-rate", "nan"], "'max-skip-rate'"),   # NaN disabled the skip guard
        (["--lr", "inf"], "'lr'"),
        (["--lr", "-inf"], "'lr'"),
        (["--hflip", "NaN"], "'hflip'"),
        (["--price-per-hour", "nan"], "'price-per-hour'"),
        (["--threads", "100000"], "CPU(s) this process may run on"),   # crashed in libgomp
        (["--loader-threads", "100000"], "'loader-threads'"),
        (["--steps", "-1"], "'steps'"),
        (["--epochs", "-3"], "'epochs'"),
        (["--batch", "2.5"], "'batch'"),
        (["--batch", "99999999999999999999"], "'batch'"),
        (["--image-size", "9223372036854775808"], "'image-size'"),
        (["--seed", "-1"], "'seed'"),
        (["--dropout", "1"], "'dropout'"),
        (["--label-smoothing", "1"], "'label-smoothing'"),
        (["--warmup-epochs", "1e39"], "'warmup-epochs'"),   # beyond FLT_MAX
        (["--accum", "0"], "'accum'"),
        (["--cnn-width", "-8"], "'cnn-width'"),
        (["--small-stem", "2"], "'small-stem'"),
        (["--bucket-mb", "0"], "'bucket-mb'"),
    ]
    for extra, needle in cases:
        expect(base + extra, 2, [needle], f"train {' '.join(extra)}", absent=["step 1/"])
    # The same checks on the other commands (one option table parser).
    weights = f"{work}/none.safetensors"
    other = [
        ([dptrain, "eval", "--weights", weights, "--data", f"{data}/val-*.h5", "--batch", "0"], "'batch'"),
        ([dptrain, "eval", "--weights", weights, "--data", f"{data}/val-*.h5", "--threads", "100000"], "'threads'"),
        ([dptrain, "eval", "--weights", weights, "--data", f"{data}/val-*.h5", "--batch", "4294967297x"], "'batch'"),
        ([dptrain, "eval", "--data", f"{data}/val-*.h5"], "'weights' is required"),
        ([dptrain, "study", "--results", "a.json", "--budget-usd", "nan"], "'budget-usd'"),
        ([dptrain, "study", "--results", "a.json", "--images", "-5"], "'images'"),
        ([dptrain, "info", "--model", "cnn", "--channels", "4294967299"], "'channels'"),
        ([dptrain, "info", "--model", "cnn", "--batch", "-1"], "'batch'"),
        ([dptrain, "data", "synth", "--preset", "shopsight5", "--count", "-5", "--out", f"{work}/x"], "'count'"),
        ([dptrain, "data", "synth", "--preset", "shopsight5", "--count", "5", "--out", f"{work}/x",
          "--corrupt-frac", "nan"], "'corrupt-frac'"),
        ([dptrain, "data", "pack", "--csv", "x.csv", "--out", f"{work}/x", "--quality", "101"], "'quality'"),
        ([dptrain, "data", "import-idx", "--images", "a", "--labels", "b", "--out", "c", "--shard-size", "0"],
         "'shard-size'"),
        ([dptrain, "data", "verify", "--threads", "0", f"{data}/val-00000.h5"], "'threads'"),
    ]
    for args, needle in other:
        expect(args, 2, [needle], " ".join(args[1:3] + args[-2:]))


# ---- config files ----------------------------------------------------------------------------------
def configfiles(dptrain, make, work):
    data = shards(make, f"{work}/data", 64, 16, 16, 5)
    os.makedirs(work, exist_ok=True)
    base = train_args(dptrain, data, f"{work}/cfg", "--steps", "1")
    long_line = f"{work}/long.ini"
    with open(long_line, "w") as f:   # its tail used to become a live setting
        f.write("val = " + "x" * 4100 + "batch = 7\n")
    expect(base + ["--config", long_line], 2, ["longer than 4095"], "config line longer than the buffer")
    expect(base + ["--config", work], 2, ["is a directory"], "config on a directory")
    expect(base + ["--config", "/dev/zero"], 2, ["character device"], "config on /dev/zero (hung)", timeout=30)
    fifo = f"{work}/fifo.ini"
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    expect(base + ["--config", fifo], 2, ["FIFO"], "config on a FIFO", timeout=30)
    nul = f"{work}/nul.ini"
    with open(nul, "wb") as f:
        f.write(b"steps = 1\nlr = 0.1\x00\nbatch = 7\n")
    expect(base + ["--config", nul], 2, ["NUL byte"], "config with a NUL byte")
    big = f"{work}/big.ini"
    with open(big, "w") as f:
        f.write(("# comment\n" * 120000))
    expect(base + ["--config", big], 2, ["limit"], "config file over 1 MiB")
    bad = f"{work}/bad.ini"
    with open(bad, "w") as f:
        f.write("steps = 1\nthreads = 4294967297\n")
    expect(base + ["--config", bad], 2, ["'threads'", "line 2"], "config value out of range names the line")
    good = f"{work}/good.ini"
    with open(good, "w") as f:
        f.write("\ufeff# a BOM, comments and a quoted value\r\n[run]\r\nlr = \"0.05\"  # inline\r\nsteps = 1\r\n")
    expect(base + ["--config", good], 0, ["step 1/1"], "config with BOM, CRLF, quotes is read")


# ---- batch checked before allocation -------------------------------------------------------------
def batch(dptrain, make, work):
    data = shards(make, f"{work}/data", 64, 16, 16, 5)
    # A helper process runs dptrain and reports its peak RSS (RUSAGE_CHILDREN of a fresh process).
    prog = ("import resource, subprocess, sys, time\n"
            "t = time.time()\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)\n"
            "print(p.stdout)\n"
            "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'SECS', time.time() - t)\n"
            "sys.exit(p.returncode)\n")
    args = train_args(dptrain, data, f"{work}/bigbatch", "--steps", "1", "--image-size", "224")
    args[args.index("--batch") + 1] = "1000000"
    rc, out, secs = run([sys.executable, "-c", prog] + args, timeout=120)
    kb = int(out.split("MAXRSS_KB")[1].split()[0]) if "MAXRSS_KB" in out else 1 << 40
    # Refused either by the memory plan (train/memfit, before the loaders) or
    # by the loader's batch-vs-data check: both name 'batch' and the reason.
    check(rc == 2 and "'batch'" in out and ("needs 1000000 sample" in out or "of memory per rank as planned" in out)
          and kb < 1024 * 1024,
          f"--batch 1000000 refused before allocating (exit {rc}, peak RSS {kb / 1024:.0f} MiB, {secs:.1f} s)", out)
    args = [dptrain, "eval", "--weights", f"{work}/w.safetensors", "--data", f"{data}/val-*.h5", "--batch", "1000000"]
    # eval clamps its batch to the samples (it pads, drop_last = 0): needs a weights file first.
    rc, out, _ = run(train_args(dptrain, data, f"{work}/wrun", "--steps", "1"))
    check(rc == 0, "a 1-step run for eval's weights", out)
    args[3] = f"{work}/wrun/model.safetensors"
    rc, out, secs = run([sys.executable, "-c", prog] + args + ["--out", f"{work}/wrun"])
    kb = int(out.split("MAXRSS_KB")[1].split()[0]) if "MAXRSS_KB" in out else 1 << 40
    check(rc == 0 and "(16 samples)" in out and kb < 1024 * 1024,
          f"eval --batch 1000000 clamps to the 16 samples (exit {rc}, peak RSS {kb / 1024:.0f} MiB)", out)
    # accumulation counts too: batch 4 x accum 20 > 64 samples.
    expect(train_args(dptrain, data, f"{work}/acc", "--steps", "1", "--accum", "20"), 2, ["'batch'", "accumulation"],
           "batch x accum larger than the data")


# ---- class names compared, not only counted ------------------------------------------------------
def set_names(src, dst, names):
    import h5py
    import numpy as np
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["class_names"] = np.array(names, dtype=h5py.string_dtype())


def classnames(dptrain, make, work):
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("skip: no h5py")
        sys.exit(77)
    data = shards(make, f"{work}/data", 64, 16, 16, 5)
    names = ["ok", "blurry", "watermark", "wrong_background", "other"]
    perm = ["blurry", "ok", "watermark", "wrong_background", "other"]
    p = f"{work}/perm"
    os.makedirs(p, exist_ok=True)
    shutil.copy(f"{data}/train-00000.h5", f"{p}/train-00000.h5")
    set_names(f"{data}/train-00001.h5", f"{p}/train-00001.h5", perm)
    set_names(f"{data}/val-00000.h5", f"{p}/val-00000.h5", perm)
    shutil.copy(f"{data}/val-00000.h5", f"{p}/val-same.h5")
    expect(train_args(dptrain, p, f"{work}/cn1", "--steps", "1"), 2, ["'train'", "same classes", "class 0 is 'ok'"],
           "train shards with permuted class names", absent=["step 1/"])
    args = train_args(dptrain, data, f"{work}/cn2", "--steps", "1", "--val", f"{p}/val-00000.h5")
    expect(args, 2, ["'val'", "class 0 is 'ok' in the training shards but 'blurry' in the val shards"],
           "val shards with permuted class names", absent=["step 1/"])
    rc, out, _ = run(train_args(dptrain, data, f"{work}/cn3", "--steps", "1"))
    check(rc == 0, "a run for the weights", out)
    expect([dptrain, "eval", "--weights", f"{work}/cn3/model.safetensors", "--data", f"{p}/val-00000.h5"], 2,
           ["'data'", "classes the weights were trained on"], "eval data with permuted class names")
    expect([dptrain, "eval", "--weights", f"{work}/cn3/model.safetensors", "--data", f"{p}/val-same.h5"], 0,
           ["macro-F1"], "eval data with the same class names")
    _ = names


# ---- skipped records: every one named, rate checked at every log interval -------------------------
def skips(dptrain, make, work):
    data = shards(make, f"{work}/corrupt10", 64, 16, 16, 5, 10)   # every 10th record corrupt
    out = f"{work}/sk1"
    rc, o, _ = run(train_args(dptrain, data, out, "--epochs", "2", "--max-skip-rate", "0.2"), np_=2)
    check(rc == 0, "2-rank run over corrupt records", o)
    with open(f"{out}/results.json") as f:
        res = json.load(f)
    import csv
    with open(f"{out}/skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    want = {1000 + i for i in range(64) if i % 10 == 9}
    got = {int(r["id"]) for r in rows}
    check(len(rows) == res["data"]["skipped"] and res["data"]["skipped"] > 0,
          f"skipped.csv has a row per skip ({len(rows)} rows, results.json says {res['data']['skipped']})")
    check(got <= want and len(got) >= len(want) - 1, f"skipped ids {sorted(got)} are the corrupt ones {sorted(want)}")
    check(all(r["file"].endswith(".h5") and r["reason"] and r["rank"] in ("0", "1") and r["epoch"] in ("0", "1")
              for r in rows), "each row names rank, epoch, file, record and reason")
    recs = {(os.path.basename(r["file"]), int(r["record"])) for r in rows}
    ok = all((fn == "train-00000.h5" and rec % 10 == 9) or (fn == "train-00001.h5" and (rec + 32) % 10 == 9)
             for fn, rec in recs)
    check(ok, f"record indices match the files ({sorted(recs)[:6]} ...)")
    # 20 % corrupt in a 2400-record set: the limit must stop the run at a log interval long before the
    # epoch end (300 steps), once 1000 records were read.
    big = shards(make, f"{work}/corrupt5", 2400, 16, 16, 5, 5)
    rc, o, _ = run(train_args(dptrain, big, f"{work}/sk2", "--epochs", "1", "--batch", "8", "--log-every", "10"))
    m = re.search(r"skipped as corrupt by step (\d+)", o)
    step = int(m.group(1)) if m else -1
    check(rc == 2 and "max-skip-rate" in o and 0 < step < 300,
          f"skip rate judged at a log interval: stopped at step {step} of 300 (exit {rc})", o)
    n = sum(1 for _ in open(f"{work}/sk2/skipped.csv")) - 1
    check(n > 0, f"skipped.csv of the stopped run lists {n} records")
    # Default 5 %: 2 % corrupt (as ShopLens, as `data synth` makes) trains through.
    d2 = shards(make, f"{work}/corrupt50", 200, 16, 16, 5, 50)
    rc, o, _ = run(train_args(dptrain, d2, f"{work}/sk3", "--epochs", "1"))
    check(rc == 0, "2 % corrupt records pass the default --max-skip-rate", o)


# ---- empty split ----------------------------------------------------------------------------------
def emptyval(dptrain, make, work):
    data = shards(make, f"{work}/noval", 64, 0, 16, 5)
    out = f"{work}/ev"
    rc, o, _ = run(train_args(dptrain, data, out, "--steps", "2", "--val", f"{data}/val-*.h5"))
    check(rc == 0, "training with an empty val split", o)
    with open(f"{out}/results.json") as f:
        res = json.load(f)
    q = res["quality"]
    check(q["evaluated"] and q["samples"] == 0 and q["macro_f1"] is None and q["accuracy"] is None
          and q["val_loss"] is None and res["macro_f1"] is None and all(x is None for x in q["f1"]),
          f"empty val split gives null metrics: {json.dumps({k: q[k] for k in ('samples', 'macro_f1', 'accuracy')})}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import check_results_schema
    errs = check_results_schema.check(res, "train", 1)
    check(not errs, f"results.json with an empty split passes the schema check {errs}")
    rc, o, _ = run([dptrain, "eval", "--weights", f"{out}/model.safetensors", "--data", f"{data}/val-*.h5"])
    with open(f"{out}/eval_results.json") as f:
        ev = json.load(f)
    check(rc == 0 and ev["macro_f1"] is None and ev["quality"]["samples"] == 0,
          f"eval on an empty split: exit {rc}, macro_f1 {ev['macro_f1']}", o)


# ---- eval's output and weights checks -------------------------------------------------------------
def evalout(dptrain, make, work):
    data = shards(make, f"{work}/data", 64, 16, 16, 5)
    rc, o, _ = run(train_args(dptrain, data, f"{work}/eo", "--steps", "1"))
    check(rc == 0, "a run for the weights", o)
    w = f"{work}/eo/model.safetensors"
    missing = f"{work}/no/such/dir"
    expect([dptrain, "eval", "--weights", w, "--data", f"{data}/val-*.h5", "--out", missing], 2, [missing],
           "eval --out into a missing directory exits non-zero naming the path")
    check(not os.path.exists(missing), "and does not create it")
    # NaN in the weights: refused unless allowed.
    import struct
    b = bytearray(open(w, "rb").read())
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    name = next(k for k, v in hdr.items() if k != "__metadata__" and v["dtype"] == "F32")
    lo = hdr[name]["data_offsets"][0]
    b[8 + n + lo:8 + n + lo + 4] = struct.pack("<f", float("nan"))
    bad = f"{work}/eo/nan.safetensors"
    open(bad, "wb").write(b)
    expect([dptrain, "eval", "--weights", bad, "--data", f"{data}/val-*.h5"], 2, ["NaN", name],
           "eval refuses NaN weights")
    expect([dptrain, "eval", "--weights", bad, "--data", f"{data}/val-*.h5", "--allow-nonfinite-weights"], 0,
           ["wrote"], "eval --allow-nonfinite-weights loads them")
    # A truncated file and trailing bytes.
    open(f"{work}/eo/trunc.safetensors", "wb").write(bytes(b[:len(b) // 2]))
    expect([dptrain, "eval", "--weights", f"{work}/eo/trunc.safetensors", "--data", f"{data}/val-*.h5"], 2,
           ["not a valid safetensors file"], "eval refuses a truncated weights file")
    open(f"{work}/eo/trail.safetensors", "wb").write(bytes(open(w, "rb").read()) + b"\0" * 8)
    expect([dptrain, "eval", "--weights", f"{work}/eo/trail.safetensors", "--data", f"{data}/val-*.h5"], 2,
           ["trailing bytes"], "eval refuses trailing bytes")


# ---- --version, help, exit codes --------------------------------------------------------------------
def cli(dptrain, make, work):
    expect([dptrain, "--version"], 0, ["dptrain "], "--version")
    expect([dptrain, "version"], 0, ["dptrain "], "version")
    expect([dptrain, "help"], 0, ["Exit status: 0 ok, 1 runtime failure, 2 bad input"], "help")
    for c in ("train", "eval", "info", "study", "data"):
        expect([dptrain, "help", c], 0, ["usage: dptrain " + c], f"help {c}")
        expect([dptrain, c, "--help"], 0, ["usage: dptrain " + c], f"{c} --help")
    expect([dptrain, "nosuch"], 2, ["unknown command"], "unknown command")
    expect([dptrain], 2, ["usage"], "no command")
    expect([dptrain, "train", "--no-such-flag", "1"], 2, ["unknown option '--no-such-flag'"], "train unknown flag")
    expect([dptrain, "eval", "--weights"], 2, ["needs a value"], "eval flag without a value")
    expect([dptrain, "study", "--results"], 2, ["at least one value"], "study --results without files")
    expect([dptrain, "study", "--results", f"{work}/none.json"], 2, ["bad input"], "study on a missing results file")
    expect([dptrain, "info", "--model", "nosuchnet"], 2, ["'model'"], "info unknown model")
    expect([dptrain, "data", "nosuch"], 2, ["unknown tool"], "data unknown tool")
    for t in ("synth", "pack", "import-idx", "verify", "inspect"):
        expect([dptrain, "data", t, "--help"], 0, ["usage: dptrain data " + t], f"data {t} --help")
        expect([dptrain, "data", t, "--bogus"], 2, [], f"data {t} --bogus")
    expect([dptrain, "data", "verify", f"{work}/none.h5"], 2, ["SCHEMA_ERROR"], "verify on a missing shard")
    expect([dptrain, "data", "import-idx", "--images", f"{work}/none", "--labels", f"{work}/none", "--out",
            f"{work}/idx"], 2, [], "import-idx on missing files")


# ---- pack --csv: RFC 4180 -----------------------------------------------------------------------------
def pack_csv(dptrain, make, work):
    try:
        from PIL import Image
    except ImportError:
        print("skip: no PIL")
        sys.exit(77)
    root = f"{work}/csvpack"
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(f"{root}/img, with comma", exist_ok=True)
    names = []
    for i in range(24):
        p = f"img, with comma/pic \"{i}\".png"
        Image.new("RGB", (20, 16), (10 * i, 5, 100)).save(f"{root}/{p}")
        names.append(p)
    labels = ["good, sharp" if i % 2 else "say \"blurry\"" for i in range(23)] + ["rare"]
    with open(f"{root}/manifest.csv", "wb") as f:
        f.write(b"\xef\xbb\xbfpath,label,seller_tier\r\n")
        for i, (p, lab) in enumerate(zip(names, labels)):
            q = p.replace('"', '""')
            ql = lab.replace('"', '""')
            f.write(f"\"{q}\",\"{ql}\",{i % 4}\r\n".encode())
    out = f"{root}/out"
    rc, o, _ = run([dptrain, "data", "pack", "--csv", f"{root}/manifest.csv", "--out", out, "--val-frac", "0",
                    "--test-frac", "0"])
    check(rc == 0 and "24 files, 3 classes" in o, f"pack reads quoted fields with commas and quotes, BOM, CRLF "
          f"(exit {rc})", o)
    check("label 'rare' has 1 image(s), fewer than --min-class-count 10" in o, "pack warns about a rare label", o)
    try:
        import h5py
        with h5py.File(f"{out}/train-00000.h5", "r") as f:
            cn = [x.decode() if isinstance(x, bytes) else x for x in f.attrs["class_names"]]
            tiers = sorted(set(f["meta/seller_tier"][:].tolist()))
        check(cn == ["good, sharp", "rare", "say \"blurry\""] and tiers == [0, 1, 2, 3],
              f"class names and metadata as written: {cn}, tiers {tiers}")
    except ImportError:
        pass
    bads = [
        ("unterminated.csv", "path,label\n\"a.png,x\n", "unterminated quoted field"),
        ("junk.csv", "path,label\n\"a.png\"x,y\n", "after a closing quote"),
        ("midquote.csv", "path,label\na\"b.png,x\n", "quote inside an unquoted field"),
        ("fields.csv", "path,label\na.png,x,extra\n", "3 fields, the header has 2"),
        ("nohdr.csv", "file,class\na.png,x\n", "needs 'path' and 'label'"),
        ("meta.csv", "path,label,width\na.png,x,wide\n", "not an integer"),
    ]
    for name, text, needle in bads:
        with open(f"{root}/{name}", "w") as f:
            f.write(text)
        expect([dptrain, "data", "pack", "--csv", f"{root}/{name}", "--out", f"{root}/o2"], 2, [needle],
               f"pack refuses {name}")
    with open(f"{root}/nul.csv", "wb") as f:
        f.write(b"path,label\na.png,x\x00y\n")
    expect([dptrain, "data", "pack", "--csv", f"{root}/nul.csv", "--out", f"{root}/o2"], 2, ["NUL"],
           "pack refuses a NUL byte")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    group, dptrain, make, work = sys.argv[1:]
    # A fresh work directory: a file left by an earlier build (a model.safetensors
    # this build no longer writes) must not make a check pass.
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    groups = {"options": options, "configfiles": configfiles, "batch": batch, "classnames": classnames,
              "skips": skips, "emptyval": emptyval, "evalout": evalout, "cli": cli, "csv": pack_csv}
    if group not in groups:
        print(f"unknown group {group}")
        return 2
    groups[group](dptrain, make, work)
    print(f"{group}: {'OK' if not FAILS else str(len(FAILS)) + ' failure(s): ' + '; '.join(FAILS)}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
