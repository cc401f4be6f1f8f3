"""Verified repair: the detector judges every region's repaint.

A region's **score** is its mean artifact probability over the pixels the repair may change (its
crop record's mask), read from one detection of a whole image. The mean of the soft map, not the
share of marked pixels, so that a repaint which makes a region less broken but not yet clean
still scores lower, and so that scores of regions of any size lie in 0..1 (``min_gain`` is in
those units). Every region of a candidate image is scored from that image's one detection.

Seeds follow one rule in every host (core, ComfyUI, the webui): candidate ``j`` of crop ``k``
(crops counted over passes, and over the images of a host's batch) gets
``base + k * candidates + j``; with one candidate that is ``base + k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .crops import CropRecord


def candidate_seed(base: int, crop: int, candidate: int = 0, candidates: int = 1) -> int:
    """The seed of candidate ``candidate`` of crop ``crop`` (see the module's rule)."""
    return int(candidate_seeds(base, crop, 1, candidates)[0, candidate])


def candidate_seeds(base: int, first_crop: int, crops: int, candidates: int) -> np.ndarray:
    """``[crops, candidates]`` int64: the seeds of every candidate of crops ``first_crop`` on, by
    the rule; computed once per pass by the repair, handed to the inpainter and kept in the report."""
    k = np.arange(first_crop, first_crop + crops, dtype=np.int64)[:, None]
    return int(base) + k * candidates + np.arange(candidates, dtype=np.int64)[None, :]


def region_scores(prob: np.ndarray, records: Sequence[CropRecord]) -> np.ndarray:
    """Mean artifact probability of ``prob`` (``HxW``) inside each record's region mask."""
    out = np.zeros(len(records), np.float64)
    for i, rec in enumerate(records):
        x0, y0, x1, y1 = rec.inside
        mask = rec.region_mask()
        out[i] = float(prob[y0:y1, x0:x1][mask].mean()) if mask.any() else 0.0
    return out


class BestCandidates:
    """The choice, made as candidates arrive (a detector batch at a time, so that no more than a
    batch of candidate images and detections is held): per region the candidate with the lowest
    score so far (the first among ties) and its crop, every candidate's score, and the one
    candidate image that is the best in every region while there is one (already detected: the
    pass's result when every region keeps it)."""

    def __init__(self, regions: int, candidates: int) -> None:
        self.scores = np.empty((candidates, regions))
        self.chosen = np.zeros(regions, int)
        self.crops: np.ndarray | None = None
        self.everywhere: tuple[Any, Any] | None = None

    def add(self, j: int, crops: np.ndarray, scores: np.ndarray, image: Any = None, detection: Any = None) -> None:
        """Candidate ``j``: its crops ``[N, S, S, 3]``, region scores ``[N]``, image and detection."""
        self.scores[j] = scores
        if self.crops is None:
            self.crops, better = crops.copy(), np.ones(len(scores), bool)
        else:
            better = scores < self.scores[self.chosen, np.arange(len(scores))]
            self.crops[better] = crops[better]
            self.chosen[better] = j
        if better.all():
            self.everywhere = (image, detection)
        elif better.any():
            self.everywhere = None

    def accepted(self, before: np.ndarray, verify: bool = True, min_gain: float = 0.0) -> np.ndarray:
        """Per region whether its best candidate is kept: its score is below ``before - min_gain``
        (always, when ``verify`` is off)."""
        best = self.scores[self.chosen, np.arange(len(self.chosen))]
        return best < before - min_gain if verify else np.ones(len(self.chosen), bool)


@dataclass
class RegionReport:
    """What happened to one region in one pass: where it is (``bbox`` ``(x0, y0, x1, y1)``, the
    crop ``box`` ``(x0, y0, side)``), its score before, each candidate's score and seed, the
    candidate chosen, whether it was kept (``accepted``) or the region left as it was, and how many
    marked areas were merged into it (``members``)."""

    pass_index: int
    region: int
    bbox: tuple[int, int, int, int]
    box: tuple[int, int, int]
    score_before: float
    scores: list[float]
    seeds: list[int]
    chosen: int
    accepted: bool
    members: int = 1

    @property
    def score_after(self) -> float:
        return self.scores[self.chosen] if self.accepted else self.score_before

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"], d["box"] = list(self.bbox), list(self.box)
        d["score_before"] = round(self.score_before, 6)
        d["scores"] = [round(s, 6) for s in self.scores]
        return d


def summary(report: Sequence[RegionReport], indent: str = "") -> str:
    """One line per region: ``pass 0 region 1 (x0,y0)-(x1,y1): 0.910 -> [0.400 0.120] kept #1``
    (or ``reverted``)."""
    lines = []
    for r in report:
        x0, y0, x1, y1 = r.bbox
        cands = " ".join(f"{s:.3f}" for s in r.scores)
        verdict = f"kept #{r.chosen}" if r.accepted else "reverted"
        merged = f" ({r.members} areas merged)" if r.members > 1 else ""
        lines.append(f"{indent}pass {r.pass_index} region {r.region} ({x0},{y0})-({x1},{y1}){merged}: "
                     f"{r.score_before:.3f} -> [{cands}] {verdict}")
    return "\n".join(lines)
