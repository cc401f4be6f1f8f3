"""Low-rank adapters (LoRA) for the segmenter's linear layers: the layer's own weight stays frozen
and learns as ``W + scale * B @ A``. Saved models never carry adapters: :func:`folded_state_dict`
gives the weights with the adapters folded in, in the released layout, so a model fine-tuned with
LoRA loads wherever any other does."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

ADAPTER_KEYS = ("lora_a", "lora_b")


class LoRALinear(nn.Linear):
    """``base`` (its weight and bias, shared and frozen) plus a rank-``rank`` update; ``B`` starts
    at zero, so the layer starts as ``base`` exactly."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, **kw))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = (alpha if alpha is not None else rank) / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    def folded_weight(self) -> torch.Tensor:
        return self.weight + self.scale * (self.lora_b @ self.lora_a)


def add_lora(model: nn.Module, chosen: Callable[[str, nn.Linear], bool], rank: int) -> int:
    """Replace every ``nn.Linear`` of ``model`` that ``chosen(name, layer)`` picks by a
    :class:`LoRALinear` over it; returns how many."""
    picked = [(name, m) for name, m in model.named_modules() if type(m) is nn.Linear and chosen(name, m)]
    for name, layer in picked:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, LoRALinear(layer, rank))
    return len(picked)


def folded_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every adapter folded into its layer's weight and the adapter
    keys left out: the released layout."""
    sd = model.state_dict()
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear):
            prefix = f"{name}." if name else ""
            with torch.no_grad():
                sd[prefix + "weight"] = m.folded_weight().detach()
            for key in ADAPTER_KEYS:
                sd.pop(prefix + key, None)
    return sd
