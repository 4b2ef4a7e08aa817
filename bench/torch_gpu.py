#!/usr/bin/env python3
"""PyTorch peer for the GPU benchmark (bench/bench_gpu.sh).

Measures training img/s on synthetic input for
  * ResNet-50, torchvision, autocast bf16, channels_last, SGD momentum;
  * ViT-B/16, torchvision (its MultiheadAttention calls SDPA when
    need_weights=False, torch >= 2.0), autocast bf16, AdamW;
and reports MFU (train FLOPs = 3 x forward FLOPs, forward FLOPs counted as
2 per MAC) against the device's dense bf16 peak, and peak memory
(torch.cuda.max_memory_allocated). One JSON object per line on stdout.
"""
import argparse
import json
import time

import torch
import torchvision

# Forward GFLOP per image at 224^2 (2 per MAC): ResNet-50 4.11 GMAC, ViT-B/16 17.56 GMAC.
FWD_GFLOP = {"resnet50": 8.22, "vit_b_16": 35.13}
# Dense bf16 tensor-core peak, TFLOP/s, by device-name substring.
PEAK_TFLOPS = [("H200", 989.0), ("H100 SXM", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0),
               ("A100", 312.0), ("L40S", 362.0), ("A10", 125.0)]


def device_peak(name, override):
    if override > 0:
        return override
    for key, val in PEAK_TFLOPS:
        if key in name:
            return val
    return float("nan")


def bench(model_name, batch, steps, warmup, peak):
    dev = torch.device("cuda")
    if model_name == "resnet50":
        model = torchvision.models.resnet50(num_classes=1000)
        model = model.to(dev, memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-5)
    else:
        model = torchvision.models.vit_b_16(num_classes=1000).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(batch, 3, 224, 224, device=dev)
    if model_name == "resnet50":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ips = batch * steps / dt
    mfu = ips * 3 * FWD_GFLOP[model_name] * 1e9 / (peak * 1e12)
    return {
        "peer": "pytorch-eager", "torch": torch.__version__, "model": model_name,
        "precision": "bf16-autocast", "batch": batch, "steps": steps,
        "img_per_s": round(ips, 1), "step_ms": round(1e3 * dt / steps, 2),
        "mfu": round(mfu, 4), "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "final_loss": float(loss), "device": torch.cuda.get_device_name(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="resnet50,vit_b_16")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--vit-batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="override the bf16 peak")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"skip": "no CUDA device visible to torch"}))
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = device_peak(torch.cuda.get_device_name(), a.peak_tflops)
    for m in a.models.split(","):
        b = a.batch if m == "resnet50" else a.vit_batch
        print(json.dumps(bench(m, b, a.steps, a.warmup, peak)), flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
