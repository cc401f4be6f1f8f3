"""The released training recipe as a dataclass; every value can be overridden (JSON file, flags)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import field

from ..model.segmenter import PRESETS
from ..options import add_arguments, option, settings
from .adapt import TUNES
from .errors import LearnError
from .recipes import DEFAULT_LR, MODEL_LR, RECIPES


@settings
class TrainConfig:
    """Defaults are the official unified config (MMSegmentation 1.x, ../shared/reference).

    The released schedule decays the learning rate (poly, power 1) towards 160k iterations while
    training stops at 20k, so the learning rate never gets near zero: ``poly_end`` keeps that
    (``poly_end = 0`` decays to zero at the end of the run). :data:`RECIPES` names other starts.
    Every scalar setting is declared with its help and range (checked when a config is built);
    ``model``, ``ratio_range`` and ``betas`` are set from a JSON file or ``--set``.
    """

    data: str = option("", "dataset folder (released layout, flat name + name_mask, or RGBA)")
    out: str = option("runs/pal4vst", "output folder (checkpoints, logs)")
    preset: str = option("swin_b", "model size: swin_b (the release), swin_t or tiny", choices=tuple(PRESETS))
    model: dict = field(default_factory=dict)  # ModelConfig fields replacing the preset's, e.g. {"embed_dim": 32}
    init: str = option("", "start from: random (empty), imagenet:<timm Swin-B 22k file>, a PAL4VST checkpoint or a "
                       "release name")
    iters: int = option(20_000, "optimiser steps", min=1, max=10_000_000)
    batch: int = option(8, "global batch, kept with gradient accumulation across devices", min=1, max=4096)
    micro_batch: int = option(0, "images per device and step (0 = batch / number of processes)", min=0, max=4096)
    crop: int = option(512, "training crop side (pixels)", min=16, max=4096)
    scale: int = option(512, "RandomResize scale: the short side before the ratio range", min=16, max=8192)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = option(0.75, "largest share one class may take of a crop (MMSeg's cat_max_ratio)",
                                  min=0.0, max=1.0)
    flip: float = option(0.5, "probability of a horizontal flip", min=0.0, max=1.0)
    ignore_index: int = option(255, "internal label of ignored pixels (padding)", min=0, max=255)
    label_ignore: int = option(-1, "a label-file value to ignore, e.g. 255 (-1: every non-zero pixel is an artifact)",
                               min=-1, max=65535)
    lr: float = option(6e-5, "peak learning rate (AdamW)", min=0.0, max=1.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = option(0.01, "AdamW weight decay", min=0.0, max=1.0)
    head_lr_mult: float = option(10.0, "learning-rate multiplier of the decode and auxiliary heads", min=0.0,
                                 max=1000.0)
    warmup_iters: int = option(1500, "linear warm-up steps", min=0, max=10_000_000)
    warmup_ratio: float = option(1e-6, "learning rate at the start of the warm-up, as a share of the peak", min=0.0,
                                 max=1.0)
    poly_end: int = option(160_000, "iteration where the poly decay reaches zero (0: the run's end)", min=0,
                           max=100_000_000)
    aux_weight: float = option(0.4, "weight of the auxiliary head's loss", min=0.0, max=10.0)
    tune: str = option("all", "which weights learn: all (the paper's fine-tune), late (the last two stages and the "
                       "heads), heads (the decode and auxiliary heads), lora (low-rank adapters in every attention "
                       "layer, and the heads)", choices=TUNES)
    lora_rank: int = option(8, "rank of the adapters when tune is lora", min=1, max=256)
    freeze_bn: bool = option(False, "keep the BatchNorm layers' running statistics (few-shot fine-tunes)")
    anchor: float = option(0.0, "pull the weights that learn back towards their start by this x the learning rate "
                           "each step (L2-SP: a fine-tune keeps what the base knew)", min=0.0, max=1e6)
    drop_path: float = option(0.3, "stochastic depth rate of the backbone", min=0.0, max=1.0)
    val_interval: int = option(500, "validate every this many steps", min=1, max=10_000_000)
    ckpt_interval: int = option(500, "write OUT/last.pt every this many steps", min=1, max=10_000_000)
    log_interval: int = option(10, "print a log line every this many steps", min=1, max=10_000_000)
    amp: str = option("auto", "mixed precision: auto (bf16 where supported), bf16, fp16, none",
                      choices=("auto", "bf16", "fp16", "none"))
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", choices=("auto", "cpu", "cuda", "mps"),
                         open_choices=True)
    workers: int = option(2, "data loading processes", min=0, max=256)
    seed: int = option(0, "seed of sampling, augmentation and dropout", min=0, max=2**63 - 1)
    task: str = option("", "a label for logs")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_lr(config) -> float:
    """The peak fine-tune learning rate of a model of this architecture (:data:`MODEL_LR`)."""
    for name, p in PRESETS.items():
        if (p.embed_dim, tuple(p.depths), tuple(p.num_heads)) == (config.embed_dim, tuple(config.depths),
                                                                   tuple(config.num_heads)):
            return MODEL_LR.get(name, DEFAULT_LR)
    return DEFAULT_LR


def recipe(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise LearnError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
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


FLAGS = ["data", "out", "preset", "init", "iters", "batch", "micro_batch", "crop", "lr", "tune", "amp", "device",
         "workers",
         "seed", "val_interval", "ckpt_interval"]  # the common knobs; any field with --set


def add_override_args(ap: argparse.ArgumentParser) -> None:
    """The common knobs as flags (help, choices and ranges from the declarations; a flag not
    given leaves the recipe's value); any other field with ``--set key=value``."""
    add_arguments(ap, TrainConfig, FLAGS, keep_absent=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")
    ap.add_argument("--recipe", choices=[r for r in RECIPES if not r.startswith("teach")],
                    help="starting point: release (default of train), finetune or scratch (short runs of small presets "
                    "from random weights)")


def apply_overrides(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``cfg`` with the flags and ``--set`` values of ``args``; :func:`explicit_keys` names them."""
    return dataclasses.replace(cfg, **_overrides(cfg, args))


def explicit_keys(args: argparse.Namespace, cfg: TrainConfig) -> set[str]:
    """The config fields the user set (flags, ``--set``), as opposed to the recipe's defaults."""
    return set(_overrides(cfg, args))


def _overrides(cfg: TrainConfig, args: argparse.Namespace) -> dict:
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return {**changes, **parse_sets(args.set, cfg)}


def parse_sets(items: list[str], cfg: TrainConfig) -> dict:
    """``--set key=value`` items as values of ``cfg``'s fields: JSON for numbers, lists, objects
    and booleans (a list becomes a tuple where the field is one), strings as given."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise LearnError(f"--set: unknown config key {key!r}")
        current = getattr(cfg, key)
        if not isinstance(current, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise LearnError(f"--set {key}={value}: not a {type(current).__name__} (write it as JSON: 0.5, true, "
                                 "[1, 2], {\"key\": 1})") from None
        changes[key] = tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value
    return changes
