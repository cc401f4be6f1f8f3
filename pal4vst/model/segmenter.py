"""The PAL4VST segmenter: Swin backbone + UPerNet head (+ FCN auxiliary head), and its presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .heads import FCNHead, UPerHead
from .swin import SwinTransformer

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CLASSES = ("background", "artifact")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and preprocessing of a PAL4VST segmenter.

    The architecture fields can all be inferred from a checkpoint's tensor shapes
    (see :func:`pal4vst.model.layouts.infer_config`); ``input_size``, ``mean`` and ``std`` are
    preprocessing and come from the checkpoint's metadata or the release defaults.
    """

    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window: int = 12
    patch: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    head_channels: int = 512
    pool_scales: tuple[int, ...] = (1, 2, 3, 6)
    aux: bool = True
    aux_channels: int = 256
    aux_index: int = 2
    num_classes: int = 2
    drop_path: float = 0.0  # stochastic depth, training only (the release trained with 0.3)
    dropout: float = 0.1  # before the classifiers, training only
    input_size: int = 512
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    classes: tuple[str, ...] = field(default=CLASSES)

    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB 0..255 (any dtype, on any device) -> this model's input: the one
        normalisation of detection, validation and training, with the file's own mean and std."""
        mean = torch.tensor(self.mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
        return (x.float() - mean) / std

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


PRESETS: dict[str, ModelConfig] = {
    # The released models (unified, stylegan2, portrait shadow removal).
    "swin_b": ModelConfig(),
    # Swin-T as in MMSegmentation's upernet_swin base config.
    "swin_t": ModelConfig(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window=7),
    # Small enough for tests: every code path (padding, shifted windows, merging) on 64x64 inputs.
    "tiny": ModelConfig(
        embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window=6,
        head_channels=32, aux_channels=16, input_size=64,
    ),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A named preset (``swin_b``, ``swin_t``, ``tiny``), optionally with fields replaced."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class PALSegmenter(nn.Module):
    """Encoder-decoder segmenter with MMSegmentation's module names (``backbone``, ``decode_head``,
    ``auxiliary_head``), so a released ``state_dict`` loads as is.

    ``forward`` takes normalised ``[B, 3, H, W]`` input and returns class logits resized
    (bilinear, align_corners False) to ``H x W``, as MMSegmentation's ``encode_decode`` does.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = SwinTransformer(
            config.embed_dim, config.depths, config.num_heads, config.window, config.patch,
            config.mlp_ratio, config.qkv_bias, drop_path=config.drop_path,
        )
        chans = config.stage_channels
        self.decode_head = UPerHead(chans, config.head_channels, config.num_classes, config.pool_scales, config.dropout)
        self.auxiliary_head = (
            FCNHead(chans[config.aux_index], config.aux_channels, config.num_classes, dropout=config.dropout)
            if config.aux else None
        )

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of the decode head and (in training, when present) the auxiliary head at 1/4 scale."""
        feats = self.backbone(x)
        main = self.decode_head(feats)
        aux = None
        if self.training and self.auxiliary_head is not None:
            aux = self.auxiliary_head(feats[self.config.aux_index])
        return main, aux

    def forward(self, x: torch.Tensor, features: bool = False):
        """Logits at the input size; with ``features=True`` (training, also through DDP) the raw
        ``(decode, auxiliary)`` logits of :meth:`forward_features`."""
        if features:
            return self.forward_features(x)
        logits = self.decode_head(self.backbone(x))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


def build_model(config: ModelConfig | str = "swin_b") -> PALSegmenter:
    """Build a randomly initialised segmenter from a config or preset name."""
    return PALSegmenter(preset(config) if isinstance(config, str) else config)
