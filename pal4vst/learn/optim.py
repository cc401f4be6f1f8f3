"""AdamW with MMEngine's paramwise rules, and the released warm-up + poly schedule."""

from __future__ import annotations

import torch

from .config import TrainConfig


def param_groups(model: torch.nn.Module, cfg: TrainConfig, no_decay_keys: tuple[str, ...]) -> list[dict]:
    """MMEngine's custom_keys semantics: the longest matching key wins (ties alphabetical);
    ``head`` multiplies the learning rate by ``head_lr_mult``; ``no_decay_keys`` drop weight decay."""
    rules = {"head": dict(lr_mult=cfg.head_lr_mult)}
    rules.update({k: dict(decay_mult=0.0) for k in no_decay_keys})
    keys = sorted(sorted(rules), key=len, reverse=True)
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr_mult, decay_mult = 1.0, 1.0
        for k in keys:
            if k in name:
                lr_mult = rules[k].get("lr_mult", 1.0)
                decay_mult = rules[k].get("decay_mult", 1.0)
                break
        groups.setdefault((lr_mult, decay_mult), []).append(p)
    return [{"params": ps, "lr": cfg.lr * lm, "weight_decay": cfg.weight_decay * dm, "lr_mult": lm}
            for (lm, dm), ps in sorted(groups.items())]


# The release's custom_keys are 'pos_block' and 'norm'; 'pos_block' names nothing in Swin, so the
# relative position bias tables were decayed. We exclude them too (Swin's own recipe); set
# no_decay_keys to ("pos_block", "norm") in code to reproduce the release to the letter.
NO_DECAY_KEYS = ("pos_block", "norm", "relative_position_bias_table")


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, no_decay_keys=NO_DECAY_KEYS) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, cfg, no_decay_keys), lr=cfg.lr, betas=cfg.betas,
                             weight_decay=cfg.weight_decay)


def lr_factor(it: int, cfg: TrainConfig) -> float:
    """LinearLR(start_factor=warmup_ratio) for ``warmup_iters``, then PolyLR(power 1) to ``poly_end``
    (to the end of the run when ``poly_end`` is 0)."""
    if it < cfg.warmup_iters:
        return cfg.warmup_ratio + (1.0 - cfg.warmup_ratio) * it / cfg.warmup_iters
    span = max(1, (cfg.poly_end or cfg.iters) - cfg.warmup_iters)
    return max(0.0, 1.0 - (it - cfg.warmup_iters) / span)


def describe_schedule(cfg: TrainConfig) -> str:
    """One line for the start of a run: the peak, the warm-up, the decay, and where this run stops."""
    end = cfg.poly_end or cfg.iters
    heads = f" (heads x{cfg.head_lr_mult:g})" if cfg.head_lr_mult != 1 else ""
    return (f"schedule: lr {cfg.lr:g}{heads}, warm-up {cfg.warmup_iters} iterations from {cfg.warmup_ratio:g}x, "
            f"then linear decay to 0 at iteration {end}; this run stops at {cfg.iters} with the lr at "
            f"{lr_factor(cfg.iters - 1, cfg):.0%} of its peak")


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(it, cfg))
