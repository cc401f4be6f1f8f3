"""PAR (Perceptual Artifacts Ratio) and best-of-N ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def par(mask: np.ndarray) -> float:
    """Artifact pixels / image pixels of a binary mask (any truthy value is an artifact)."""
    m = np.asarray(mask)
    return float(np.count_nonzero(m)) / m.size if m.size else 0.0


@dataclass(frozen=True)
class Ranked:
    """One entry of a ranking: ``rank`` 1 is the image with the fewest artifacts."""

    rank: int
    index: int
    par: float


def rank(pars: Sequence[float]) -> list[Ranked]:
    """Order by PAR, lowest (best) first; ties keep their input order."""
    order = sorted(range(len(pars)), key=lambda i: (pars[i], i))
    return [Ranked(r + 1, i, float(pars[i])) for r, i in enumerate(order)]


def best_index(pars: Sequence[float]) -> int:
    """Index of the image with the lowest PAR (the first one among ties)."""
    if not pars:
        raise ValueError("no images to rank")
    return rank(pars)[0].index
