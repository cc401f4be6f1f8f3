"""The released training recipe as a dataclass; every value can be overridden (JSON file, flags)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Defaults are the official unified config (MMSegmentation 1.x, ../shared/reference).

    The released schedule decays the learning rate (poly, power 1) towards 160k iterations while
    training stops at 20k, so the learning rate never gets near zero: ``poly_end`` keeps that
    (``poly_end = 0`` decays to zero at the end of the run). :data:`RECIPES` names other starts.
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
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Named starting points; a config file, flags and --set apply on top.
RECIPES: dict[str, dict] = {
    # The official unified config: Swin-B from ImageNet-22k weights, 20k iterations of batch 8.
    "release": {},
    # Few-shot fine-tuning of a released model (the paper's ~10 images of an unseen generator).
    "finetune": dict(iters=2000, warmup_iters=100, poly_end=2000, val_interval=200, ckpt_interval=200,
                     out="runs/finetune"),
    # Small presets learning from random weights in a short run (what tests/test_training.py's
    # learning test uses): a high learning rate reached after 50 steps and decayed to zero at the
    # run's end, no drop path, milder rescaling.
    "scratch": dict(lr=1e-3, head_lr_mult=1.0, warmup_iters=50, poly_end=0, drop_path=0.0, ratio_range=(0.75, 1.5)),
}


def recipe(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return TrainConfig.from_dict(RECIPES[name])


def fit_warmup(cfg: TrainConfig, explicit: set[str]) -> tuple[TrainConfig, str | None]:
    """A warm-up the run would spend most of its time in: scaled to a tenth of the run when it is
    the recipe's default, left alone (with a warning) when the user asked for it. Returns the
    config and the message to print, if any."""
    if cfg.warmup_iters * 4 <= cfg.iters:
        return cfg, None
    if "warmup_iters" in explicit:
        if cfg.warmup_iters < cfg.iters:
            return cfg, None
        return cfg, (f"warning: warm-up of {cfg.warmup_iters} iterations is not shorter than the run ({cfg.iters}): "
                     f"the learning rate never reaches {cfg.lr:g}")
    short = max(1, cfg.iters // 10)
    return dataclasses.replace(cfg, warmup_iters=short), (
        f"the recipe's warm-up of {cfg.warmup_iters} iterations would take most of this {cfg.iters}-iteration run "
        f"(the learning rate would barely reach {cfg.lr:g}): scaled to {short}. --set warmup_iters=N sets it; "
        "for short runs from random weights, --recipe scratch")


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
    ap.add_argument("--recipe", choices=list(RECIPES), help="starting point: release (default of train), finetune "
                    "(default of finetune) or scratch (short runs of small presets from random weights)")


def apply_overrides(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``cfg`` with the flags and ``--set`` values of ``args``; :func:`explicit_keys` names them."""
    return dataclasses.replace(cfg, **_overrides(cfg, args))


def explicit_keys(args: argparse.Namespace, cfg: TrainConfig) -> set[str]:
    """The config fields the user set (flags, ``--set``), as opposed to the recipe's defaults."""
    return set(_overrides(cfg, args))


def _overrides(cfg: TrainConfig, args: argparse.Namespace) -> dict:
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
    return changes
