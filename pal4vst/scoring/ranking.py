"""Best-of-N ranking by PAR (the ratio itself is :func:`pal4vst.masks.par`), and the one ranking
CSV every host writes: the CLI's ``score``, the webui tab's folder ranking."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write

FIELDS = ["rank", "path", "par", "width", "height", "regions", "status"]


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


@dataclass(frozen=True)
class Scored:
    """One scored (or failed) image: ``status`` is ``ok`` or ``failed: why``."""

    path: str
    par: float | None
    width: int | None = None
    height: int | None = None
    regions: int | None = None
    status: str = "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def write_ranking(path: str | Path, scored: Sequence[Scored]) -> list[Ranked]:
    """Write the ranking CSV (:data:`FIELDS`; best first, failed files last, unranked) atomically;
    returns the ranking of the images that were scored (indices into them, in ``scored``'s order)."""
    ok = [s for s in scored if s.ok]
    ranking = rank([s.par for s in ok])

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=FIELDS)
            out.writeheader()
            for r in ranking:
                s = ok[r.index]
                out.writerow({"rank": r.rank, "path": s.path, "par": f"{s.par:.6f}", "width": s.width,
                              "height": s.height, "regions": s.regions, "status": s.status})
            for s in scored:
                if not s.ok:
                    out.writerow({"rank": "", "path": s.path, "par": "", "width": "", "height": "", "regions": "",
                                  "status": s.status})

    atomic_write(path, write)
    return ranking
