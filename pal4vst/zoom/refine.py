"""Zoom-in refinement: detect -> regions -> zoom crops -> inpaint -> composite -> detect again."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detect import Detector
from ..settings import CropOptions, PasteOptions, RefineOptions, RegionOptions
from .composite import composite
from .crops import ZoomCrops, zoom_crops
from .inpaint import Inpainter


@dataclass
class RefineResult:
    """The refined image, the union of the masks it repaired (uint8 0/1), the PAR history, and
    each kept pass's crops as sent (``crops``) and as inpainted (``painted``)."""

    image: np.ndarray
    repaired: np.ndarray
    par_before: float
    par_after: float
    pars: list[float] = field(default_factory=list)
    crops: list[ZoomCrops] = field(default_factory=list)
    painted: list[np.ndarray] = field(default_factory=list)

    @property
    def passes(self) -> int:
        return len(self.crops)


def refine(
    image: np.ndarray,
    detector: Detector,
    inpainter: Inpainter,
    regions: RegionOptions = RegionOptions(),
    crops: CropOptions = CropOptions(),
    paste: PasteOptions = PasteOptions(),
    passes: RefineOptions = RefineOptions(),
) -> RefineResult:
    """Repair ``image`` (``HxWx3``, uint8 or float 0..1: the composite is exact for both; the
    inpainter gets crops of the same type). Nothing is done when its PAR is at or under
    ``passes.min_par``. Repeats up to ``passes.iterations`` passes, stopping when the PAR is at or
    under ``passes.target_par`` (when above 0) or a pass after the first does not lower it (that
    pass is discarded)."""
    det = detector(image)
    pars = [det.par]
    current, mask = image, det.mask
    repaired = np.zeros(image.shape[:2], np.uint8)
    done: list[ZoomCrops] = []
    painted_kept: list[np.ndarray] = []
    for _ in range(passes.iterations if pars[0] > passes.min_par else 0):
        if passes.target_par > 0 and pars[-1] <= passes.target_par:
            break
        zc = zoom_crops([current], [mask], regions, crops)
        if not len(zc):
            break
        painted = inpainter(zc.images, zc.masks)
        candidate = composite(current, painted, zc.records, paste=paste, originals=zc.images)
        det = detector(candidate)
        if det.par >= pars[-1] and done:
            break
        repaired |= zc.repair_masks[0]
        current, mask = candidate, det.mask
        pars.append(det.par)
        done.append(zc)
        painted_kept.append(painted)
    return RefineResult(current, repaired, pars[0], pars[-1], pars, done, painted_kept)
