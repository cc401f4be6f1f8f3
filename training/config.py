"""The released training recipe as a dataclass; every value can be overridden (JSON file, flags)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    """Defaults are the official unified config (MMSegmentation 1.x, ../shared/reference).

    The released schedule decays the learning rate (poly, power 1) towards 160k iterations while
    training stops at 20k, so the learning rate never gets near zero: ``poly_end`` keeps that.
    """

    data: str = ""
    out: str = "runs/pal4vst"
    preset: str = "swin_b"
    model: dict = field(default_factory=dict)  # ModelConfig fields replacing the preset's, e.g. {"embed_dim": 32}
    init: str = ""  # "" (random), "imagenet:<file>" (Swin-B 22k), or a PAL4VST checkpoint / release name
    iters: int = 20_000
    batch: int = 8  # global batch, kept with gradient accumulation across devices
    micro_batch: int = 0  # per device and step; 0 = batch / world size
    crop: int = 512
    scale: int = 512  # RandomResize scale (the 512 short side before the 0.5-2.0 ratio)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip: float = 0.5
    ignore_index: int = 255  # internal "ignore" label (padding)
    label_ignore: int = -1  # a label-file value to ignore (e.g. 255); -1: every non-zero pixel is an artifact
    lr: float = 6e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    head_lr_mult: float = 10.0
    warmup_iters: int = 1500
    warmup_ratio: float = 1e-6
    poly_end: int = 160_000
    aux_weight: float = 0.4
    drop_path: float = 0.3
    val_interval: int = 500
    ckpt_interval: int = 500
    log_interval: int = 10
    amp: str = "auto"  # auto (bf16 where supported), bf16, fp16, none
    device: str = "auto"
    workers: int = 2
    seed: int = 0
    task: str = ""  # a label for logs

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_override_args(ap: argparse.ArgumentParser) -> None:
    """The common knobs as flags; any other field with ``--set key=value``."""
    ap.add_argument("--data", help="dataset folder")
    ap.add_argument("--out", help="output folder (checkpoints, logs)")
    ap.add_argument("--preset", help="swin_b (release), swin_t or tiny")
    ap.add_argument("--init", help="imagenet:<timm swin file>, a PAL4VST checkpoint or a release name")
    ap.add_argument("--iters", type=int)
    ap.add_argument("--batch", type=int, help="global batch size")
    ap.add_argument("--micro-batch", type=int, dest="micro_batch")
    ap.add_argument("--crop", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--amp", choices=["auto", "bf16", "fp16", "none"])
    ap.add_argument("--device")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--val-interval", type=int, dest="val_interval")
    ap.add_argument("--ckpt-interval", type=int, dest="ckpt_interval")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")


def apply_overrides(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set: unknown config key {key!r}")
        current = getattr(cfg, key)
        changes[key] = json.loads(value) if not isinstance(current, str) else value
        if isinstance(current, tuple):
            changes[key] = tuple(changes[key])
    return dataclasses.replace(cfg, **changes)
