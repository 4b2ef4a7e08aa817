#!/usr/bin/env python3
"""dptrain tracking and registry against a real MLflow server.

Starts `mlflow server` from the project's venv on 127.0.0.1 (free port, SQLite
backend store, local artifact root) and always stops it. Then:

  A  a tracked 2-rank training: the MLflow Python client reads back the params
     (= config.ini), the metric histories (= steps.csv / results.json, no
     duplicate steps), the tags (= lineage.json, build commit, world size) and
     the artifacts (byte-equal to OUT's files);
  B  an untracked, barely trained model;
  registry: register both with --test (test metrics = `dptrain eval` on the
     same shards), promote the better one, a promotion below the production
     model and one below --min-macro-f1 are refused (exit 1, alias unchanged),
     --force promotes and is logged;
  C  (first, before the server starts) a training against the server's
     address with nothing listening: succeeds, leaves a spool; `track sync`
     once the server is up sends it; a second sync sends nothing; no metric
     entry twice;
  D  (while the server starts) a training against a server that accepts
     connections and never answers (--mlflow-timeout 30): finishes in less
     than one call's timeout, so no step waited for the server; its spool then
     syncs to the real server.
The server starts once: its start-up (6 s idle, 25 s on a loaded 2-core
machine) is the largest single cost of the test.
"""
import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def fail(msg, out=""):
    print(f"FAIL: {msg}", flush=True)
    if out:
        print(out[-4000:], flush=True)
    sys.exit(1)


