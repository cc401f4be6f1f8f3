"""Which weights learn in a fine-tune (``TrainConfig.tune``): all of them (the paper's recipe), the
late stages and the heads, the heads only, or low-rank adapters in every attention layer plus the
heads. What is frozen needs no gradient, no optimiser state and, before the first layer that
learns, no stored activations: the cheaper variants fit smaller GPUs and run faster on CPUs
(``benchmarks/bench_finetune.py`` measures them)."""

from __future__ import annotations

import torch.nn as nn

from ..model.lora import add_lora

TUNES = ("all", "late", "heads", "lora")
HEADS = ("decode_head.", "auxiliary_head.")


def _late(name: str, stages: int) -> bool:
    """The last two stages of the backbone, their output norms, and the heads."""
    if name.startswith(HEADS):
        return True
    for i in range(max(0, stages - 2), stages):
        if name.startswith((f"backbone.stages.{i}.", f"backbone.norm{i}.")):
            return True
    return False


def prepare(model: nn.Module, tune: str, rank: int = 8) -> int:
    """Set what learns in ``model`` as ``tune`` says (adding adapters for ``lora``); returns the
    number of parameters that learn."""
    if tune not in TUNES:
        raise ValueError(f"tune must be one of {', '.join(TUNES)}, got {tune!r}")
    if tune == "lora":
        add_lora(model, lambda name, _: name.startswith("backbone.") and name.endswith((".qkv", ".proj")), rank)
    stages = len(getattr(getattr(model, "config", None), "depths", ())) or 4
    for name, p in model.named_parameters():
        if tune == "all":
            p.requires_grad_(True)
        elif tune == "late":
            p.requires_grad_(_late(name, stages))
        elif tune == "heads":
            p.requires_grad_(name.startswith(HEADS))
        else:
            p.requires_grad_(name.startswith(HEADS) or name.endswith((".lora_a", ".lora_b")))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
