#!/usr/bin/env python3
"""PyTorch peer of the GPU bundle's benchmark (run_all.sh), and its report.

  torch_bench.py probe
      torch / CUDA / cuDNN / NCCL versions and the device, one JSON line.
  torch_bench.py train --model resnet50|vit_b_16 --mode eager|compile
                 [--precision bf16|tf32] [--batch 256] [--steps 20] [--warmup 5]
      Training img/s on synthetic input (one fixed random batch, as
      bench_train --device cuda uses): ResNet-50 in channels_last with SGD
      momentum, ViT-B/16 (torchvision; its attention calls
      scaled_dot_product_attention) with AdamW; autocast for bf16. Timed over
      all steps between two synchronisations. Peak memory two ways: the
      caching allocator's max_memory_allocated, and device memory in use
      after the steps minus after context creation (the figure dptrain reports).
  torch_bench.py max-batch --model resnet50 --budget-gib 24 [--precision bf16]
      Largest batch whose training step fits under the budget, by bisection
      with torch.cuda.set_per_process_memory_fraction (the usual
      OOM-provoking search), 2 steps per probe.
  torch_bench.py report RESULTS_TSV [--hardware hardware.tsv]
      The results table (markdown) from run_all.sh's results.tsv.
"""
import argparse
import json
import os
import sys
import time


def _torch():
    import torch  # noqa: deferred so that `report` needs no torch
    return torch


