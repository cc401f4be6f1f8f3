"""Best-of-N ranking by PAR (the ratio itself is :func:`pal4vst.masks.par`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass



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
