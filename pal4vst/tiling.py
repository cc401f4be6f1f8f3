"""Tiled detection for large images whose artifacts are small: overlapping windows at the image's
own scale, their logits blended with ramps that fade each window's border."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread window starts covering ``length`` with at least ``overlap`` pixels shared."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_weight(size: int, overlap: int, device: torch.device) -> torch.Tensor:
    """A separable ramp that fades window borders over ``overlap`` pixels (never zero)."""
    r = torch.ones(size, device=device)
    if overlap > 0:
        edge = (torch.arange(overlap, device=device, dtype=torch.float32) + 1.0) / (overlap + 1.0)
        r[:overlap] = edge
        r[-overlap:] = edge.flip(0)
    return r[:, None] * r[None, :]


def blend_tiles(image: np.ndarray, size: int, overlap: int, batch: int,
                run: Callable[[list[np.ndarray]], torch.Tensor], device: torch.device) -> torch.Tensor:
    """The ``HxW`` map of ``image`` (both sides at least ``size``) blended from ``size x size``
    windows; ``run`` maps up to ``batch`` windows to their ``[N, 1, size, size]`` maps."""
    h, w = image.shape[:2]
    boxes = [(y, x) for y in tile_starts(h, size, overlap) for x in tile_starts(w, size, overlap)]
    acc = torch.zeros((h, w), device=device)
    weight = torch.zeros((h, w), device=device)
    ramp = tile_weight(size, overlap, device)
    for i in range(0, len(boxes), batch):
        group = boxes[i:i + batch]
        for (y, x), d in zip(group, run([image[y:y + size, x:x + size] for y, x in group])):
            acc[y:y + size, x:x + size] += d[0] * ramp
            weight[y:y + size, x:x + size] += ramp
    return acc / weight
