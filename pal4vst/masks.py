"""The ground floor for masks, under detection and the zoom-in repair alike: binarise, grow or
shrink, fill holes, split into 8-connected components, PAR.

Any mask will do (a detection's, a hand-painted one, SAM's): boolean, 0/1, 0/255, or soft values
marked above 0.5. Everything works on uint8 masks with OpenCV; labelling, growing and hole filling
run only in windows around the marked pixels, with the same result as on the whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .settings import MaskOptions

Box = tuple[int, int, int, int]


def par(mask: np.ndarray) -> float:
    """Perceptual Artifacts Ratio: marked pixels / image pixels (any truthy value is marked)."""
    m = np.asarray(mask)
    return float(np.count_nonzero(m)) / m.size if m.size else 0.0


@dataclass
class Region:
    """A connected artifact region: bounding box ``(x0, y0, x1, y1)`` (exclusive end) and its mask
    inside that box."""

    bbox: tuple[int, int, int, int]
    mask: np.ndarray = field(repr=False)
    members: int = 1  # marked areas merged into this region (1: a region of its own)

    def __post_init__(self) -> None:
        # OpenCV's stats are numpy integers; boxes travel into JSON (crop records, API answers).
        self.bbox = tuple(int(v) for v in self.bbox)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def longest_side(self) -> int:
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, y1 - y0)


def binarize(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """uint8 0/1 mask from a bool, 0/1, 0/255 or probability mask (float: ``> threshold``)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.dtype == np.bool_:
        return m.view(np.uint8)
    if np.issubdtype(m.dtype, np.floating):
        return (m > threshold).astype(np.uint8)
    if m.dtype == np.uint8 and m.max(initial=0) > 1:
        return (m > 127).astype(np.uint8)
    return (m > 0).astype(np.uint8)


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate (``pixels > 0``) or erode (``< 0``) a uint8 0/1 mask by a Euclidean radius."""
    if pixels == 0 or not mask.any():
        return mask
    if pixels > 0:
        if mask.all():
            return mask
        dist = cv2.distanceTransform(1 - mask, cv2.DIST_L2, cv2.DIST_MASK_5)
        return (dist <= pixels).astype(np.uint8)
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1]
    return (dist > -pixels).astype(np.uint8)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background areas fully enclosed by the mask."""
    if not mask.any() or mask.all():
        return mask
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    out = mask.copy()
    out[holes] = 1
    return out


def count_components(mask: np.ndarray) -> int:
    """Number of 8-connected artifact components of a mask."""
    m = binarize(mask)
    return int(cv2.connectedComponents(m, connectivity=8)[0] - 1) if m.any() else 0


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def union_box(boxes: Sequence[Box]) -> Box:
    """The smallest box ``(x0, y0, x1, y1)`` that holds every one of ``boxes``."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def merge_overlapping(boxes: list[Box], reach: Callable[[Box], Box] = lambda b: b,
                      allow: Callable[[Box, list[int]], bool] | None = None) -> list[tuple[Box, list[int]]]:
    """``(union box, member indices)`` of groups of boxes whose ``reach`` overlaps, merged again
    until no two groups' reaches overlap (the groups keep the order of their first member).
    ``allow(union, members)`` may refuse a merge into ``union`` of the boxes with those indices;
    refused pairs stay apart."""
    groups = [(tuple(b), [i]) for i, b in enumerate(boxes)]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        reaches = [reach(b) for b, _ in groups]
        for i in range(len(groups)):
            j = next((j for j in range(i + 1, len(groups)) if _overlaps(reaches[i], reaches[j])
                      and (allow is None or allow(union_box([groups[i][0], groups[j][0]]),
                                                  groups[i][1] + groups[j][1]))), None)
            if j is not None:
                (a, first), (b, second) = groups[i], groups.pop(j)
                groups[i] = (union_box([a, b]), first + second)
                merged = True
                break
    return groups


def _max_pool(mask: np.ndarray, cell: int) -> np.ndarray:
    """uint8 map where each ``cell x cell`` block of ``mask`` holds its maximum (exact, no blur)."""
    h, w = mask.shape
    hp, wp = -(-h // cell) * cell, -(-w // cell) * cell
    if (hp, wp) != (h, w):
        mask = cv2.copyMakeBorder(mask, 0, hp - h, 0, wp - w, cv2.BORDER_CONSTANT, value=0)
    rows = mask.reshape(hp // cell, cell, wp).max(axis=1)
    return np.ascontiguousarray(rows.reshape(hp // cell, wp // cell, cell).max(axis=2))


def _windows(mask: np.ndarray, margin: int, cell: int = 8) -> list[tuple[int, int, int, int]]:
    """Disjoint windows ``(x0, y0, x1, y1)`` that hold every marked pixel with ``margin`` pixels
    around it; windows that would overlap are merged. Found on a ``cell``-times smaller map, so
    the full-resolution work below touches only the marked areas of a large image."""
    h, w = mask.shape
    small = _max_pool(mask, cell)
    n, _, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    boxes = [(max(0, x * cell - margin), max(0, y * cell - margin), min(w, (x + bw) * cell + margin),
              min(h, (y + bh) * cell + margin)) for x, y, bw, bh, _ in stats[1:]]
    return [box for box, _ in merge_overlapping(boxes)]


def grow_and_fill(m: np.ndarray, grow: int, fill: bool) -> np.ndarray:
    """``m`` (uint8 0/1) grown by ``grow`` pixels (shrunk when negative), then its holes filled."""
    m = grow_mask(m, grow)
    return fill_holes(m) if fill else m


def components(mask: np.ndarray, grow: int = 0, fill: bool = False, min_area: int = 1) -> list[Region]:
    """The 8-connected components of ``mask`` (any kind, see :func:`binarize`) after growing by
    ``grow`` pixels and filling holes, those of at least ``min_area`` pixels, largest first (ties
    by position); each found in its own window."""
    m = binarize(mask)
    if not m.any():
        return []
    found = []
    for x0, y0, x1, y1 in _windows(m, max(grow, 0) + 2):
        win = grow_and_fill(np.ascontiguousarray(m[y0:y1, x0:x1]), grow, fill)
        if not win.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(win, connectivity=8)
        for lab in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[lab])
            if area >= min_area:
                found.append(Region((x0 + x, y0 + y, x0 + x + bw, y0 + y + bh), labels[y:y + bh, x:x + bw] == lab))
    found.sort(key=lambda r: (-r.area, r.bbox[1], r.bbox[0]))
    return found


def paint(regions: list[Region], shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/1 mask of ``shape`` ``(H, W)`` holding the union of ``regions``."""
    out = np.zeros(shape, np.uint8)
    for r in regions:
        x0, y0, x1, y1 = r.bbox
        out[y0:y1, x0:x1] |= r.mask.view(np.uint8)
    return out


def clean_mask(mask: np.ndarray, opts: MaskOptions = MaskOptions()) -> np.ndarray:
    """``mask`` (bool) grown/shrunk and without areas under ``min_area``, as :class:`MaskOptions` says."""
    if not (opts.grow or opts.min_area):
        return binarize(mask).astype(bool)
    return paint(components(mask, opts.grow, False, opts.min_area), np.shape(mask)[:2]).astype(bool)
