"""Foreign checkpoint layouts mapped onto PAL4VST's names, in one place (as timm keeps a model's
``checkpoint_filter_fn`` beside it).

Segmenters (a whole PAL4VST model):

* MMSegmentation 1.x training checkpoints, as the authors released them: our module names are
  MMSegmentation's (``backbone.stages.N.blocks.M.attn.w_msa``, ``decode_head``,
  ``auxiliary_head``), so the state dict maps one to one, after an optional wrapper prefix
  (``module.``, ``model.``) is stripped;
* mmdeploy's TorchScript ``end2end.pt``: a trace of the whole ``EncoderDecoder``, so beside the
  weights it carries ``data_preprocessor.mean``/``std`` (the normalisation, read by
  :func:`read_preprocessing`) and the auxiliary head;
* our own safetensors files, whose metadata header holds the full :class:`ModelConfig`.

Tensors that are no weights are dropped by name: the data preprocessor's buffers and the relative
position index every Swin recomputes. Any other unknown tensor is an error, never ignored. The
architecture is read from the tensors' shapes (:func:`infer_config`).

ImageNet Swin backbones (training initialisation, :func:`filter_swin_imagenet`):

* MMSegmentation's converted file named in the official config
  (``swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth``: ``patch_embed.projection``, ``stages.N``);
* the original Swin release (``layers.N.downsample`` at the end of stage N);
* timm >= 0.9 (``swin_base_patch4_window12_384``: ``layers.N.downsample`` at the start of stage N).

The original and timm layouts concatenate PatchMerging's 2x2 neighbourhood as (0,0), (1,0), (0,1),
(1,1) positions, channel-minor; MMSegmentation uses ``nn.Unfold`` order (channel-major, row then
column), so ``reduction`` and ``norm`` of every merge are permuted (as MMSeg's swin2mmseg does).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import torch

from .errors import CheckpointError
from .segmenter import ModelConfig


_ANCHOR = "backbone.patch_embed.projection.weight"
_STAGE_KEY = re.compile(r"^backbone\.stages\.(\d+)\.blocks\.(\d+)\.")
_PREPROCESSOR = ("data_preprocessor.mean", "data_preprocessor.std")
_DERIVED_SUFFIX = "relative_position_index"


# --------------------------------------------------------------------------------------------
# Segmenters


def strip_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for key in sd:
        if key.endswith(_ANCHOR) and key != _ANCHOR:
            prefix = key[: -len(_ANCHOR)]
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def classify(sd: Mapping[str, torch.Tensor]) -> str:
    """``segmenter``, ``backbone`` (an ImageNet Swin) or ``unknown``."""
    keys = list(sd)
    if any(k.startswith("backbone.") for k in keys) and any(k.startswith("decode_head.") for k in keys):
        return "segmenter"
    swin_like = ("layers.0.blocks.0.attn.qkv.weight", "stages.0.blocks.0.attn.w_msa.qkv.weight",
                 "backbone.stages.0.blocks.0.attn.w_msa.qkv.weight", "patch_embed.proj.weight")
    if any(k.endswith(s) for k in keys for s in swin_like):
        return "backbone"
    return "unknown"


def filter_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an MMSegmentation / mmdeploy / our own state dict to :class:`PALSegmenter` names."""
    out = strip_prefix(dict(sd))
    kind = classify(out)
    if kind == "backbone":
        raise CheckpointError(
            "this is a Swin backbone checkpoint (ImageNet classification weights, no segmentation head): it "
            "cannot find artifacts by itself. Use it to initialise training (python -m training.train --init "
            "FILE), or load a PAL4VST release: unified, stylegan2 or portrait_shadow_removal."
        )
    if kind == "unknown":
        sample = ", ".join(list(out)[:4]) or "none"
        raise CheckpointError(
            "this file holds no PAL4VST segmenter weights (expected keys such as "
            f"'{_ANCHOR}' and 'decode_head.conv_seg.weight'; found e.g. {sample})."
        )
    return {k: v for k, v in out.items() if k not in _PREPROCESSOR and not k.endswith(_DERIVED_SUFFIX)}


