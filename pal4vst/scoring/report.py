"""A self-contained HTML contact sheet of overlays, ranked by PAR, for people to scan."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..files import atomic_write
from ..render import overlay

THUMB = 320


def _thumb_data_uri(img: np.ndarray) -> str:
    pil = Image.fromarray(img)
    pil.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_contact_sheet(path: Path, entries: list[tuple[Path, np.ndarray, object]]) -> Path:
    """``entries``: ``(source path, image, Detection)`` in display order (best first)."""
    cards = []
    for rank, (src, img, det) in enumerate(entries, 1):
        uri = _thumb_data_uri(overlay(img, det.mask, det.prob))
        cards.append(
            f'<figure><img src="{uri}" alt="{html.escape(src.name)}" loading="lazy">'
            f"<figcaption><b>#{rank}</b> PAR {det.par:.4f}<br><span>{html.escape(str(src))}</span></figcaption></figure>"
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
<h1>PAL4VST ranking: {len(entries)} images, fewest artifacts first</h1>
<p class="legend"><span></span> perceptual artifacts (image darkened). PAR = artifact area / image area.</p>
<main>{''.join(cards)}</main></body></html>
"""
    atomic_write(Path(path), lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Path(path)