def cmd_probe(a):
    torch = _torch()
    out = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    try:
        out["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception as e:  # noqa: BLE001 (report whatever the build lacks)
        out["nccl"] = "n/a (%s)" % e
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(device=p.name, sm="%d%d" % (p.major, p.minor), mem_gib=round(p.total_memory / 2**30, 1),
                   devices=torch.cuda.device_count())
    try:
        import torchvision
        out["torchvision"] = torchvision.__version__
    except Exception:  # noqa: BLE001
        out["torchvision"] = None
    print("RESULT_JSON " + json.dumps(out), flush=True)


def build(torch, name, classes):
    import torchvision
    if name == "resnet50":
        m = torchvision.models.resnet50(num_classes=classes)
        opt_kind = "sgd"
    elif name == "vit_b_16":
        m = torchvision.models.vit_b_16(num_classes=classes)
        opt_kind = "adamw"
    else:
        raise SystemExit("unknown model " + name)
    return m, opt_kind


def make_step(torch, model, opt_kind, x, y, precision, compiled):
    if opt_kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    fwd = torch.compile(model) if compiled else model
    use_amp = precision == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            loss = loss_fn(fwd(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def cmd_train(a):
    torch = _torch()
    if not torch.cuda.is_available():
        print("RESULT_JSON " + json.dumps({"error": "no CUDA device visible to torch"}))
        return 1
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    torch.zeros(1, device=dev)
    torch.cuda.synchronize()
    free0, total = torch.cuda.mem_get_info()
    model, opt_kind = build(torch, a.model, a.classes)
    cl = a.model == "resnet50"
    model = model.to(dev, memory_format=torch.channels_last) if cl else model.to(dev)
    model.train()
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=dev)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    step = make_step(torch, model, opt_kind, x, y, a.precision, a.mode == "compile")
    t_setup = time.perf_counter()
    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    t_setup = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    free1, _ = torch.cuda.mem_get_info()
    ips = a.batch * a.steps / dt
    print("RESULT_JSON " + json.dumps({
        "peer": "pytorch-" + a.mode, "torch": torch.__version__, "model": a.model, "precision": a.precision,
        "batch": a.batch, "steps": a.steps, "img_per_s": round(ips, 2), "step_ms": round(1e3 * dt / a.steps, 3),
        "warmup_s": round(t_setup, 1), "allocated_peak_bytes": torch.cuda.max_memory_allocated(),
        "reserved_peak_bytes": torch.cuda.max_memory_reserved(), "measured_bytes": free0 - free1,
        "loss": float(loss), "device": torch.cuda.get_device_name()}), flush=True)
    return 0


def cmd_max_batch(a):
    torch = _torch()
    torch.backends.cudnn.benchmark = False   # the search itself must not allocate benchmark workspaces
    dev = torch.device("cuda")
    torch.zeros(1, device=dev)
    total = torch.cuda.get_device_properties(0).total_memory
    frac = min(1.0, a.budget_gib * 2**30 / total)
    torch.cuda.set_per_process_memory_fraction(frac, 0)

    def fits(b):
        model = opt = x = y = None
        try:
            model, opt_kind = build(torch, a.model, a.classes)
            cl = a.model == "resnet50"
            model = model.to(dev, memory_format=torch.channels_last) if cl else model.to(dev)
            x = torch.randn(b, 3, a.image_size, a.image_size, device=dev)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            y = torch.randint(0, a.classes, (b,), device=dev)
            step = make_step(torch, model, opt_kind, x, y, a.precision, False)
            for _ in range(2):
                step()
            torch.cuda.synchronize()
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            del model, opt, x, y
            torch.cuda.empty_cache()

    lo, hi = 0, a.start
    t0 = time.perf_counter()
    probes = 0
    while fits(hi):          # grow until a batch fails
        probes += 1
        lo, hi = hi, hi * 2
        if hi > a.limit:
            break
    probes += 1
    while hi - lo > 1:       # bisection between the last fit and the first failure
        mid = (lo + hi) // 2
        probes += 1
        if fits(mid):
            lo = mid
        else:
            hi = mid
    print("RESULT_JSON " + json.dumps({
        "peer": "pytorch-bisection", "model": a.model, "precision": a.precision, "budget_gib": a.budget_gib,
        "max_batch": lo, "probes": probes, "search_s": round(time.perf_counter() - t0, 1)}), flush=True)
    return 0


# ---- report --------------------------------------------------------------------

def load_peaks(path):
    """bf16/tf32 dense peak TFLOP/s by hardware-table row name."""
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or line.startswith("name"):
                    continue
                c = line.rstrip("\n").split("\t")
                if len(c) >= 6 and c[1] == "gpu":
                    rows[c[0]] = {"fp32": float(c[3]), "tf32": float(c[4]), "bf16": float(c[5])}
    except OSError:
        pass
    return rows


def pick_peak(peaks, device):
    d = (device or "").lower()
    for key in ("h200", "h100", "a100", "l4", "a10"):
        if key in d:
            for name, p in peaks.items():
                if name.startswith(key):
                    return name, p
    return None, None


def canon(model):
    """dptrain's and torchvision's names of one model (vit_b16 / vit_b_16)."""
    return (model or "").replace("_", "")


def mib(b):
    return "%.0f" % (b / 2**20) if isinstance(b, (int, float)) and b > 0 else "-"


def cmd_report(a):
    rows = []
    with open(a.tsv) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) < 6:
                continue
            try:
                data = json.loads(c[4]) if c[4] else {}
            except ValueError:
                data = {}
            rows.append({"stage": c[0], "item": c[1], "status": c[2], "seconds": c[3], "data": data,
                         "note": c[5]})
    peaks = load_peaks(a.hardware)
    device = next((r["data"].get("device") for r in rows if r["data"].get("device")), "")
    hw, peak = pick_peak(peaks, device)
    out = []
    out.append("## dptrain GPU bundle: results")
    out.append("")
    out.append("| stage | item | status | s | note |")
    out.append("|---|---|---|---|---|")
    for r in rows:
        out.append("| %s | %s | %s | %s | %s |" % (r["stage"], r["item"], r["status"], r["seconds"], r["note"]))
    bench = [r for r in rows if r["stage"] == "bench" and r["data"].get("img_per_s")]
    if bench:
        out.append("")
        out.append("Benchmark (same GPU, same run; MFU = 3 x forward FLOPs (dptrain's count) x img/s / "
                   "dense peak of %s%s):" % (hw or "unknown device", "" if peak else ", MFU not computed"))
        out.append("")
        out.append("| model | peer | precision | batch | img/s | dptrain / peer | MFU | memory planned / measured (MiB) |")
        out.append("|---|---|---|---|---|---|---|---|")
        flops = {}
        ours = {}
        for r in bench:
            d = r["data"]
            if d.get("peer") == "dptrain":
                flops[canon(d["model"])] = d.get("fwd_gflop_per_img")
                ours[(canon(d["model"]), d.get("precision"))] = d["img_per_s"]
        for r in bench:
            d = r["data"]
            m = d.get("model")
            base = ours.get((canon(m), d.get("precision")))
            ratio = "-" if d.get("peer") == "dptrain" or not base else "%.2fx" % (base / d["img_per_s"])
            if d.get("peer") == "dptrain-real-input" and base:
                ratio = "%.1f %% of synthetic" % (100.0 * d["img_per_s"] / base)
                if d.get("data_wait_s") is not None and d.get("step_s"):
                    ratio += ", data wait %.1f %% of the step" % (100.0 * d["data_wait_s"] / d["step_s"])
            mfu = "-"
            gf = flops.get(canon(m))
            if peak and gf and d.get("precision") in peak and peak[d["precision"]] > 0:
                mfu = "%.1f %%" % (100.0 * 3 * gf * 1e9 * d["img_per_s"] / (peak[d["precision"]] * 1e12))
            planned = mib(d.get("planned_bytes"))
            measured = mib(d.get("measured_bytes"))
            if d.get("allocated_peak_bytes"):
                measured += " (allocator peak %s)" % mib(d["allocated_peak_bytes"])
            if planned != "-" and d.get("measured_bytes"):
                measured += " (%+.1f %%)" % (100.0 * (d["measured_bytes"] - d["planned_bytes"]) / d["planned_bytes"])
            out.append("| %s | %s | %s | %s | %.1f | %s | %s | %s / %s |" % (
                m, d.get("peer"), d.get("precision"), d.get("batch"), d["img_per_s"], ratio, mfu, planned, measured))
    text = "\n".join(out)
    print(text)
    if a.md:
        with open(a.md + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(a.md + ".tmp", a.md)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    t = sub.add_parser("train")
    m = sub.add_parser("max-batch")
    for p in (t, m):
        p.add_argument("--model", default="resnet50")
        p.add_argument("--precision", default="bf16", choices=["bf16", "tf32"])
        p.add_argument("--image-size", type=int, default=224)
        p.add_argument("--classes", type=int, default=1000)
    t.add_argument("--mode", default="eager", choices=["eager", "compile"])
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--warmup", type=int, default=5)
    m.add_argument("--budget-gib", type=float, default=24.0)
    m.add_argument("--start", type=int, default=64)
    m.add_argument("--limit", type=int, default=4096)
    r = sub.add_parser("report")
    r.add_argument("tsv")
    r.add_argument("--hardware", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "share", "dptrain", "hardware.tsv"))
    r.add_argument("--md", default="")
    a = ap.parse_args()
    return {"probe": cmd_probe, "train": cmd_train, "max-batch": cmd_max_batch, "report": cmd_report}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
