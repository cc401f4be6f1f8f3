"""Panels side by side with a title each: the README figures (make_readme_figure.py,
make_verify_figure.py) are drawn with these."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def font(size: int | None):
    """Pillow's default font at ``size`` (its one bitmap size on Pillow < 10.1, or when None)."""
    if size is None:
        return ImageFont.load_default()
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def tile(title: str, arr: np.ndarray, h: int = 300, size: int | None = None, at: tuple[int, int] = (4, 6)) -> Image.Image:
    """``arr`` scaled to height ``h`` under a 28 px title band."""
    im = Image.fromarray(arr)
    im = im.resize((int(im.width * h / im.height), h), Image.LANCZOS)
    canvas = Image.new("RGB", (im.width, h + 28), "white")
    canvas.paste(im, (0, 28))
    ImageDraw.Draw(canvas).text(at, title, fill="black", font=font(size))
    return canvas


def save_row(tiles: list[Image.Image], dest: Path, quality: int, gap: int = 12) -> Image.Image:
    """The tiles in a row, ``gap`` px apart, fitted into 2000x400, saved as JPEG at ``dest``."""
    return save_grid([tiles], dest, quality, gap, fit=(2000, 400))


def save_grid(rows: list[list[Image.Image]], dest: Path, quality: int, gap: int = 12,
              fit: tuple[int, int] = (1600, 10_000)) -> Image.Image:
    """Rows of tiles, ``gap`` px apart, fitted into ``fit`` (never enlarged), saved as JPEG at ``dest``."""
    widths = [sum(t.width for t in row) + gap * (len(row) - 1) for row in rows]
    heights = [max(t.height for t in row) for row in rows]
    out = Image.new("RGB", (max(widths), sum(heights) + gap * (len(rows) - 1)), "white")
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for t in row:
            out.paste(t, (x, y))
            x += t.width + gap
        y += h + gap
    out.thumbnail(fit, Image.LANCZOS)
    out.save(dest, quality=quality)
    return out
