"""torch twins of dptrain's models (src/nn/models/*.c): the same layers, the
same parameter and buffer names (torchvision's), the same tensor shapes, so a
dptrain weights file loads with strict=True and gives the same logits.

  cnn                  BaselineCNN below (src/nn/models/cnn.c)
  resnet18, resnet50   torchvision's ResNet (v1.5: stride on the 3x3 conv), with
                       small_stem (3x3 stride-1 conv1, no max-pool), 1-channel
                       input and a dropout before fc when the config has one
  vit_ti16/s16/b16     torchvision's VisionTransformer (pre-norm, fused qkv,
                       class token, learned position embedding), any patch size,
                       1-channel input through a 1-channel conv_proj

Inputs are NCHW float32, normalised as WeightsInfo.preprocessing describes.
"""
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

from dptrain.config import ModelConfig, read_info
from dptrain.safetensors_io import SafetensorsError, read_safetensors

VIT_WIDTHS = {"vit_ti16": (192, 3), "vit_s16": (384, 6), "vit_b16": (768, 12)}   # dim, heads
VIT_DEPTH = 12


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)


class BaselineCNN(nn.Module):
    """dptrain's baseline CNN. Width w (default 32), input (N, C, S, S):
    stages.i (i = 0..3), channels w * 2**i: two ConvBNReLU (3x3, pad 1, no
    bias) and a 2x2 max-pool; global average pool -> (N, 8w); dropout(p) if p >
    0; fc = Linear(8w, classes)."""

    def __init__(self, in_ch=3, classes=10, width=32, dropout=0.0):
        super().__init__()
        stages = []
        cin = in_ch
        for i in range(4):
            cout = width * 2 ** i
            stages.append(nn.Sequential(ConvBNReLU(cin, cout), ConvBNReLU(cout, cout), nn.MaxPool2d(2, 2)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(cin, classes)
        # The C builder's init: kaiming-normal fan_out for convs, BN 1/0, fc as
        # torch's Linear default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        for s in self.stages:
            x = s(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.drop(x))


class ResNet(torchvision.models.ResNet):
    """torchvision's ResNet-18/50 with dptrain's options. Parameter names are
    torchvision's; the optional dropout has no parameters."""

    def __init__(self, depth, classes, channels=3, small_stem=False, zero_init_residual=False, dropout=0.0):
        if depth == 18:
            block, layers = BasicBlock, [2, 2, 2, 2]
        elif depth == 50:
            block, layers = Bottleneck, [3, 4, 6, 3]
        else:
            raise ValueError(f"ResNet depth {depth}: only 18 and 50")
        super().__init__(block, layers, num_classes=classes, zero_init_residual=zero_init_residual)
        if small_stem:
            self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        elif channels != 3:
            self.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def _forward_impl(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


class VisionTransformer(torchvision.models.VisionTransformer):
    """torchvision's VisionTransformer at dptrain's widths (depth 12, MLP 4 x
    dim, LayerNorm eps 1e-6), with a 1-channel conv_proj for grayscale input."""

    def __init__(self, name, image_size, classes, channels=3, patch=16, dropout=0.0):
        dim, heads = VIT_WIDTHS[name]
        super().__init__(image_size=image_size, patch_size=patch, num_layers=VIT_DEPTH, num_heads=heads,
                         hidden_dim=dim, mlp_dim=4 * dim, dropout=dropout, attention_dropout=0.0,
                         num_classes=classes)
        if channels != 3:
            self.conv_proj = nn.Conv2d(channels, dim, patch, patch)
            fan_in = channels * patch * patch
            nn.init.trunc_normal_(self.conv_proj.weight, std=(1.0 / fan_in) ** 0.5)
            nn.init.zeros_(self.conv_proj.bias)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised twin of cfg's model (train mode, as torch builds it)."""
    cfg.validate()
    if cfg.model == "cnn":
        return BaselineCNN(cfg.channels, cfg.classes, cfg.cnn_width or 32, cfg.dropout)
    if cfg.model in ("resnet18", "resnet50"):
        return ResNet(int(cfg.model[6:]), cfg.classes, cfg.channels, cfg.small_stem, cfg.zero_init_residual,
                      cfg.dropout)
    return VisionTransformer(cfg.model, cfg.image_size, cfg.classes, cfg.channels, cfg.vit_patch, cfg.dropout)


def check_state(model, tensors, path):
    """Raises SafetensorsError unless tensors has exactly model's state_dict
    names, shapes and dtypes."""
    want = model.state_dict()
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    bad = [f"{k}: file {tuple(tensors[k].shape)} {tensors[k].dtype}, model {tuple(v.shape)} {v.dtype}"
           for k, v in want.items() if k in tensors and (tensors[k].shape != v.shape or tensors[k].dtype != v.dtype)]
    if missing or extra or bad:
        def some(xs):
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {some(missing)}")
        if extra:
            parts.append(f"{len(extra)} unexpected: {some(extra)}")
        if bad:
            parts.append(f"{len(bad)} of another shape or dtype: {some(bad)}")
        raise SafetensorsError(f"'{path}' does not match its model's tensors: " + "; ".join(parts))


def load_model(path, device="cpu"):
    """Builds the twin that path's metadata describes and loads every tensor of
    the file into it (strict: every tensor used, names, shapes and dtypes
    checked). Returns (model in eval mode, WeightsInfo)."""
    info = read_info(path)
    tensors, _ = read_safetensors(path)
    model = build_model(info.config)
    check_state(model, tensors, path)
    model.load_state_dict(tensors, strict=True)
    return model.eval().to(device), info
