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
    return int(base) + crop * candidates + candidate


def region_scores(prob: np.ndarray, records: Sequence[CropRecord]) -> np.ndarray:
    """Mean artifact probability of ``prob`` (``HxW``) inside each record's region mask."""
    out = np.zeros(len(records), np.float64)
    for i, rec in enumerate(records):
        x0, y0, x1, y1 = rec.inside
        mask = rec.region_mask()
        out[i] = float(prob[y0:y1, x0:x1][mask].mean()) if mask.any() else 0.0
    return out


def choose(before: np.ndarray, scores: np.ndarray, verify: bool = True,
           min_gain: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per region the candidate with the lowest score (``scores`` is ``[K, N]``; the first among
    ties) and whether it is accepted: its score is below ``before - min_gain`` (always, when
    ``verify`` is off)."""
    chosen = np.argmin(scores, axis=0)
    best = scores[chosen, np.arange(scores.shape[1])]
    accepted = best < before - min_gain if verify else np.ones(len(chosen), bool)
    return chosen, accepted


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
