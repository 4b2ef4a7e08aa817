#!/usr/bin/python3
"""torchvision oracle for the fused augmentation (tests/input/test_input_torch.c).

For each case: a random uint8 (H, W, 3) image; torchvision's eval transform
Resize(int(out / 0.875)) + CenterCrop(out), and F.resized_crop(i, j, h, w,
out) with and without hflip, both on float tensors with bilinear
interpolation and antialias=False (what our fused bilinear implements), then
Normalize. Written to $DP_FIXTURE_DIR/aug_oracle.h5.
"""
import os

import h5py
import numpy as np
import torch
from torchvision.transforms import functional as F

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CASES = [(300, 260, 64), (201, 333, 64), (500, 375, 224), (257, 256, 224), (90, 60, 48)]


def main():
    rng = np.random.default_rng(123)
    path = os.path.join(os.environ.get("DP_FIXTURE_DIR", "fixtures"), "aug_oracle.h5")
    with h5py.File(path, "w") as f:
        f["ncases"] = np.array([len(CASES)], np.int32)
        for k, (w, h, out) in enumerate(CASES):
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            t = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
            ev = F.resize(t, [int(out / 0.875)], interpolation=F.InterpolationMode.BILINEAR,
                          antialias=False)
            ev = F.normalize(F.center_crop(ev, [out, out]), MEAN, STD)
            ch, cw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            i, j = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            rc = F.resized_crop(t, i, j, ch, cw, [out, out],
                                interpolation=F.InterpolationMode.BILINEAR, antialias=False)
            rcf = F.normalize(F.hflip(rc), MEAN, STD)
            rc = F.normalize(rc, MEAN, STD)
            g = f.create_group(f"case{k}")
            g["shape"] = np.array([w, h, out], np.int32)
            g["crop"] = np.array([i, j, ch, cw], np.int32)
            g["img"] = img.reshape(-1).astype(np.float32)
            g["eval"] = ev.permute(1, 2, 0).contiguous().numpy().reshape(-1)
            g["rrc"] = rc.permute(1, 2, 0).contiguous().numpy().reshape(-1)
            g["rrc_flip"] = rcf.permute(1, 2, 0).contiguous().numpy().reshape(-1)
    print("wrote", path)


if __name__ == "__main__":
    main()
