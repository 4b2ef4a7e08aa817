#!/usr/bin/python3
"""Report of the batch-32 vs found-batch study (bench/batch_study.sh).

usage: batch_study.py OUT_MD RUN_DIR... (each RUN_DIR holds results.json, steps.csv,
       and test/eval_results.json; its name is MODEL-bBATCH)
Writes OUT_MD (Markdown) and, beside it, one loss-curve SVG per model.
"""
import csv
import json
import math
import os
import statistics
import sys


def load(run):
    r = json.load(open(os.path.join(run, "results.json")))
    steps = list(csv.DictReader(open(os.path.join(run, "steps.csv"))))
    test = None
    p = os.path.join(run, "test", "eval_results.json")
    if os.path.exists(p):
        test = json.load(open(p))
    return r, steps, test


def stability(steps):
    t = [float(s["step_s_max"]) for s in steps if s["timed"] == "1"]
    if len(t) < 2:
        return float("nan"), float("nan"), float("nan")
    t.sort()
    med = statistics.median(t)
    p95 = t[min(len(t) - 1, int(math.ceil(0.95 * len(t))) - 1)]
    cv = statistics.pstdev(t) / statistics.mean(t)
    return med, p95, cv


def svg(path, title, curves):
    """curves: [(label, colour, [(x, y)])]; x = images seen (thousands), y = training loss."""
    W, H, L, R, T, B = 640, 360, 60, 20, 30, 45
    xs = [x for _, _, pts in curves for x, _ in pts]
    ys = [y for _, _, pts in curves for _, y in pts]
    x0, x1 = 0.0, max(xs) if xs else 1.0
    y0, y1 = 0.0, max(ys) * 1.05 if ys else 1.0

    def px(x):
        return L + (W - L - R) * (x - x0) / (x1 - x0 or 1)

    def py(y):
        return H - B - (H - T - B) * (y - y0) / (y1 - y0 or 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">images seen (thousands)</text>',
           f'<text x="15" y="{(T + H - B) / 2}" transform="rotate(-90 15 {(T + H - B) / 2})" '
           f'text-anchor="middle">training loss</text>']
    for k in range(6):
        xv, yv = x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5
        out.append(f'<text x="{px(xv):.1f}" y="{H - B + 15}" text-anchor="middle">{xv:.0f}</text>')
        out.append(f'<text x="{L - 5}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.2f}</text>')
        out.append(f'<line x1="{L}" y1="{py(yv):.1f}" x2="{W - R}" y2="{py(yv):.1f}" stroke="#eee"/>')
    for i, (label, colour, pts) in enumerate(curves):
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{d}"/>')
        out.append(f'<text x="{W - R - 170}" y="{T + 18 + 16 * i}" fill="{colour}">{label}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def smooth(steps, batch, window):
    pts, acc = [], []
    for i, s in enumerate(steps):
        acc.append(float(s["loss"]))
        if len(acc) > window:
            acc.pop(0)
        pts.append(((i + 1) * batch / 1000.0, sum(acc) / len(acc)))
    return pts


def main():
    out_md, runs = sys.argv[1], sys.argv[2:]
    by_model = {}
    for run in runs:
        name = os.path.basename(run.rstrip("/"))
        model, b = name.rsplit("-b", 1)
        by_model.setdefault(model, []).append((int(b), run))
    lines = []
    for model, rs in by_model.items():
        rs.sort()
        rows, curves = [], []
        colours = ["#1f77b4", "#d62728", "#2ca02c"]
        for k, (b, run) in enumerate(rs):
            r, steps, test = load(run)
            med, p95, cv = stability(steps)
            cfg = r["config"]
            val_f1 = r["quality"]["macro_f1"] if r["quality"].get("evaluated") else float("nan")
            test_f1 = test["macro_f1"] if test else float("nan")
            rows.append(dict(batch=b, lr=cfg["lr"], warm=cfg.get("warmup-epochs"), steps=r["throughput"]["steps"],
                             ips=r["throughput"]["images_per_s"], mfu=r.get("mfu") or float("nan"),
                             mem=r["memory"]["peak_rss_bytes"] / 2 ** 20, med=med, p95=p95, cv=cv, val=val_f1,
                             test=test_f1, wall=r["throughput"]["train_wall_s"]))
            window = max(1, len(steps) // 40)
            curves.append((f"batch {b} (lr {cfg['lr']:g})", colours[k % 3], smooth(steps, b, window)))
        svg_name = f"batch_study_{model}.svg"
        svg(os.path.join(os.path.dirname(out_md), svg_name), f"{model}: training loss, batch 32 vs found batch", curves)
        base = rows[0]
        lines.append(f"### {model}\n")
        lines.append("| batch | LR | steps | img/s | vs batch 32 | MFU | peak RSS MiB | step s median / p95 | step CV "
                     "| val macro-F1 | test macro-F1 | test F1 vs batch 32 (points) | train wall s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for x in rows:
            lines.append(f"| {x['batch']} | {x['lr']:g} | {x['steps']} | {x['ips']:.1f} | {x['ips'] / base['ips']:.2f}x | "
                         f"{100 * x['mfu']:.2f} % | {x['mem']:.0f} | {x['med']:.3f} / {x['p95']:.3f} | {100 * x['cv']:.1f} % | "
                         f"{x['val']:.4f} | {x['test']:.4f} | {100 * (x['test'] - base['test']):+.2f} | {x['wall']:.0f} |")
        lines.append(f"\n![{model} loss curves]({svg_name})\n")
    with open(out_md, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
