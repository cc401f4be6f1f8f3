"""Zoom-in refinement: detect -> regions -> zoom crops -> inpaint -> composite -> detect again."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .composite import composite
from .crops import CropOptions, ZoomCrops, zoom_crops
from ..detect import Detector
from .inpaint import Inpainter
from .regions import RegionOptions


@dataclass
class RefineResult:
    """The refined image, the union of the masks it repaired (uint8 0/1) and the PAR history."""

    image: np.ndarray
    repaired: np.ndarray
    par_before: float
    par_after: float
    pars: list[float] = field(default_factory=list)
    crops: list[ZoomCrops] = field(default_factory=list)

    @property
    def passes(self) -> int:
        return len(self.crops)


def refine(
    image: np.ndarray,
    detector: Detector,
    inpainter: Inpainter,
    regions: RegionOptions = RegionOptions(),
    crops: CropOptions = CropOptions(),
    *,
    feather: int = 4,
    colour_match: bool = False,
    iterations: int = 1,
    target_par: float | None = None,
    min_par: float = 0.0,
) -> RefineResult:
    """Repair ``image`` (``HxWx3`` uint8). Nothing is done when its PAR is at or under ``min_par``.
    Repeats up to ``iterations`` passes, stopping when the PAR is at or under ``target_par`` or a
    pass does not lower it (that pass is discarded)."""
    det = detector(image)
    pars = [det.par]
    current, mask = image, det.prob
    repaired = np.zeros(image.shape[:2], np.uint8)
    done: list[ZoomCrops] = []
    for _ in range(max(1, iterations) if pars[0] > min_par else 0):
        if target_par is not None and pars[-1] <= target_par:
            break
        zc = zoom_crops([current], [mask], regions, crops)
        if not len(zc):
            break
        painted = inpainter(zc.images, zc.masks)
        candidate = composite(current, painted, zc.records, feather=feather, colour_match=colour_match,
                              originals=zc.images)
        det = detector(candidate)
        if det.par >= pars[-1] and done:
            break
        repaired |= zc.repair_masks[0]
        current, mask = candidate, det.prob
        pars.append(det.par)
        done.append(zc)
    return RefineResult(current, repaired, pars[0], pars[-1], pars, done)
