"""Mask files as people draw them, read one way by every host, the command line and training.

A pixel is broken where the mask is bright: white (or any colour whose brightest channel is at
least half-way) on black. Beyond a plain 0/255 grey PNG that covers:

* palette images, read by their colours (a palette whose index 0 is white is white there);
* marks only in the alpha channel: a transparent file whose strokes are opaque (its colours,
  often black everywhere, mark nothing), and transparent pixels are never marked;
* 16-bit and RGB(A) masks, at half their range;
* masks of only 0 and 1 (a label saved from an array without scaling): 1 is broken;
* JPEG masks, at the half-way threshold with a note naming the file (JPEG blurs the edges).

A file that is no mask (a photo saved under a mask's name: grey levels throughout) or cannot be
read is a :class:`MaskFileError` naming it: never taken as "nothing is broken".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIDDLE_GREY_LIMIT = 0.25  # a drawn mask's soft edges are a thin share of it; a photo's greys are most of it


class MaskFileError(ValueError):
    """A mask file that cannot be read as a mask; the message names it and says why."""


@dataclass
class MaskFile:
    """``marked``: bool ``HxW``, True where broken; ``note``: a remark to show the user, or ''."""

    marked: np.ndarray
    note: str = ""


def _planes(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, int]:
    """``(level, alpha, raw_max)``: the brightest colour channel and the alpha channel (None when
    opaque), both scaled to 0..1, and the largest raw value (for 0/1 masks)."""
    if im.mode == "P" or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        raw = np.asarray(im).astype(np.int64)
        return raw / 65535.0, None, int(raw.max(initial=0))
    if im.mode == "F":  # floats: 0..1
        return np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0), None, -1
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    raw = np.asarray(im)
    raw = raw[..., None] if raw.ndim == 2 else raw
    has_alpha = im.mode in ("LA", "RGBA")
    colour = raw[..., :-1] if has_alpha else raw
    alpha = raw[..., -1] / 255.0 if has_alpha and (raw[..., -1] < 255).any() else None
    return colour.max(axis=-1) / 255.0, alpha, int(colour.max(initial=0))


def read_mask_file(path: str | Path) -> MaskFile:
    """Read the mask file ``path`` (see the module's rules)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            fmt = im.format
            level, alpha, raw_max = _planes(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise MaskFileError(f"{path.name}: cannot be read as a mask ({e})") from None
    if raw_max == 1 and alpha is None:  # 0/1: a label written without scaling
        return MaskFile(level > 0)
    plane = level
    if alpha is not None:
        opaque = alpha >= 0.5
        if not (level[opaque] >= 0.5).any():
            plane = alpha  # the colours mark nothing where the file is opaque: the strokes are the alpha
        else:
            plane = np.where(opaque, level, 0.0)
    middle = float(((plane > 0.1) & (plane < 0.9)).mean())
    if middle > MIDDLE_GREY_LIMIT:
        raise MaskFileError(f"{path.name}: not a mask ({middle:.0%} of it is neither dark nor bright; a mask is white "
                            "where broken and black elsewhere)")
    note = ""
    if fmt == "JPEG":
        note = f"{path.name}: a JPEG mask, read at the half-way threshold (save masks as PNG: JPEG blurs their edges)"
    return MaskFile(plane >= 0.5, note)
