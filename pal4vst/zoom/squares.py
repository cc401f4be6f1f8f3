"""The zoom-in square around a region, in one place: its side, the square centred on the region
wherever that falls (:func:`square_around`, used to tell whether two crops would overlap), and
the same square shifted to lie inside the image, padded where the image is smaller
(:func:`square_inside`, the crop that is cut)."""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def square_side(bbox: Box, context: float, min_size: int) -> int:
    """``context`` x the longest side of ``bbox`` ``(x0, y0, x1, y1)``, at least ``min_size``."""
    x0, y0, x1, y1 = bbox
    return max(int(min_size), int(np.ceil(context * max(x1 - x0, y1 - y0))))


def square_around(bbox: Box, context: float, min_size: int) -> Box:
    """The square ``(x0, y0, x1, y1)`` centred on ``bbox``, not moved to fit any image."""
    side = square_side(bbox, context, min_size)
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x0, y0 = int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2))
    return x0, y0, x0 + side, y0 + side


def square_inside(bbox: Box, image_size: tuple[int, int], context: float,
                  min_size: int) -> tuple[tuple[int, int, int], tuple[int, int, int, int]]:
    """``(x0, y0, side)`` of the zoom crop for ``bbox`` and its padding ``(l, t, r, b)``.

    The square is centred on the region and shifted to stay inside the image; on an axis where
    the image is shorter than the square it is centred on the image and padded.
    """
    w, h = image_size
    side = square_side(bbox, context, min_size)
    x0 = _place(bbox[0], bbox[2], side, w)
    y0 = _place(bbox[1], bbox[3], side, h)
    pad = (max(0, -x0), max(0, -y0), max(0, x0 + side - w), max(0, y0 + side - h))
    return (x0, y0, side), pad


def _place(lo: int, hi: int, side: int, length: int) -> int:
    if side >= length:
        return -((side - length) // 2)
    start = int(np.floor((lo + hi) / 2 - side / 2))
    return min(max(start, 0), length - side)
