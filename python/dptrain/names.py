"""Parameter names: timm's ViT names <-> torchvision's (which dptrain uses).

The same map as src/nn/models/vit.c (vit_name_to_timm); tests/export checks
the two agree name for name. The tensors keep their layouts: timm's qkv /
proj / fc1 / fc2 equal torchvision's in_proj / out_proj / mlp.0 / mlp.3, and
cls_token (1, 1, D), pos_embed (1, T, D) and patch_embed.proj equal
class_token, encoder.pos_embedding and conv_proj.
"""
import re

_FIXED = {
    "class_token": "cls_token",
    "conv_proj.weight": "patch_embed.proj.weight",
    "conv_proj.bias": "patch_embed.proj.bias",
    "encoder.pos_embedding": "pos_embed",
    "encoder.ln.weight": "norm.weight",
    "encoder.ln.bias": "norm.bias",
    "heads.head.weight": "head.weight",
    "heads.head.bias": "head.bias",
}
_BLOCK = {
    "ln_1.weight": "norm1.weight",
    "ln_1.bias": "norm1.bias",
    "self_attention.in_proj_weight": "attn.qkv.weight",
    "self_attention.in_proj_bias": "attn.qkv.bias",
    "self_attention.out_proj.weight": "attn.proj.weight",
    "self_attention.out_proj.bias": "attn.proj.bias",
    "ln_2.weight": "norm2.weight",
    "ln_2.bias": "norm2.bias",
    "mlp.0.weight": "mlp.fc1.weight",
    "mlp.0.bias": "mlp.fc1.bias",
    "mlp.3.weight": "mlp.fc2.weight",
    "mlp.3.bias": "mlp.fc2.bias",
}
_FIXED_INV = {v: k for k, v in _FIXED.items()}
_BLOCK_INV = {v: k for k, v in _BLOCK.items()}
_TV_BLOCK = re.compile(r"^encoder\.layers\.encoder_layer_(\d+)\.(.+)$")
_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def _rename(name, fixed, block, block_re, block_fmt):
    if name in fixed:
        return fixed[name]
    m = block_re.match(name)
    if m and m.group(2) in block:
        return block_fmt.format(m.group(1), block[m.group(2)])
    return None


def torchvision_to_timm(name):
    """timm's name for a torchvision ViT parameter, or None."""
    return _rename(name, _FIXED, _BLOCK, _TV_BLOCK, "blocks.{}.{}")


def timm_to_torchvision(name):
    """torchvision's name for a timm ViT parameter, or None."""
    return _rename(name, _FIXED_INV, _BLOCK_INV, _TIMM_BLOCK, "encoder.layers.encoder_layer_{}.{}")


def looks_like_timm_vit(names):
    """True when a state_dict uses timm's ViT names."""
    names = set(names)
    return "cls_token" in names or "patch_embed.proj.weight" in names or any(_TIMM_BLOCK.match(n) for n in names)
