"""What a dptrain weights file says about its model and its input, read from
the safetensors "__metadata__" (keys documented in docs/weights.md and written
by src/train/weights.c).

ModelConfig mirrors the C model_cfg (src/nn/models/models.h); Preprocessing is
dptrain's evaluation input transform (src/input/augment.c, aug_eval_params):
resize the shorter side to int(image_size / resize_ratio) with bilinear
interpolation (half-pixel centres, no antialiasing: torch's
F.interpolate(mode="bilinear", align_corners=False)), center-crop image_size
x image_size, then (pixel / 255 - mean) / std per channel, NCHW float32.
"""
import json
import math
from dataclasses import asdict, dataclass, field
from typing import List

import torch

from dptrain.safetensors_io import SafetensorsError, read_metadata

MODELS = ("cnn", "resnet18", "resnet50", "vit_ti16", "vit_s16", "vit_b16")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Files written before the eval transform was recorded used the loader's
# defaults (src/input/loader.c, loader_cfg_defaults).
DEFAULT_RESIZE_RATIO = 0.875
DEFAULT_RESIZE_FILTER = "bilinear"


@dataclass
class ModelConfig:
    """The C model_cfg: which network, for which input and class count."""
    model: str
    image_size: int
    channels: int
    classes: int
    small_stem: bool = False
    zero_init_residual: bool = False
    patch: int = 0            # ViT patch size (0 = 16)
    dropout: float = 0.0
    cnn_width: int = 0        # CNN base width (0 = 32)

    def validate(self, where="model config"):
        if self.model not in MODELS:
            raise ValueError(f"{where}: unknown model '{self.model}' (known: {', '.join(MODELS)})")
        if self.channels not in (1, 3):
            raise ValueError(f"{where}: channels must be 1 or 3, not {self.channels}")
        if self.classes < 1 or self.image_size < 1:
            raise ValueError(f"{where}: classes ({self.classes}) and image size ({self.image_size}) must be >= 1")
        if self.model == "cnn" and self.image_size < 16:
            raise ValueError(f"{where}: the cnn needs an image size >= 16, not {self.image_size}")
        if self.model.startswith("vit") and self.image_size % self.vit_patch:
            raise ValueError(f"{where}: image size {self.image_size} is not a multiple of the patch {self.vit_patch}")

    @property
    def vit_patch(self):
        return self.patch if self.patch > 0 else 16


@dataclass
class Preprocessing:
    """dptrain's evaluation transform for one image (see the module doc)."""
    image_size: int
    channels: int
    resize_ratio: float = DEFAULT_RESIZE_RATIO
    resize_filter: str = DEFAULT_RESIZE_FILTER
    antialias: bool = False
    crop: str = "center"
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))

    @property
    def resize_size(self):
        """The shorter side after the resize: int(image_size / resize_ratio)."""
        return int(self.image_size / self.resize_ratio)

    def describe(self):
        """A JSON-able description (what the ONNX model's metadata carries)."""
        c = self.channels
        return {
            "input_name": "input",
            "input_layout": "NCHW",
            "input_dtype": "float32",
            "input_shape": ["batch", c, self.image_size, self.image_size],
            "color": "RGB" if c == 3 else "grayscale (ITU-R 601 luma of RGB, as PIL's convert('L'))",
            "resize": {"shorter_side": self.resize_size, "ratio": self.resize_ratio,
                       "filter": self.resize_filter, "antialias": self.antialias,
                       "align_corners": False, "longer_side": "int(shorter_side * long / short)"},
            "crop": {"kind": self.crop, "size": [self.image_size, self.image_size],
                     "offset": "round((resized - size) / 2), Python round (half to even)"},
            "normalize": {"formula": "(pixel / 255 - mean) / std", "mean": self.mean[:c], "std": self.std[:c]},
            "torchvision": (f"Resize({self.resize_size}, InterpolationMode.BILINEAR, antialias=False) on a float "
                            f"tensor, CenterCrop({self.image_size}), Normalize(mean, std) after dividing by 255"),
        }

    @classmethod
    def from_description(cls, d):
        """The inverse of describe() (e.g. from an ONNX model's
        dptrain.preprocessing metadata)."""
        c = d["input_shape"][1]
        return cls(image_size=d["input_shape"][2], channels=c, resize_ratio=d["resize"]["ratio"],
                   resize_filter=d["resize"]["filter"], antialias=d["resize"]["antialias"], crop=d["crop"]["kind"],
                   mean=list(d["normalize"]["mean"]), std=list(d["normalize"]["std"]))

    def transform(self, image):
        """One image -> the model input (channels, image_size, image_size),
        float32. image: uint8 (H, W), (H, W, 1) or (H, W, 3), a numpy array, a
        torch tensor or a PIL image. Equals dptrain's eval loader on raw-codec
        shards; on JPEGs dptrain may decode at a reduced DCT scale first (when
        the image is >= 2x the crop), which changes pixels slightly."""
        t = _to_hwc_tensor(image)
        h, w, c = t.shape
        if c == 3 and self.channels == 1:
            # ITU-R 601 luma, as src/input/decode.c's raw path (PIL's convert("L")).
            t = (t[..., 0:1] * 299 + t[..., 1:2] * 587 + t[..., 2:3] * 114 + 500) // 1000
        elif c == 1 and self.channels == 3:
            t = t.expand(h, w, 3)
        x = t.permute(2, 0, 1).to(torch.float32)[None]              # (1, C, H, W), 0..255
        s = self.resize_size
        nh, nw = (int(s * h / w), s) if w <= h else (s, int(s * w / h))
        if self.resize_filter != "bilinear" or self.antialias:
            raise ValueError(f"resize filter '{self.resize_filter}' (antialias {self.antialias}) is not supported")
        x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
        o = self.image_size
        top, left = round((nh - o) / 2), round((nw - o) / 2)
        x = x[0, :, top:top + o, left:left + o]
        mean = torch.tensor(self.mean[:self.channels]).view(-1, 1, 1)
        std = torch.tensor(self.std[:self.channels]).view(-1, 1, 1)
        return (x / 255.0 - mean) / std