def ensure_venv(venv):
    """Re-exec under the venv's python (mlflow comes from PyPI, .ci/venv.sh)."""
    try:
        import mlflow  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        fail(f"no MLflow: the project's venv {venv} is missing; create it with .ci/venv.sh")
    if os.environ.get("DPTRAIN_E2E_REEXEC"):
        fail(f"{py} cannot import mlflow; re-run .ci/venv.sh")
    os.environ["DPTRAIN_E2E_REEXEC"] = "1"
    os.execv(py, [py] + sys.argv)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, venv, work, port):
        self.cmd = [os.path.join(venv, "bin", "mlflow"), "server", "--backend-store-uri",
                    f"sqlite:///{work}/mlflow.db", "--artifacts-destination", f"{work}/artifacts",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        self.uri = f"http://127.0.0.1:{port}"
        self.log = f"{work}/server.log"
        self.p = None

    def launch(self):
        f = open(self.log, "a")
        self.p = subprocess.Popen(self.cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_up(self):
        for _ in range(240):
            if self.p.poll() is not None:
                fail(f"mlflow server exited with {self.p.returncode}", open(self.log).read())
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        fail("mlflow server did not answer /health in 120 s", open(self.log).read())

    def stop(self):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.p = None


def run(cmd, timeout=240, env=None):
    t = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout, time.time() - t


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", required=True)
    ap.add_argument("--dptrain", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--git-commit", required=True)
    ap.add_argument("--version", required=True)
    a = ap.parse_args()
    ensure_venv(os.environ.get("DPTRAIN_VENV", a.venv))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    from mlflow.tracking import MlflowClient

    os.makedirs(a.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=a.work)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
    dp = a.dptrain
    srv = Server(a.venv, work, free_port())
    hang = None

    def on_term(signum, frame):  # ctest's timeout: still stop the server
        srv.stop()
        sys.exit(1)

    signal.signal(signal.SIGTERM, on_term)
    try:
        data = f"{work}/data"
        rc, out, _ = run([dp, "data", "synth", "--preset", "shopsight5", "--count", "480", "--out", data,
                          "--shard-size", "160", "--size-min", "40", "--size-max", "56", "--seed", "3"])
        if rc:
            fail("data synth", out)
        test_glob = f"{data}/test-*.h5"
        mpi = ["mpirun", "-np", "2", "--oversubscribe"]
        common = ["train", "--model", "cnn", "--image-size", "32", "--train", f"{data}/train-*.h5", "--val",
                  f"{data}/val-*.h5", "--batch", "8", "--threads", "1", "--loader-threads", "1",
                  "--max-skip-rate", "0.2", "--log-every", "2"]

        # Bad tracking settings stop the run before any work (exit 2, naming the setting).
        for bad_args, setting in ((["--mlflow-uri", "file:./mlruns"], "mlflow-uri"),
                                  (["--mlflow-timeout", "0"], "mlflow-timeout")):
            rc, out, _ = run([dp] + common + ["--out", f"{work}/bad", "--steps", "1"] + bad_args)
            if rc != 2 or f"setting '{setting}'" not in out:
                fail(f"{bad_args}: exit {rc}, want 2 naming '{setting}'", out)
        # ---- C: the server is not up yet (nothing listens on its port) -------------------
        C = f"{work}/C"
        rc, out, tc = run(mpi + [dp] + common + ["--out", C, "--steps", "8", "--eval-every", "4",
                                                 "--mlflow-uri", srv.uri, "--mlflow-experiment", "e2e"])
        if rc:
            fail(f"training C with the server down exited {rc}", out)
        if "track sync" not in out:
            fail("no hint to run `dptrain track sync`", out)
        spool = f"{C}/mlflow-spool"
        if not os.path.getsize(f"{spool}/records.jsonl") or json.load(open(f"{spool}/run.json"))["run_id"]:
            fail("C: no spool, or a run id although the server was down")
        rc, out, _ = run([dp, "track", "status", C])
        if rc or not re.search(r"pending records  [1-9]", out):
            fail("track status shows nothing pending", out)
        log(f"C trained in {tc:.1f} s with the server down; spool pending")
        srv.launch()   # D runs while the server starts
        # ---- D: a server that accepts and never answers --------------------------------------
        hang = socket.socket()
        hang.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hang.bind(("127.0.0.1", 0))
        hang.listen(64)   # never accept(): connections complete in the backlog and hang
        huri = f"http://127.0.0.1:{hang.getsockname()[1]}"
        D = f"{work}/D"
        rc, out, td = run(mpi + [dp] + common + ["--out", D, "--steps", "8", "--eval-every", "4",
                                                 "--mlflow-uri", huri, "--mlflow-timeout", "30"])
        if rc:
            fail(f"training D against a silent server exited {rc}", out)
        train_wall = json.load(open(f"{D}/results.json"))["throughput"]["train_wall_s"]
        if td >= 30:
            fail(f"training D took {td:.1f} s, not less than one 30 s call: training waited for the server", out)
        log(f"D: silent server, --mlflow-timeout 30: whole run {td:.1f} s (training loop {train_wall:.2f} s)")
        hang.close()
        hang = None
        srv.wait_up()
        log(f"mlflow server up at {srv.uri}")
        # ---- A: tracked live ------------------------------------------------------------
        A = f"{work}/A"
        rc, out, ta = run(mpi + [dp] + common + ["--out", A, "--steps", "24", "--eval-every", "12", "--lr", "0.05",
                                                 "--class-weights", "auto", "--mlflow-uri", srv.uri,
                                                 "--mlflow-experiment", "e2e", "--run-name", "weekly-A"])
        if rc:
            fail(f"training A exited {rc}", out)
        log(f"A trained in {ta:.1f} s")
        ident = json.load(open(f"{A}/mlflow-spool/run.json"))
        cursor = json.load(open(f"{A}/mlflow-spool/cursor.json"))["offset"]
        if cursor != os.path.getsize(f"{A}/mlflow-spool/records.jsonl"):
            fail(f"A's spool not fully shipped: cursor {cursor} of {os.path.getsize(f'{A}/mlflow-spool/records.jsonl')}", out)
        c = MlflowClient(srv.uri)
        r = c.get_run(ident["run_id"])
        if r.info.status != "FINISHED" or r.info.run_name != "weekly-A":
            fail(f"run status {r.info.status}, name {r.info.run_name}")
        if c.get_experiment(r.info.experiment_id).name != "e2e":
            fail("run is not in experiment e2e")
        # Params = the effective config.
        cfg = {}
        for line in open(f"{A}/config.ini"):
            m = re.match(r"^([a-z0-9-]+) = (.*)$", line.rstrip("\n"))
            if m:
                cfg[m.group(1)] = m.group(2)
        if r.data.params != cfg:
            diff = {k: (cfg.get(k), r.data.params.get(k)) for k in set(cfg) | set(r.data.params)
                    if cfg.get(k) != r.data.params.get(k)}
            fail(f"params differ from config.ini: {diff}")
        # Metric histories.
        rows = list(csv.DictReader(open(f"{A}/steps.csv")))
        res = json.load(open(f"{A}/results.json"))
        steps = [int(x["step"]) for x in rows]
        want_steps = [s for s in steps if s % 2 == 0]
        hist = c.get_metric_history(r.info.run_id, "train_loss")
        got = [(m.step, m.value) for m in hist]
        if [s for s, _ in got] != want_steps:
            fail(f"train_loss steps {[s for s, _ in got]} != {want_steps}")
        for s, v in got:
            mean = (float(rows[s - 2]["loss"]) + float(rows[s - 1]["loss"])) / 2   # interval of 2 steps
            if abs(v - mean) > 2e-6 * max(1, abs(mean)):
                fail(f"train_loss at step {s}: {v} != mean of steps.csv {mean}")
        lr = {m.step: m.value for m in c.get_metric_history(r.info.run_id, "lr")}
        for s in want_steps:
            if abs(lr[s] - float(rows[s - 1]["lr"])) > 1e-5 * abs(lr[s]):
                fail(f"lr at step {s}: {lr[s]} != {rows[s - 1]['lr']}")
        f1h = c.get_metric_history(r.info.run_id, "val_macro_f1")
        if [m.step for m in f1h] != [12, 24]:
            fail(f"val_macro_f1 at steps {[m.step for m in f1h]}, want [12, 24]")
        if abs(f1h[-1].value - res["macro_f1"]) > 1e-12:
            fail(f"last val_macro_f1 {f1h[-1].value} != results.json {res['macro_f1']}")
        names = res["quality"]["class_names"]
        for k, n in enumerate(names):
            h = c.get_metric_history(r.info.run_id, f"val_f1/{n}")
            if len(h) != 2 or abs(h[-1].value - res["per_class_f1"][k]) > 1e-12:
                fail(f"val_f1/{n}: {[(m.step, m.value) for m in h]} vs {res['per_class_f1'][k]}")
        if abs(r.data.metrics["images_per_s"] - res["images_per_s"]) > 1e-9 * res["images_per_s"]:
            fail("images_per_s metric != results.json")
        # Tags.
        lin = json.load(open(f"{A}/lineage.json"))
        t = r.data.tags
        want_tags = {"mlflow.source.git.commit": a.git_commit, "dptrain.version": a.version,
                     "dptrain.world_size": "2", "dptrain.data_fingerprint": lin["data_fingerprint"],
                     "dptrain.config_hash": lin["config_hash"], "dptrain.hardware": res["hardware"]["name"],
                     "dptrain.device": "cpu", "dptrain.spool_id": ident["spool_id"]}
        bad = {k: (v, t.get(k)) for k, v in want_tags.items() if t.get(k) != v}
        if bad:
            fail(f"tags (want, got): {bad}")
        if not re.match(r"^fnv1a64:[0-9a-f]{16}$", lin["data_fingerprint"]):
            fail(f"data fingerprint {lin['data_fingerprint']}")
        # Artifacts, byte-equal.
        arts = sorted(x.path for x in c.list_artifacts(r.info.run_id))
        for f in ["config.ini", "lineage.json", "model.safetensors", "results.json", "steps.csv"]:
            if f not in arts:
                fail(f"artifact {f} missing: {arts}")
            p = c.download_artifacts(r.info.run_id, f, tempfile.mkdtemp(dir=work))
            if sha256(p) != sha256(f"{A}/{f}"):
                fail(f"artifact {f} differs from {A}/{f}")
        nmetrics = sum(len(c.get_metric_history(r.info.run_id, k)) for k in r.data.metrics)
        log(f"A read back: {len(r.data.params)} params, {len(r.data.metrics)} metric keys "
            f"({nmetrics} entries), {len(t)} tags, {len(arts)} artifacts; run {r.info.run_id}")
        print(f"  train_loss history: {[(s, round(v, 4)) for s, v in got]}")
        print(f"  val_macro_f1 history: {[(m.step, round(m.value, 4)) for m in f1h]}")
        print(f"  tags: git {t['mlflow.source.git.commit'][:12]} version {t['dptrain.version']} "
              f"world {t['dptrain.world_size']} data {t['dptrain.data_fingerprint']}")

        # ---- B: untracked, barely trained -------------------------------------------------
        B = f"{work}/B"
        rc, out, _ = run(mpi + [dp] + common + ["--out", B, "--steps", "1", "--lr", "0.0001"])
        if rc:
            fail(f"training B exited {rc}", out)

        # ---- registry ------------------------------------------------------------------------
        env = dict(os.environ, MLFLOW_TRACKING_URI=srv.uri)
        f1 = {}
        for name, out_dir in (("A", A), ("B", B)):
            rc, out, _ = run([dp, "eval", "--weights", f"{out_dir}/model.safetensors", "--data", test_glob,
                              "--out", out_dir])
            if rc:
                fail(f"eval {name}", out)
            f1[name] = json.load(open(f"{out_dir}/eval_results.json"))["macro_f1"]
            rc, out, _ = run([dp, "registry", "register", out_dir, "--name", "shop-quality", "--test", test_glob],
                             env=env)
            if rc:
                fail(f"register {name} exited {rc}", out)
        log(f"registered A (test macro-F1 {f1['A']:.4f}) and B ({f1['B']:.4f})")
        vers = {v.run_id: v for v in c.search_model_versions("name='shop-quality'")}
        reg_a = json.load(open(f"{A}/registered.json"))
        if reg_a["run_id"] != ident["run_id"] or reg_a["version"] not in [v.version for v in vers.values()]:
            fail(f"registered.json of A: {reg_a}")
        if len(vers) != 2:
            fail(f"{len(vers)} versions registered, want 2")
        va = vers[ident["run_id"]]
        vb = [v for k, v in vers.items() if k != ident["run_id"]][0]
        for v, name, out_dir in ((va, "A", A), (vb, "B", B)):
            if abs(float(v.tags["test.macro_f1"]) - f1[name]) > 1e-6:
                fail(f"version of {name}: test.macro_f1 {v.tags['test.macro_f1']} != dptrain eval's {f1[name]}")
            lin_x = json.load(open(f"{out_dir}/lineage.json"))
            for k in ("data_fingerprint", "config_hash"):
                if v.tags.get(f"dptrain.{k}") != lin_x[k]:
                    fail(f"version of {name}: dptrain.{k} {v.tags.get(f'dptrain.{k}')} != lineage.json {lin_x[k]}")
            if v.tags.get("dptrain.git_sha") != a.git_commit or v.tags.get("dptrain.parent") != "none":
                fail(f"version of {name}: git/parent tags {v.tags}")
            p = c.download_artifacts(v.run_id, "model/model.safetensors", tempfile.mkdtemp(dir=work))
            if sha256(p) != sha256(f"{out_dir}/model.safetensors"):
                fail(f"version of {name}: registered weights differ from {out_dir}/model.safetensors")
        if f1["A"] == f1["B"]:
            fail(f"test setup: A and B score the same macro-F1 {f1['A']}; the gate cannot be told apart")
        good, worse = (va, vb) if f1["A"] > f1["B"] else (vb, va)
        promote = [dp, "registry", "promote", "--name", "shop-quality", "--alias", "production", "--test", test_glob]
        rc, out, _ = run(promote + ["--version", good.version, "--min-macro-f1", "0"], env=env)
        if rc or "gate passed" not in out:
            fail(f"promoting the better version {good.version} exited {rc}", out)
        if c.get_model_version_by_alias("shop-quality", "production").version != good.version:
            fail("production alias not on the better version")
        rc, out, _ = run(promote + ["--version", worse.version, "--min-macro-f1", "0"], env=env)
        if rc != 1 or "refused" not in out or f"version {good.version}" not in out:
            fail(f"promoting the worse version {worse.version} below production: exit {rc}, want 1 (refused)", out)
        if c.get_model_version_by_alias("shop-quality", "production").version != good.version:
            fail("a refused promotion moved the alias")
        print("  refused: " + [l for l in out.splitlines() if "refused" in l][0])
        if c.get_model_version("shop-quality", worse.version).tags.get("promotion.production.result") != "refused":
            fail("the refusal is not logged on the version")
        rc, out, _ = run(promote + ["--version", worse.version, "--min-macro-f1", "0.99"], env=env)
        if rc != 1 or "below --min-macro-f1" not in out:
            fail(f"promotion below --min-macro-f1: exit {rc}, want 1", out)
        rc, out, _ = run(promote + ["--version", worse.version, "--min-macro-f1", "0.99", "--force", "--reason",
                                    "e2e test of --force"], env=env)
        if rc or "FORCED" not in out:
            fail(f"--force exited {rc}", out)
        mv = c.get_model_version("shop-quality", worse.version)
        if (c.get_model_version_by_alias("shop-quality", "production").version != worse.version
                or c.get_model_version_by_alias("shop-quality", "production-previous").version != good.version
                or mv.tags.get("promotion.production.forced") != "true"
                or mv.tags.get("promotion.production.force_reason") != "e2e test of --force"):
            fail(f"--force: aliases or tags wrong: {mv.tags}")
        rc, out, _ = run([dp, "registry", "list", "--name", "shop-quality"], env=env)
        if rc or "production" not in out:
            fail("registry list", out)
        rc, out, _ = run([dp, "registry", "show", "--name", "shop-quality", "--alias", "production"], env=env)
        if rc or "promotion.production.forced" not in out:
            fail("registry show", out)
        log("registry: promotion passed, two refusals (below production, below --min-macro-f1), --force logged")

        # ---- C, later: the server is up now; sync sends the spool once ---------------------
        rc, out, _ = run([dp, "track", "sync", C])
        if rc or "nothing left to send" not in out:
            fail(f"track sync exited {rc}", out)
        run_c = json.load(open(f"{spool}/run.json"))["run_id"]
        rows_c = list(csv.DictReader(open(f"{C}/steps.csv")))
        rc_ = c.get_run(run_c)
        hist_c = {k: [(m.step, m.value, m.timestamp) for m in c.get_metric_history(run_c, k)] for k in rc_.data.metrics}
        if [s for s, _, _ in hist_c["train_loss"]] != [2, 4, 6, 8] or len(hist_c["val_macro_f1"]) != 2:
            fail(f"C after sync: train_loss {hist_c['train_loss']}, val_macro_f1 {hist_c['val_macro_f1']}")
        for k, h in hist_c.items():
            if len(set(s for s, _, _ in h)) != len(h):
                fail(f"C: duplicate steps in {k}: {h}")
        if rc_.info.status != "FINISHED" or "model.safetensors" not in [x.path for x in c.list_artifacts(run_c)]:
            fail(f"C after sync: status {rc_.info.status}, artifacts {[x.path for x in c.list_artifacts(run_c)]}")
        rc, out, _ = run([dp, "track", "sync", C])
        if rc or "sent 0 metric(s), 0 param(s), 0 tag(s), 0 file(s)" not in out:
            fail("a second sync sent something again", out)
        again = {k: [(m.step, m.value, m.timestamp) for m in c.get_metric_history(run_c, k)] for k in rc_.data.metrics}
        if again != hist_c:
            fail("metric histories changed after the second sync")
        n_c = sum(len(h) for h in hist_c.values())
        log(f"C synced: {n_c} metric entries in {len(hist_c)} histories, none twice; second sync sent nothing "
            f"({len(rows_c)} steps)")

        rc, out, _ = run([dp, "track", "sync", D, "--mlflow-uri", srv.uri])
        if rc:
            fail(f"sync of D to the real server exited {rc}", out)
        run_d = json.load(open(f"{D}/mlflow-spool/run.json"))["run_id"]
        hd = c.get_metric_history(run_d, "train_loss")
        if [m.step for m in hd] != [2, 4, 6, 8]:
            fail(f"D after sync: train_loss steps {[m.step for m in hd]}")
        log("D synced to the real server")
        print(f"test_track_mlflow: all checks passed in {time.time() - T0:.0f} s")
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)   # kept when a check fails, for a look
    finally:
        srv.stop()
        if hang:
            hang.close()


if __name__ == "__main__":
    main()
