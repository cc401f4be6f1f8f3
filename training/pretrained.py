"""ImageNet Swin weights -> the PAL4VST backbone: filter functions for the three layouts in use.

* MMSegmentation's converted file named in the official config
  (``swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth``: ``patch_embed.projection``, ``stages.N``);
* the original Swin release (``layers.N.downsample`` at the end of stage N);
* timm >= 0.9 (``swin_base_patch4_window12_384``: ``layers.N.downsample`` at the start of stage N).

The original and timm layouts concatenate PatchMerging's 2x2 neighbourhood as (0,0), (1,0), (0,1),
(1,1) positions, channel-minor; MMSegmentation uses ``nn.Unfold`` order (channel-major, row then
column), so ``reduction`` and ``norm`` of every merge are permuted (as MMSeg's swin2mmseg does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from pal4vst.model.checkpoint import _find_state_dict, _torch_load


def unfold_order_reduction(w: torch.Tensor) -> torch.Tensor:
    out_ch, in_ch = w.shape
    return w.reshape(out_ch, 4, in_ch // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out_ch, in_ch)


def unfold_order_norm(w: torch.Tensor) -> torch.Tensor:
    return w.reshape(4, w.numel() // 4)[[0, 2, 1, 3], :].transpose(0, 1).reshape(-1)


_BLOCK = [
    (r"attn\.qkv", "attn.w_msa.qkv"), (r"attn\.proj", "attn.w_msa.proj"),
    (r"attn\.relative_position_bias_table", "attn.w_msa.relative_position_bias_table"),
    (r"mlp\.fc1", "ffn.layers.0.0"), (r"mlp\.fc2", "ffn.layers.1"),
]


def filter_swin_imagenet(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone weights named ``backbone.*`` from any of the three layouts; heads are dropped."""
    sd = dict(sd)
    if any(k.startswith("stages.") for k in sd) or "patch_embed.projection.weight" in sd:  # MMSeg layout
        return {f"backbone.{k}": v for k, v in sd.items() if not k.endswith(("relative_position_index", "attn_mask"))}
    timm_layout = "layers.0.downsample.reduction.weight" not in sd and "layers.1.downsample.reduction.weight" in sd
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith(("head", "norm.")) or k.endswith(("relative_position_index", "attn_mask")) or k == "norm.weight":
            continue
        if k.startswith("patch_embed."):
            out["backbone." + k.replace("patch_embed.proj", "patch_embed.projection")] = v
            continue
        m = re.match(r"layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)$", k)
        if m:
            stage = int(m.group(1)) - (1 if timm_layout else 0)
            v = unfold_order_reduction(v) if m.group(2) == "reduction" else unfold_order_norm(v)
            out[f"backbone.stages.{stage}.downsample.{m.group(2)}.{m.group(3)}"] = v
            continue
        m = re.match(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)$", k)
        if m:
            rest = m.group(3)
            for pat, rep in _BLOCK:
                rest = re.sub(f"^{pat}", rep, rest)
            out[f"backbone.stages.{m.group(1)}.blocks.{m.group(2)}.{rest}"] = v
    return out


def load_imagenet_backbone(model: torch.nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Load ImageNet Swin weights into ``model.backbone``; returns (missing, unexpected) names."""
    sd = filter_swin_imagenet(_find_state_dict(_torch_load_path(path)))
    own = model.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    missing = [k for k in own if k.startswith("backbone.") and k not in usable and not k.endswith("num_batches_tracked")]
    return missing, sorted(set(sd) - set(usable))


def _torch_load_path(path: str):
    from pathlib import Path

    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    return _torch_load(p)
