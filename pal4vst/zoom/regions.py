"""From any mask to the regions to repair: the components of the grown mask (:mod:`pal4vst.masks`),
largest first, at most ``max_regions``, neighbours whose zoom squares overlap merged into one."""

from __future__ import annotations

import numpy as np

from ..masks import Region, components, merge_overlapping, paint
from ..settings import RegionOptions
from .squares import square_around


def grow_pixels(opts: RegionOptions, shape: tuple[int, ...]) -> int:
    """How far ``opts`` grows a mask of ``shape``: ``grow`` plus ``grow_percent`` of the short side."""
    return int(opts.grow + round(opts.grow_percent / 100.0 * min(shape[:2])))


def find_regions(mask: np.ndarray, opts: RegionOptions = RegionOptions()) -> tuple[np.ndarray, list[Region]]:
    """The repair mask (uint8 0/1, exactly the union of the returned regions) and its regions,
    largest first (ties by position), at most ``opts.max_regions``; with ``opts.merge``, regions
    whose zoom squares overlap become one."""
    shape = np.shape(mask)[:2]
    comps = components(mask, grow_pixels(opts, shape), opts.fill_holes, opts.min_area)
    if opts.max_regions > 0:
        comps = comps[: opts.max_regions]
    if opts.merge:
        reach = lambda b: square_around(b, opts.context, opts.min_size)  # noqa: E731
        groups = [g for _, g in merge_overlapping([c.bbox for c in comps], reach)]
    else:
        groups = [[i] for i in range(len(comps))]
    regions = [_union([comps[i] for i in g]) for g in groups]
    regions.sort(key=lambda r: (-r.area, r.bbox[1], r.bbox[0]))
    return paint(regions, shape), regions


def _union(members: list[Region]) -> Region:
    if len(members) == 1:
        return members[0]
    x0, y0 = min(m.bbox[0] for m in members), min(m.bbox[1] for m in members)
    x1, y1 = max(m.bbox[2] for m in members), max(m.bbox[3] for m in members)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for m in members:
        mx0, my0, mx1, my1 = m.bbox
        mask[my0 - y0:my1 - y0, mx0 - x0:mx1 - x0] |= m.mask
    return Region((x0, y0, x1, y1), mask)