def read_preprocessing(sd: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, float, float]]:
    """``{"mean": ..., "std": ...}`` from MMSegmentation's ``data_preprocessor`` buffers, where a
    file carries them (mmdeploy's TorchScript does); empty otherwise."""
    out = strip_prefix(dict(sd))
    found = {}
    for key in _PREPROCESSOR:
        t = out.get(key)
        if t is not None and t.numel() == 3:
            found[key.rsplit(".", 1)[1]] = tuple(round(float(v), 6) for v in t.flatten())
    return found


def _window_and_heads(table: torch.Tensor) -> tuple[int, int]:
    n, heads = table.shape
    side = math.isqrt(n)
    return (side + 1) // 2, heads


def infer_config(sd: Mapping[str, torch.Tensor], meta: Mapping[str, str] | None = None) -> ModelConfig:
    """The architecture of a (filtered) state dict, read from its tensors' shapes."""
    meta = meta or {}
    if "config" in meta:  # our own files carry the full config
        return ModelConfig.from_json(meta["config"])
    try:
        proj = sd[_ANCHOR]
        embed, patch = proj.shape[0], proj.shape[2]
        blocks: dict[int, int] = {}
        for k in sd:
            m = _STAGE_KEY.match(k)
            if m:
                s, b = int(m.group(1)), int(m.group(2))
                blocks[s] = max(blocks.get(s, 0), b + 1)
        depths = tuple(blocks[i] for i in range(len(blocks)))
        wh = [_window_and_heads(sd[f"backbone.stages.{i}.blocks.0.attn.w_msa.relative_position_bias_table"])
              for i in range(len(depths))]
        fc1 = sd["backbone.stages.0.blocks.0.ffn.layers.0.0.weight"]
        seg = sd["decode_head.conv_seg.weight"]
        n_pool = len({k.split(".")[2] for k in sd if k.startswith("decode_head.psp_modules.")})
    except KeyError as e:
        raise CheckpointError(f"the segmenter weights are incomplete: missing {e.args[0]}") from None
    num_classes = seg.shape[0]
    if num_classes != 2:
        raise CheckpointError(
            f"this checkpoint segments {num_classes} classes (a general segmentation model, e.g. Cityscapes or "
            "ADE20K); PAL4VST models segment 2 (background, artifact). Use a PAL4VST release or fine-tune one "
            "with training/."
        )
    aux_seg = sd.get("auxiliary_head.conv_seg.weight")
    aux_in = sd.get("auxiliary_head.convs.0.conv.weight")
    stage_ch = [embed * 2**i for i in range(len(depths))]
    pool_scales = (1, 2, 3, 6) if n_pool == 4 else _pool_scales_from_meta(meta, n_pool)
    classes = tuple(json.loads(meta["classes"])) if "classes" in meta else ("background", "artifact")
    return ModelConfig(
        embed_dim=embed, depths=depths, num_heads=tuple(h for _, h in wh), window=wh[0][0], patch=patch,
        mlp_ratio=fc1.shape[0] / embed, qkv_bias="backbone.stages.0.blocks.0.attn.w_msa.qkv.bias" in sd,
        head_channels=seg.shape[1], pool_scales=pool_scales, aux=aux_seg is not None,
        aux_channels=aux_seg.shape[1] if aux_seg is not None else 256,
        aux_index=stage_ch.index(aux_in.shape[1]) if aux_in is not None and aux_in.shape[1] in stage_ch else 2,
        num_classes=num_classes, classes=classes,
    )


def _pool_scales_from_meta(meta: Mapping[str, str], n: int) -> tuple[int, ...]:
    m = re.search(r"pool_scales['\"]?\s*[:=]\s*[\[(]([\d,\s]+)[\])]", meta.get("mmseg_config", ""))
    if m:
        scales = tuple(int(s) for s in m.group(1).split(",") if s.strip())
        if len(scales) == n:
            return scales
    raise CheckpointError(f"the decode head has {n} pooling branches and the file does not say their scales")


# --------------------------------------------------------------------------------------------
# ImageNet Swin backbones


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
        if k.startswith(("head", "norm.")) or k.endswith(("relative_position_index", "attn_mask")):
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