def _to_hwc_tensor(image):
    if not isinstance(image, torch.Tensor):
        try:
            import numpy as np
            image = torch.from_numpy(np.array(image, copy=True))   # PIL images convert too
        except TypeError as e:
            raise TypeError(f"cannot convert {type(image).__name__} to an image tensor") from e
    if image.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {tuple(image.shape)}")
    return image.to(torch.int32)


@dataclass
class WeightsInfo:
    """Everything a weights file's metadata says."""
    config: ModelConfig
    preprocessing: Preprocessing
    class_names: List[str]
    steps: int
    metadata: dict            # the raw __metadata__

    def to_dict(self):
        return {"config": asdict(self.config), "preprocessing": self.preprocessing.describe(),
                "class_names": self.class_names, "steps": self.steps}


def _floats(s, n, key, path):
    try:
        v = [float(x) for x in s.split(",")]
    except ValueError:
        v = []
    if len(v) != n or not all(math.isfinite(x) for x in v):
        raise SafetensorsError(f"'{path}': metadata '{key}' = '{s}' is not {n} comma-separated numbers")
    return v


def info_from_metadata(md, path="<weights>"):
    """Parses dptrain's __metadata__ (see docs/weights.md)."""
    def need_int(k):
        if k not in md:
            raise SafetensorsError(f"'{path}' has no dptrain model metadata ('{k}' missing): "
                                   "was it written by dptrain train?")
        return get_int(k, None)

    def get_int(k, dflt):
        v = md.get(k)
        if v is None:
            return dflt
        try:
            return int(v)
        except ValueError:
            raise SafetensorsError(f"'{path}': metadata '{k}' = '{v}' is not an integer") from None

    def get_float(k, dflt):
        v = md.get(k)
        if v is None:
            return dflt
        try:
            f = float(v)
        except ValueError:
            f = float("nan")
        if not math.isfinite(f):
            raise SafetensorsError(f"'{path}': metadata '{k}' = '{v}' is not a number")
        return f

    if "dptrain.model" not in md:
        raise SafetensorsError(f"'{path}' has no dptrain model metadata ('dptrain.model' missing): "
                               "was it written by dptrain train?")
    cfg = ModelConfig(model=md["dptrain.model"], image_size=need_int("dptrain.image_size"),
                      channels=need_int("dptrain.channels"), classes=need_int("dptrain.classes"),
                      small_stem=bool(get_int("dptrain.small_stem", 0)),
                      zero_init_residual=bool(get_int("dptrain.zero_init_residual", 0)),
                      patch=get_int("dptrain.patch", 0), dropout=get_float("dptrain.dropout", 0.0),
                      cnn_width=get_int("dptrain.cnn_width", 0))
    try:
        cfg.validate(f"'{path}'")
    except ValueError as e:
        raise SafetensorsError(str(e)) from None
    mean = _floats(md["dptrain.mean"], 3, "dptrain.mean", path) if "dptrain.mean" in md else list(IMAGENET_MEAN)
    std = _floats(md["dptrain.std"], 3, "dptrain.std", path) if "dptrain.std" in md else list(IMAGENET_STD)
    ratio = get_float("dptrain.eval_resize_ratio", DEFAULT_RESIZE_RATIO)
    if not 0 < ratio <= 1:
        raise SafetensorsError(f"'{path}': metadata 'dptrain.eval_resize_ratio' = {ratio} is not in (0, 1]")
    pre = Preprocessing(image_size=cfg.image_size, channels=cfg.channels, resize_ratio=ratio,
                        resize_filter=md.get("dptrain.eval_resize_filter", DEFAULT_RESIZE_FILTER),
                        antialias=bool(get_int("dptrain.eval_resize_antialias", 0)),
                        crop=md.get("dptrain.eval_crop", "center"), mean=mean, std=std)
    names = md.get("dptrain.class_names")
    names = names.split("\n") if names else [str(k) for k in range(cfg.classes)]
    if len(names) != cfg.classes:
        raise SafetensorsError(f"'{path}': {len(names)} class names for {cfg.classes} classes")
    return WeightsInfo(cfg, pre, names, get_int("dptrain.steps", 0), dict(md))


def read_info(path):
    """WeightsInfo of a dptrain weights file (reads only the header)."""
    return info_from_metadata(read_metadata(path), path)


def info_json(info):
    return json.dumps(info.to_dict(), indent=1)
