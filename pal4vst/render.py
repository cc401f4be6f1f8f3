"""Pictures for people: the authors' overlay (image darkened, artifacts in magenta) and a legend."""

from __future__ import annotations

import numpy as np

ARTIFACT_COLOUR = (255, 0, 255)


def overlay(image: np.ndarray, mask: np.ndarray, prob: np.ndarray | None = None, alpha: float = 0.6) -> np.ndarray:
    """``HxWx3`` uint8: the image at half brightness with artifacts tinted magenta.

    With ``prob`` the tint follows the soft probability inside the mask, so confident regions
    stand out; without it the mask is painted flat.
    """
    base = image.astype(np.float32) * 0.5
    weight = mask.astype(np.float32) if prob is None else np.where(mask, np.maximum(prob, 0.5), 0.0).astype(np.float32)
    weight = (weight * alpha)[..., None]
    colour = np.asarray(ARTIFACT_COLOUR, dtype=np.float32)
    out = base * (1.0 - weight) + colour * weight
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """0/255 uint8 from a mask (any non-zero value is marked)."""
    return np.where(np.asarray(mask) != 0, np.uint8(255), np.uint8(0))


def prob_to_uint8(prob: np.ndarray) -> np.ndarray:
    """Probability in [0, 1] as 8-bit grey (for pictures; :func:`prob_to_uint16` keeps precision)."""
    return np.round(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


def prob_to_uint16(prob: np.ndarray) -> np.ndarray:
    """Probability in [0, 1] as 16-bit (so thresholds can be chosen later without quantisation)."""
    return np.round(np.clip(prob, 0.0, 1.0) * 65535.0).astype(np.uint16)
