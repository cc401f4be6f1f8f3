"""ComfyUI layouts <-> numpy: IMAGE is ``[B, H, W, C]`` float 0..1, MASK ``[B, H, W]`` float 0..1."""

from __future__ import annotations

import numpy as np
import torch


def image_batch_to_numpy(images: torch.Tensor) -> list[np.ndarray]:
    """float32 ``HxWx3`` arrays (0..1), without a round trip through uint8 (keeps pixels exact)."""
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected an IMAGE batch [B, H, W, C], got shape {tuple(images.shape)}")
    arr = images.detach().cpu().float().numpy()
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return [np.ascontiguousarray(a[..., :3]) for a in arr]


def mask_batch_to_numpy(masks: torch.Tensor, count: int) -> list[np.ndarray]:
    """One float mask per image; a single mask is shared by a whole batch."""
    if masks.ndim == 2:
        masks = masks[None]
    arr = masks.detach().cpu().float().numpy()
    if arr.shape[0] == 1 and count > 1:
        arr = np.repeat(arr, count, axis=0)
    if arr.shape[0] != count:
        raise ValueError(f"{arr.shape[0]} masks for {count} images")
    return list(arr)


def to_image_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """Stack ``HxWx3`` arrays (uint8 or float 0..1) into an IMAGE batch."""
    out = [torch.from_numpy(a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False))
           for a in arrays]
    return torch.stack(out)


def to_mask_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in arrays])
