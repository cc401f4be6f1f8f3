"""From an artifact mask to the regions to repair: binarise, grow/shrink, fill holes, drop specks,
split into connected components (8-connectivity), merge neighbours whose crops overlap, cap.

Any mask will do (PAL Detect's, a hand-painted one, SAM's): boolean, 0/1, 0/255, or soft values
marked above 0.5. Everything works on uint8 masks with OpenCV; no float64 full-image copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..settings import MaskOptions, RegionOptions


@dataclass
class Region:
    """A connected artifact region: bounding box ``(x0, y0, x1, y1)`` (exclusive end) and its mask
    inside that box."""

    bbox: tuple[int, int, int, int]
    mask: np.ndarray = field(repr=False)

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


def crop_side(bbox: tuple[int, int, int, int], context: float, min_size: int) -> int:
    """Side of the square zoom crop for a bounding box: ``context`` x its longest side, at least ``min_size``."""
    x0, y0, x1, y1 = bbox
    return max(int(min_size), int(np.ceil(context * max(x1 - x0, y1 - y0))))


def _crop_box(bbox: tuple[int, int, int, int], context: float, min_size: int) -> tuple[int, int, int, int]:
    side = crop_side(bbox, context, min_size)
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x0, y0 = int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2))
    return x0, y0, x0 + side, y0 + side


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


Box = tuple[int, int, int, int]


def _merge_overlapping(boxes: list[Box], reach: Callable[[Box], Box] = lambda b: b) -> list[tuple[Box, list[int]]]:
    """``(union box, member indices)`` of groups of boxes whose ``reach`` overlaps, merged again
    until no two groups' reaches overlap (the groups keep the order of their first member)."""
    groups = [(tuple(b), [i]) for i, b in enumerate(boxes)]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        reaches = [reach(b) for b, _ in groups]
        for i in range(len(groups)):
            j = next((j for j in range(i + 1, len(groups)) if _overlaps(reaches[i], reaches[j])), None)
            if j is not None:
                (a, first), (b, second) = groups[i], groups.pop(j)
                groups[i] = ((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])), first + second)
                merged = True
                break
    return groups


def _grow_pixels(opts: RegionOptions, shape: tuple[int, ...]) -> int:
    return int(opts.grow + round(opts.grow_percent / 100.0 * min(shape[:2])))


def _grow_and_fill(m: np.ndarray, grow: int, fill: bool) -> np.ndarray:
    m = grow_mask(m, grow)
    return fill_holes(m) if fill else m


def prepare_mask(mask: np.ndarray, opts: RegionOptions = RegionOptions()) -> np.ndarray:
    """Binarise, grow/shrink and fill holes over the whole image: the uint8 0/1 mask the regions
    come from (:func:`find_regions` does the same in windows around the marks)."""
    m = binarize(mask)
    return _grow_and_fill(m, _grow_pixels(opts, m.shape), opts.fill_holes)


def clean_mask(mask: np.ndarray, opts: MaskOptions = MaskOptions()) -> np.ndarray:
    """``mask`` (bool) grown/shrunk and without areas under ``min_area``, as :class:`MaskOptions` says."""
    if not (opts.grow or opts.min_area):
        return binarize(mask).astype(bool)
    ropts = RegionOptions(grow=opts.grow, min_area=opts.min_area, fill_holes=False, merge=False)
    return find_regions(mask, ropts)[0].astype(bool)


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
    return [box for box, _ in _merge_overlapping(boxes)]


def _components(m: np.ndarray, opts: RegionOptions, grow: int) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Components ``(bbox, mask in bbox)`` of the prepared mask, each found in its own window."""
    comps = []
    for x0, y0, x1, y1 in _windows(m, max(grow, 0) + 2):
        win = _grow_and_fill(np.ascontiguousarray(m[y0:y1, x0:x1]), grow, opts.fill_holes)
        if not win.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(win, connectivity=8)
        for lab in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[lab])
            if area >= opts.min_area:
                comps.append(((x0 + x, y0 + y, x0 + x + bw, y0 + y + bh), labels[y:y + bh, x:x + bw] == lab))
    return comps


def find_regions(mask: np.ndarray, opts: RegionOptions = RegionOptions()) -> tuple[np.ndarray, list[Region]]:
    """The repair mask (uint8 0/1, exactly the union of the returned regions) and its regions,
    largest first (ties by position), at most ``opts.max_regions``.

    Thresholding, growing, hole filling and labelling run in windows around the marked pixels
    only, with the same result as on the whole image.
    """
    m = binarize(mask)
    out = np.zeros(m.shape, np.uint8)
    if not m.any():
        return out, []
    comps = _components(m, opts, _grow_pixels(opts, m.shape))
    comps.sort(key=lambda c: (-int(np.count_nonzero(c[1])), c[0][1], c[0][0]))
    if opts.max_regions > 0:
        comps = comps[: opts.max_regions]
    if opts.merge:
        groups = [g for _, g in _merge_overlapping([c[0] for c in comps], lambda b: _crop_box(b, opts.context, opts.min_size))]
    else:
        groups = [[i] for i in range(len(comps))]
    regions: list[Region] = []
    for g in groups:
        members = [comps[i] for i in g]
        x0 = min(c[0][0] for c in members)
        y0 = min(c[0][1] for c in members)
        x1 = max(c[0][2] for c in members)
        y1 = max(c[0][3] for c in members)
        region_mask = np.zeros((y1 - y0, x1 - x0), bool)
        for (cx0, cy0, cx1, cy1), cm in members:
            region_mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] |= cm
        regions.append(Region((x0, y0, x1, y1), region_mask))
    regions.sort(key=lambda r: (-r.area, r.bbox[1], r.bbox[0]))
    for r in regions:
        x0, y0, x1, y1 = r.bbox
        out[y0:y1, x0:x1] |= r.mask.view(np.uint8)
    return out, regions
