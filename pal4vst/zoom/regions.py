"""From any mask to the regions to repair: the components of the grown mask (:mod:`pal4vst.masks`),
largest first, at most ``max_regions``, neighbours whose zoom squares overlap merged into one.

A merge never makes a region's repair coarser than ``merge_limit`` times what it would get alone:
a group's crop side may be at most ``merge_limit`` x the crop side of each of its members on its
own. Without that bound, a chain of small neighbours (each crop overlapping the next) would merge
into one crop of the whole chain, inpainted at the working size: less zoom, not more.
"""

from __future__ import annotations

import numpy as np

from ..masks import Region, components, merge_overlapping, paint, union_box
from ..settings import RegionOptions
from .squares import square_around, square_side


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
        sides = [square_side(c.bbox, opts.context, opts.min_size) for c in comps]

        def allow(union: tuple[int, int, int, int], members: list[int]) -> bool:
            side = square_side(union, opts.context, opts.min_size)
            return side <= opts.merge_limit * min(sides[i] for i in members)

        reach = lambda b: square_around(b, opts.context, opts.min_size)  # noqa: E731
        groups = [g for _, g in merge_overlapping([c.bbox for c in comps], reach, allow)]
    else:
        groups = [[i] for i in range(len(comps))]
    regions = [_union([comps[i] for i in g]) for g in groups]
    regions.sort(key=lambda r: (-r.area, r.bbox[1], r.bbox[0]))
    return paint(regions, shape), regions


def _union(members: list[Region]) -> Region:
    if len(members) == 1:
        return members[0]
    x0, y0, x1, y1 = union_box([m.bbox for m in members])
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for m in members:
        mx0, my0, mx1, my1 = m.bbox
        mask[my0 - y0:my1 - y0, mx0 - x0:mx1 - x0] |= m.mask
    return Region((x0, y0, x1, y1), mask, sum(m.members for m in members))
