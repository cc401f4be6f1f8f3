"""Zoom-in refinement: detect -> regions -> zoom crops -> K repaints per crop -> the detector
judges each region -> composite of the accepted repaints -> detect again.

One pass: every region of the image is cropped and inpainted ``candidates`` = K times (seeds
from :func:`pal4vst.zoom.verify.candidate_seed`). Candidate ``j`` of every region is pasted into
one image, and the K candidate images are detected as one batch: a region's score in candidate
``j`` is read from that image's detection. Each region keeps its lowest-scoring candidate when
it scores below the region's score before the pass by more than ``min_gain``; otherwise it keeps
its original pixels bit for bit. The pass's image is the exact composite of the accepted
candidates (detected once more unless it is one of the candidate images already detected).
With ``verify`` off every region takes its best candidate (K = 1: the repaint) and, as before
verification existed, a pass after the first that does not lower the PAR is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detect import Detection, Detector
from ..masks import Region, paint
from ..settings import CropOptions, PasteOptions, RefineOptions, RegionOptions
from .composite import composite
from .crops import CropRecord, ZoomCrops, zoom_crops
from .inpaint import Inpainter, is_deterministic, paint_candidates
from .verify import RegionReport, candidate_seed, choose, region_scores


@dataclass
class RefineResult:
    """The refined image; the union of the regions whose repaint was kept (uint8 0/1: nothing
    outside it changed); the PAR history (``pars``: before, then after each pass that changed the
    image); and, for every pass run, its crops as sent (``crops``), each region's chosen candidate
    (``painted``), all candidates (``candidates``, ``[K, N, S, S, 3]``) and the per-region
    ``report``. ``detections`` counts forward passes over whole images; ``next_crop`` is the
    crop counter after this image (the seed rule's ``k``), for a host that repairs a batch."""

    image: np.ndarray
    repaired: np.ndarray
    par_before: float
    par_after: float
    pars: list[float] = field(default_factory=list)
    crops: list[ZoomCrops] = field(default_factory=list)
    painted: list[np.ndarray] = field(default_factory=list)
    candidates: list[np.ndarray] = field(default_factory=list)
    report: list[RegionReport] = field(default_factory=list)
    detections: int = 0
    next_crop: int = 0

    @property
    def passes(self) -> int:
        """Passes that changed the image."""
        return len(self.pars) - 1

    @property
    def accepted(self) -> int:
        """Region repaints kept, over all passes."""
        return sum(r.accepted for r in self.report)

    @property
    def regions(self) -> int:
        """Region repaints judged, over all passes."""
        return len(self.report)


def records_mask(records: list[CropRecord], shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/1 union of the records' region masks over an image of ``shape`` ``(H, W)``."""
    return paint([Region(rec.inside, rec.region_mask()) for rec in records], shape)


@dataclass
class _Pass:
    """One pass's outcome."""

    image: np.ndarray
    detection: Detection
    accepted: list[CropRecord]
    painted: np.ndarray
    candidates: np.ndarray
    report: list[RegionReport]
    detections: int


def _one_pass(current: np.ndarray, det: Detection, zc: ZoomCrops, index: int, first_crop: int, detector: Detector,
              inpainter: Inpainter, paste: PasteOptions, opts: RefineOptions) -> _Pass:
    k = 1 if is_deterministic(inpainter) else opts.candidates  # copies would be judged for nothing
    cands = paint_candidates(inpainter, zc.images, zc.masks, k, first_crop)
    images = [composite(current, cands[j], zc.records, paste=paste, originals=zc.images) for j in range(k)]
    dets = detector(images)
    before = region_scores(det.prob, zc.records)
    scores = np.stack([region_scores(d.prob, zc.records) for d in dets])
    chosen, accepted = choose(before, scores, opts.verify, opts.min_gain)
    n = len(zc.records)
    painted = cands[chosen, np.arange(n)]
    base = getattr(inpainter, "base_seed", 0)
    report = [RegionReport(index, i, rec.bbox, rec.box, float(before[i]), [float(s) for s in scores[:, i]],
                           [candidate_seed(base, first_crop + i, j, k) for j in range(k)], int(chosen[i]),
                           bool(accepted[i]), rec.members) for i, rec in enumerate(zc.records)]
    kept = [rec for rec, a in zip(zc.records, accepted) if a]
    if accepted.all() and (chosen == chosen[0]).all():  # one candidate image is the result: already detected
        return _Pass(images[chosen[0]], dets[chosen[0]], kept, painted, cands, report, k)
    if not accepted.any():
        return _Pass(current, det, kept, painted, cands, report, k)
    out = composite(current, painted[accepted], kept, paste=paste, originals=zc.images[accepted])
    return _Pass(out, detector(out), kept, painted, cands, report, k + 1)


def refine(
    image: np.ndarray,
    detector: Detector,
    inpainter: Inpainter,
    regions: RegionOptions = RegionOptions(),
    crops: CropOptions = CropOptions(),
    paste: PasteOptions = PasteOptions(),
    passes: RefineOptions = RefineOptions(),
    first_crop: int = 0,
) -> RefineResult:
    """Repair ``image`` (``HxWx3``, uint8 or float 0..1: the composite is exact for both; the
    inpainter gets crops of the same type), verifying each region's repaint as the module says.

    Nothing is done when its PAR is at or under ``passes.min_par``. Repeats up to
    ``passes.iterations`` passes, stopping when the PAR is at or under ``passes.target_par``
    (when above 0), when no region is left, or when a pass keeps no repaint. ``first_crop`` is
    the seed rule's crop counter at the start (a host repairing a batch passes the previous
    image's ``next_crop``); the report's seeds use the inpainter's ``base_seed`` (0 without one).
    """
    det = detector(image)
    result = RefineResult(image, np.zeros(image.shape[:2], np.uint8), det.par, det.par, [det.par], detections=1,
                          next_crop=first_crop)
    current = image
    for index in range(passes.iterations if det.par > passes.min_par else 0):
        if passes.target_par > 0 and result.pars[-1] <= passes.target_par:
            break
        zc = zoom_crops([current], [det.mask], regions, crops)
        if not len(zc):
            break
        step = _one_pass(current, det, zc, index, result.next_crop, detector, inpainter, paste, passes)
        result.next_crop += len(zc)
        result.detections += step.detections
        result.crops.append(zc)
        result.painted.append(step.painted)
        result.candidates.append(step.candidates)
        result.report.extend(step.report)
        if passes.verify and not step.accepted:
            break
        if not passes.verify and index > 0 and step.detection.par >= result.pars[-1]:
            for r in step.report:
                r.accepted = False  # the whole pass is discarded
            break
        result.repaired |= records_mask(step.accepted, image.shape[:2])
        current, det = step.image, step.detection
        result.pars.append(det.par)
    result.image, result.par_after = current, result.pars[-1]
    return result
