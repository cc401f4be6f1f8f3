"""Zoom-in refinement: detect -> regions -> zoom crops -> K repaints per crop -> the detector
judges each region -> composite of the accepted repaints -> detect again.

One pass: every region of the image is cropped and inpainted ``candidates`` = K times (the seeds
of :func:`pal4vst.zoom.verify.candidate_seeds`, computed here and handed to the inpainter).
Candidate ``j`` of every region is pasted into one image, and the candidate images are painted,
detected and judged a detector batch at a time: a region's score in candidate ``j`` is read from
that image's detection, and between batches only the scores and each region's best crop so far
are kept (:class:`~pal4vst.zoom.verify.BestCandidates`). Each region keeps its lowest-scoring candidate when
it scores below the region's score before the pass by more than ``min_gain``; otherwise it keeps
its original pixels bit for bit. The pass's image is the exact composite of the accepted
candidates (detected once more unless it is one of the candidate images already detected).
With ``verify`` off every region takes its best candidate (K = 1: the repaint) and, as before
verification existed, a pass after the first that does not lower the PAR is discarded.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..detect import Detection, Detects
from ..masks import Region, paint
from ..settings import CropOptions, PasteOptions, RefineOptions, RegionOptions, RepairOptions
from .composite import composite
from .crops import CropRecord, ZoomCrops, zoom_crops
from .inpaint import Inpainter, is_deterministic, paint_candidates
from .verify import BestCandidates, RegionReport, candidate_seeds, region_scores

#: ``on_candidates(pass_index, first, crops, scores)``: candidates ``first`` on of a pass as they
#: are judged, ``crops`` ``[b, N, S, S, 3]`` and their region scores ``[b, N]`` (to save them).
CandidatesHook = Callable[[int, int, np.ndarray, np.ndarray], None]


@dataclass
class RefineResult:
    """The refined image; the union of the regions whose repaint was kept (uint8 0/1: nothing
    outside it changed); the PAR history (``pars``: before, then after each pass that changed the
    image); and, for every pass run, its crops as sent (``crops``), each region's chosen
    candidate (``painted``) and the per-region ``report``. ``detections`` counts forward passes
    over whole images; ``next_crop`` is the crop counter after this image (the seed rule's
    ``k``), for a host that repairs a batch."""

    image: np.ndarray
    repaired: np.ndarray
    pars: list[float] = field(default_factory=list)
    crops: list[ZoomCrops] = field(default_factory=list)
    painted: list[np.ndarray] = field(default_factory=list)
    report: list[RegionReport] = field(default_factory=list)
    detections: int = 0
    next_crop: int = 0

    @property
    def par_before(self) -> float:
        return self.pars[0]

    @property
    def par_after(self) -> float:
        return self.pars[-1]

    @property
    def passes(self) -> int:
        """Passes that changed the image."""
        return len(self.pars) - 1

    @property
    def kept(self) -> int:
        """Region repaints kept, over all passes."""
        return sum(r.accepted for r in self.report)

    @property
    def judged(self) -> int:
        """Region repaints judged (kept or reverted), over all passes."""
        return len(self.report)

    # the names these counts had before (kept working for code written against them)
    accepted = kept
    regions = judged


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
    report: list[RegionReport]
    detections: int


def _one_pass(current: np.ndarray, det: Detection, zc: ZoomCrops, index: int, seeds: np.ndarray,
              detector: Detects, inpainter: Inpainter, paste: PasteOptions, opts: RefineOptions,
              on_candidates: CandidatesHook | None) -> _Pass:
    n, k = seeds.shape
    before = region_scores(det.prob, zc.records)
    best = BestCandidates(n, k)
    step = max(1, int(detector.batch))
    for first in range(0, k, step):  # painted and judged a detector batch at a time: memory stays bounded
        cands = paint_candidates(inpainter, zc.images, zc.masks, seeds[:, first:first + step])
        images = [composite(current, c, zc.records, paste=paste, originals=zc.images) for c in cands]
        dets = detector(images)
        scores = np.stack([region_scores(d.prob, zc.records) for d in dets])
        if on_candidates is not None:
            on_candidates(index, first, cands, scores)
        for b in range(len(cands)):
            best.add(first + b, cands[b], scores[b], images[b], dets[b])
        del cands, images, dets
    chosen, accepted = best.chosen, best.accepted(before, opts.verify, opts.min_gain)
    report = [RegionReport(index, i, rec.bbox, rec.box, float(before[i]), [float(s) for s in best.scores[:, i]],
                           [int(s) for s in seeds[i]], int(chosen[i]), bool(accepted[i]), rec.members)
              for i, rec in enumerate(zc.records)]
    kept = [rec for rec, a in zip(zc.records, accepted) if a]
    if accepted.all() and best.everywhere is not None:  # one candidate image is the result: already detected
        return _Pass(*best.everywhere, kept, best.crops, report, k)
    if not accepted.any():
        return _Pass(current, det, kept, best.crops, report, k)
    out = composite(current, best.crops[accepted], kept, paste=paste, originals=zc.images[accepted])
    return _Pass(out, detector(out), kept, best.crops, report, k + 1)


def _repair(options: RepairOptions | RegionOptions, crops: CropOptions | None, paste: PasteOptions | None,
            passes: RefineOptions | None) -> RepairOptions:
    """The one :class:`RepairOptions`; the parts given apart, as before it existed, still count."""
    base = options if isinstance(options, RepairOptions) else RepairOptions(regions=options)
    parts = {k: v for k, v in (("crops", crops), ("paste", paste), ("passes", passes)) if v is not None}
    return dataclasses.replace(base, **parts) if parts else base


def refine(
    image: np.ndarray,
    detector: Detects,
    inpainter: Inpainter,
    options: RepairOptions | RegionOptions = RepairOptions(),
    crops: CropOptions | None = None,
    paste: PasteOptions | None = None,
    passes: RefineOptions | None = None,
    *,
    seed: int = 0,
    first_crop: int = 0,
    on_candidates: CandidatesHook | None = None,
) -> RefineResult:
    """Repair ``image`` (``HxWx3``, uint8 or float 0..1: the composite is exact for both; the
    inpainter gets crops of the same type), verifying each region's repaint as the module says.

    Nothing is done when its PAR is at or under ``options.passes.min_par``. Repeats up to
    ``iterations`` passes, stopping when the PAR is at or under ``target_par`` (when above 0),
    when no region is left, or when a pass keeps no repaint. The seeds are the rule's
    (:func:`~pal4vst.zoom.verify.candidate_seeds`) from ``seed``, crops counted from
    ``first_crop`` (a host repairing a batch passes the previous image's ``next_crop``); an
    inpainter that repaints the same every time (``deterministic``) is asked for one candidate.
    ``on_candidates`` sees every candidate as it is judged (see :data:`CandidatesHook`). Calls
    written before :class:`RepairOptions` (``refine(img, det, inp, RegionOptions(...),
    passes=RefineOptions(...))``) mean what they meant.
    """
    options = _repair(options, crops, paste, passes)
    passes = options.passes
    k = 1 if is_deterministic(inpainter) else passes.candidates  # copies would be judged for nothing
    det = detector(image)
    result = RefineResult(image, np.zeros(image.shape[:2], np.uint8), [det.par], detections=1, next_crop=first_crop)
    current = image
    for index in range(passes.iterations if det.par > passes.min_par else 0):
        if passes.target_par > 0 and result.pars[-1] <= passes.target_par:
            break
        zc = zoom_crops([current], [det.mask], options.regions, options.crops)
        if not len(zc):
            break
        seeds = candidate_seeds(seed, result.next_crop, len(zc), k)
        step = _one_pass(current, det, zc, index, seeds, detector, inpainter, options.paste, passes, on_candidates)
        result.next_crop += len(zc)
        result.detections += step.detections
        result.crops.append(zc)
        result.painted.append(step.painted)
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
    result.image = current
    return result
