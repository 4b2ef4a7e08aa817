#!/usr/bin/python3
"""An ImageFolder of real photographs with real defects applied (issue 12 measurements).

Source: the 12 photographs of Debian's mate-backgrounds (/usr/share/backgrounds/mate/nature/*.jpg:
Aqua, Blinds, Dune, FreshFlower, Garden, GreenMeadow, LadyBird, RainDrops, Storm, TwoWings, Wood,
YellowFlower) and its Elephants photo (abstract/Elephants.jpg): `apt-get install mate-backgrounds`.

Crops: square windows of 22-45 % of the photo's shorter side, resized to SIZE x SIZE with an
antialiased (Lanczos) filter, so every crop is a sharp, normally exposed photo. Splits are disjoint
in pixels: windows lie entirely in the left 70 % of each photo (train), the next 15 % (val) or the
last 15 % (test).

Classes (applied to a crop; the ok share is larger, as in production):
  ok          the crop as it is (JPEG q 88-95)                                   50 %
  blurry      Gaussian blur, radius 1.2-3.5 px (PIL GaussianBlur)                12.5 %
  watermark   "SAMPLE" / "STOCK" / "(c) PHOTO" / "PREVIEW" in DejaVu Sans, white or black, opacity
              25-60 %, one large word at a random place or tiled                 12.5 %
  low_light   exposure x0.2-0.5 with gamma 1.2, then sensor noise sigma 3-8      12.5 %
  overexposed exposure x1.6-2.6, clipped                                          12.5 %
Writes OUT/{train,val,test}/<class>/NNNNN.jpg; pack each split with
`dptrain data pack --imagefolder OUT/train --out DIR/train --val-frac 0 --test-frac 0` (the
make step below does that when --dptrain is given).

usage: make_realphoto.py --out DIR [--count 3000] [--size 128] [--seed 1] [--dptrain build/dptrain]
"""
import argparse
import glob
import os
import shutil
import subprocess

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SOURCES = sorted(glob.glob("/usr/share/backgrounds/mate/nature/*.jpg")) + ["/usr/share/backgrounds/mate/abstract/Elephants.jpg"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CLASSES = ["ok", "blurry", "watermark", "low_light", "overexposed"]
SHARE = [0.5, 0.125, 0.125, 0.125, 0.125]
BANDS = {"train": (0.0, 0.70), "val": (0.70, 0.85), "test": (0.85, 1.0)}
SPLIT_SHARE = {"train": 0.7, "val": 0.15, "test": 0.15}


def crop(rng, im, band, size):
    W, H = im.size
    x_lo, x_hi = int(band[0] * W), int(band[1] * W)
    side = int(rng.uniform(0.22, 0.45) * min(W, H))
    side = min(side, x_hi - x_lo, H)
    x = int(rng.integers(x_lo, x_hi - side + 1))
    y = int(rng.integers(0, H - side + 1))
    return im.crop((x, y, x + side, y + side)).resize((size, size), Image.LANCZOS)


def watermark(rng, im):
    size = im.size[0]
    word = ["SAMPLE", "STOCK", "(c) PHOTO", "PREVIEW"][int(rng.integers(4))]
    col = (255, 255, 255) if rng.uniform() < 0.6 else (0, 0, 0)
    alpha = int(255 * rng.uniform(0.25, 0.6))
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    if rng.uniform() < 0.5:   # one large word
        font = ImageFont.truetype(FONT, int(size * rng.uniform(0.12, 0.22)))
        w = d.textlength(word, font=font)
        x = rng.uniform(0, max(1, size - w))
        y = rng.uniform(0, size * 0.8)
        d.text((x, y), word, font=font, fill=col + (alpha,))
    else:                     # tiled
        font = ImageFont.truetype(FONT, int(size * rng.uniform(0.07, 0.11)))
        step = int(size * rng.uniform(0.25, 0.4))
        off = rng.uniform(0, step)
        for yy in range(-step, size + step, step):
            for xx in range(-step, size + step, int(step * 1.6)):
                d.text((xx + off, yy + (xx // step) % 2 * step / 2), word, font=font, fill=col + (alpha,))
    return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")


def apply(rng, cls, im):
    if cls == "blurry":
        return im.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 3.5)))
    if cls == "watermark":
        return watermark(rng, im)
    a = np.asarray(im).astype(np.float32) / 255.0
    if cls == "low_light":
        a = (a * rng.uniform(0.2, 0.5)) ** 1.2 * 255 + rng.normal(0, rng.uniform(3, 8), a.shape)
        return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8))
    if cls == "overexposed":
        return Image.fromarray(np.clip(a * rng.uniform(1.6, 2.6) * 255, 0, 255).round().astype(np.uint8))
    return im


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dptrain", default="")
    a = ap.parse_args()
    if not SOURCES:
        raise SystemExit("no photos: apt-get install mate-backgrounds")
    rng = np.random.default_rng(a.seed)
    photos = [Image.open(p).convert("RGB") for p in SOURCES]
    img_dir = os.path.join(a.out, "images")
    shutil.rmtree(img_dir, ignore_errors=True)
    counts = {}
    k = 0
    for split, frac in SPLIT_SHARE.items():
        n = int(round(a.count * frac))
        for c, share in zip(CLASSES, SHARE):
            os.makedirs(os.path.join(img_dir, split, c), exist_ok=True)
            for _ in range(int(round(n * share))):
                im = crop(rng, photos[int(rng.integers(len(photos)))], BANDS[split], a.size)
                im = apply(rng, c, im)
                im.save(os.path.join(img_dir, split, c, f"{k:05d}.jpg"), quality=int(rng.integers(88, 96)))
                counts[(split, c)] = counts.get((split, c), 0) + 1
                k += 1
    for split in SPLIT_SHARE:
        print(split, {c: counts[(split, c)] for c in CLASSES})
    if a.dptrain:
        for split in SPLIT_SHARE:
            dst = os.path.join(a.out, split)
            shutil.rmtree(dst, ignore_errors=True)
            subprocess.run([a.dptrain, "data", "pack", "--imagefolder", os.path.join(img_dir, split), "--out", dst,
                            "--val-frac", "0", "--test-frac", "0", "--seed", str(a.seed)], check=True,
                           stdout=subprocess.DEVNULL)
        print(f"packed: {a.out}/{{train,val,test}}/train-*.h5")


if __name__ == "__main__":
    main()
