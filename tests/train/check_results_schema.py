#!/usr/bin/env python3
"""Validates a dptrain results.json against schema v1 (docs/results-schema.md).

usage: check_results_schema.py results.json [--kind train|eval] [--world N]
Exits non-zero and lists every problem when the file does not conform.
"""
import json
import sys

NUM = (int, float)
NUM_OR_NULL = (int, float, type(None))

# key path -> allowed types
TRAIN_REQUIRED = {
    "schema_version": (int,),
    "kind": (str,),
    "created_utc": (str,),
    "world_size": (int,),
    "images_per_s": NUM_OR_NULL,
    "scaling_efficiency": NUM_OR_NULL,
    "comm_hidden_fraction": NUM_OR_NULL,
    "cost_usd": NUM_OR_NULL,
    "projected_cost_usd": NUM_OR_NULL,
    "macro_f1": NUM_OR_NULL,
    "accuracy": NUM_OR_NULL,
    "per_class_f1": (list,),
    "peak_rss_bytes": (int,),
    "mfu": NUM_OR_NULL,
    "config": (dict,),
    "config.model": (str,),
    "config.batch": (int,),
    "hardware": (dict,),
    "hardware.name": (str,),
    "hardware.peak_flops_per_rank": NUM_OR_NULL,
    "hardware.price_per_rank_hour": NUM_OR_NULL,
    "hardware.price_is_estimate": (bool,),
    "hardware.cores_per_rank": (int,),
    "model.name": (str,),
    "model.params": (int,),
    "model.flops_per_image_fwd": (int,),
    "throughput.images_per_s": NUM_OR_NULL,
    "throughput.global_batch": (int,),
    "throughput.steps": (int,),
    "throughput.timed_steps": (int,),
    "throughput.train_wall_s": NUM,
    "throughput.total_wall_s": NUM,
    "timings.step_s": NUM,
    "timings.data_wait_s": NUM,
    "timings.forward_backward_s": NUM,
    "timings.comm_wait_s": NUM,
    "timings.optimizer_s": NUM,
    "timings.per_rank": (list,),
    "baseline.source": (str,),
    "baseline.images_per_s": NUM_OR_NULL,
    "baseline.macro_f1": NUM_OR_NULL,
    "baseline.scaling_efficiency": NUM_OR_NULL,
    "cost.price_per_rank_hour": NUM_OR_NULL,
    "cost.rank_hours": NUM,
    "cost.cost_usd": NUM_OR_NULL,
    "cost.project_images": (int,),
    "cost.project_epochs": (int,),
    "cost.projected_time_s": NUM_OR_NULL,
    "cost.projected_cost_usd": NUM_OR_NULL,
    "quality.evaluated": (bool,),
    "memory.peak_rss_bytes": (int,),
    "memory.per_rank_peak_rss_bytes": (list,),
    "data.decoded": (int,),
    "data.skipped": (int,),
    "data.skip_rate": NUM,
}
# Study fields of training runs (docs/study.md): workload, step-time spread, link, build, machine.
STUDY = {
    "model.image_size": (int,),
    "model.batch_per_rank": (int,),
    "step_stats.n": (int,),
    "step_stats.cv": NUM_OR_NULL,
    "step_stats.median_s": NUM_OR_NULL,
    "baseline_step_stats.n": (int,),
    "baseline_step_stats.cv": NUM_OR_NULL,
    "comm.grad_bytes": NUM,
    "comm.allreduce_ref_s": NUM_OR_NULL,
    "comm.bus_bandwidth_Bps": NUM_OR_NULL,
    "build.version": (str,),
    "build.cuda_compiled": (bool,),
    "build.device": (str,),
    "machine.cpu_model": (str,),
    "machine.cpus_online": (int,),
    "machine.cpu_share_mean": NUM_OR_NULL,
    "machine.load_1m_start": NUM_OR_NULL,
    "machine.load_1m_end": NUM_OR_NULL,
}
QUALITY = {
    "quality.samples": (int,),
    "quality.accuracy": NUM_OR_NULL,   # null exactly when samples == 0 (checked below)
    "quality.macro_f1": NUM_OR_NULL,
    "quality.val_loss": NUM_OR_NULL,
    "quality.val_objective": NUM_OR_NULL,
    "quality.excluded_corrupt": (int,),
    "quality.class_names": (list,),
    "quality.precision": (list,),
    "quality.recall": (list,),
    "quality.f1": (list,),
    "quality.support": (list,),
    "quality.confusion": (list,),
}
EVAL_REQUIRED = {k: v for k, v in TRAIN_REQUIRED.items()
                 if k.split(".")[0] in ("schema_version", "kind", "created_utc", "world_size", "macro_f1",
                                        "accuracy", "per_class_f1", "quality", "model")}


