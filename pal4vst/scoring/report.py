"""A self-contained HTML contact sheet of overlays, ranked by PAR, for people to scan.

The overlays are made while scoring, from what scoring already has (the network-size image and
its detection), so the sheet needs no second detection: :class:`BestThumbnails` keeps, on each
rank, the overlays of its best ``keep`` images on disk (the sheet shows at most ``keep``), and
images pushed out of the best lose their file again. Only images scored by an earlier run that
kept no overlay are detected again for the sheet.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from ..files import atomic_write
from ..render import overlay

THUMB = 320


class Card(NamedTuple):
    """One image of the sheet: its source, its overlay thumbnail (JPEG bytes) and its PAR."""

    source: str
    jpeg: bytes
    par: float


def thumbnail(image: np.ndarray, prob: np.ndarray, mask: np.ndarray) -> bytes:
    """JPEG of the overlay at contact-sheet size (at most :data:`THUMB` px, never enlarged) with the
    aspect of ``prob``/``mask`` (the image's own size); ``image`` may be any size, the
    network-size input scoring already holds included."""
    h, w = mask.shape
    s = min(1.0, THUMB / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    p = cv2.resize(prob.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    buf = io.BytesIO()
    Image.fromarray(overlay(small, m, p)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def thumbnail_path(folder: Path, key: str, sig: str) -> Path:
    """Where the overlay of the item ``key`` as it was when scored (``sig``) is kept."""
    digest = hashlib.sha1((key + "\n" + sig).encode()).hexdigest()[:20]
    return folder / f"{digest}.jpg"


class BestThumbnails:
    """The overlays of the ``keep`` best images offered (lowest PAR; ties by order), one JPEG
    each in ``folder``; an image pushed out of the best loses its file. ``keep`` 0 keeps none."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder, self.keep = folder, keep
        self._worst_first: list[tuple[float, int, Path]] = []  # (-par, -order, file): a max-heap

    def offer(self, key: str, sig: str, par: float, order: int, make: Callable[[], bytes]) -> None:
        """Keep this image's overlay (``make()`` is called only then) if it is among the best."""
        if self.keep <= 0:
            return
        entry = (-par, -order, thumbnail_path(self.folder, key, sig))
        if len(self._worst_first) >= self.keep:
            if entry <= self._worst_first[0]:
                return  # no better than the worst kept
            heapq.heappop(self._worst_first)[2].unlink(missing_ok=True)
        data = make()
        atomic_write(entry[2], lambda tmp: tmp.write_bytes(data))
        heapq.heappush(self._worst_first, entry)


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def write_contact_sheet(path: Path, cards: Sequence[Card]) -> Path:
    """The sheet of ``cards`` in display order (best first)."""
    figures = []
    for rank, card in enumerate(cards, 1):
        name = Path(card.source).name
        figures.append(
            f'<figure><img src="{_data_uri(card.jpeg)}" alt="{html.escape(name)}" loading="lazy">'
            f"<figcaption><b>#{rank}</b> PAR {card.par:.4f}<br><span>{html.escape(str(card.source))}</span>"
            "</figcaption></figure>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PAL4VST ranking</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;background:#111;color:#eee}}
h1{{font-size:1.3rem}} .legend span{{display:inline-block;width:1em;height:1em;background:#f0f;vertical-align:middle}}
main{{display:grid;grid-template-columns:repeat(auto-fill,minmax({THUMB}px,1fr));gap:1rem}}
figure{{margin:0;background:#222;padding:.5rem;border-radius:6px}} img{{width:100%;height:auto;display:block}}
figcaption{{font-size:.85rem;margin-top:.4rem;word-break:break-all}} figcaption span{{color:#aaa}}
</style></head><body>
<h1>PAL4VST ranking: {len(cards)} images, fewest artifacts first</h1>
<p class="legend"><span></span> perceptual artifacts (image darkened). PAR = artifact area / image area.</p>
<main>{''.join(figures)}</main></body></html>
"""
    atomic_write(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Path(path)