def get(doc, path):
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def check(doc, kind=None, world=None):
    errs = []
    k = kind or doc.get("kind")
    req = dict(TRAIN_REQUIRED if k == "train" else EVAL_REQUIRED)
    if k == "train":
        req.update(STUDY)
    if doc.get("quality", {}).get("evaluated"):
        req.update(QUALITY)
    for path, types in req.items():
        try:
            v = get(doc, path)
        except KeyError:
            errs.append(f"missing {path}")
            continue
        # bool is an int subclass in Python: only accept it where bool is listed.
        if isinstance(v, bool) and bool not in types:
            errs.append(f"{path}: bool where {types} expected")
        elif not isinstance(v, types):
            errs.append(f"{path}: {type(v).__name__} where {[t.__name__ for t in types]} expected")
    if doc.get("schema_version") != 1:
        errs.append(f"schema_version {doc.get('schema_version')} != 1")
    if kind and doc.get("kind") != kind:
        errs.append(f"kind {doc.get('kind')} != {kind}")
    if world is not None and doc.get("world_size") != world:
        errs.append(f"world_size {doc.get('world_size')} != {world}")
    q = doc.get("quality", {})
    if q.get("evaluated"):
        C = len(q.get("class_names", []))
        for key in ("precision", "recall", "f1", "support"):
            if len(q.get(key, [])) != C:
                errs.append(f"quality.{key} has {len(q.get(key, []))} entries, {C} classes")
        cm = q.get("confusion", [])
        if len(cm) != C or any(len(r) != C for r in cm):
            errs.append("quality.confusion is not C x C")
        elif sum(map(sum, cm)) != q.get("samples"):
            errs.append("confusion matrix total != quality.samples")
        empty = q.get("samples") == 0
        for key in ("accuracy", "macro_f1", "val_loss"):
            if (q.get(key) is None) != empty:
                errs.append(f"quality.{key} is {q.get(key)!r} with {q.get('samples')} samples (null iff 0)")
        if (doc.get("macro_f1") is None) != empty:
            errs.append(f"macro_f1 is {doc.get('macro_f1')!r} with {q.get('samples')} samples (null iff 0)")
        if doc.get("per_class_f1") != q.get("f1"):
            errs.append("per_class_f1 != quality.f1")
        if doc.get("macro_f1") != q.get("macro_f1"):
            errs.append("macro_f1 != quality.macro_f1")
    if k == "train":
        ws = doc.get("world_size", 0)
        if doc.get("build", {}).get("device") not in ("cpu", "cuda"):
            errs.append("build.device is not cpu or cuda")
        cv = doc.get("step_stats", {}).get("cv")
        if cv is not None and cv < 0:
            errs.append("step_stats.cv < 0")
        share = doc.get("machine", {}).get("cpu_share_mean")
        if share is not None and not 0 <= share <= 1:
            errs.append("machine.cpu_share_mean outside [0, 1]")
        if len(doc.get("timings", {}).get("per_rank", [])) != ws:
            errs.append("timings.per_rank length != world_size")
        if len(doc.get("memory", {}).get("per_rank_peak_rss_bytes", [])) != ws:
            errs.append("memory.per_rank_peak_rss_bytes length != world_size")
    return errs


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    kind = world = None
    if "--kind" in args:
        kind = args[args.index("--kind") + 1]
    if "--world" in args:
        world = int(args[args.index("--world") + 1])
    with open(args[0]) as f:
        doc = json.load(f)
    errs = check(doc, kind, world)
    for e in errs:
        print(f"schema: {args[0]}: {e}", file=sys.stderr)
    if not errs:
        print(f"schema: {args[0]}: ok")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
