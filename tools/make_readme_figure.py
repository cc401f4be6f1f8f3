"""Draw docs/pipeline.jpg: the zoom-in repair on a synthetic image, one panel per step.

The mask is the synthetic generator's ground truth (standing in for PAL Detect, whose released
weights are not in the repository); every other panel is the real code's output.

    python tools/make_readme_figure.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pal4vst.zoom.composite import PasteOptions, composite  # noqa: E402
from pal4vst.zoom.crops import CropOptions, zoom_crops  # noqa: E402
from pal4vst.zoom.inpaint import OpenCVInpainter  # noqa: E402
from pal4vst.settings import RegionOptions  # noqa: E402
from pal4vst.render import overlay  # noqa: E402
from pal4vst.learn.synthetic import corrupt, texture  # noqa: E402
from tools.figures import save_row, tile  # noqa: E402


def main() -> None:
    rng = np.random.default_rng(3)
    size = 384
    clean = texture(size, rng)
    mask = np.zeros((size, size), bool)
    for (cx, cy, a, b) in [(110, 120, 34, 22), (270, 260, 26, 40)]:
        m = np.zeros((size, size), np.uint8)
        cv2.ellipse(m, (cx, cy), (a, b), 20, 0, 360, 1, -1)
        region = m.astype(bool)
        clean = corrupt(clean, region, rng, ("blotch",) if cx < 200 else ("noise",))
        mask |= region
    image = clean
    zc = zoom_crops([image], [mask], RegionOptions(grow=6), CropOptions(work_size=192))
    painted = OpenCVInpainter(radius=7)(zc.images, zc.masks)
    fixed = composite(image, painted, zc.records, paste=PasteOptions(feather=3))

    boxes = overlay(image, mask)
    pil = Image.fromarray(boxes)
    d = ImageDraw.Draw(pil)
    for r in zc.records:
        x0, y0, side = r.box
        d.rectangle([x0, y0, x0 + side - 1, y0 + side - 1], outline=(255, 255, 0), width=3)
    crops = np.concatenate([np.concatenate([c, np.repeat(m[..., None], 3, 2).astype(np.uint8) * 255], 0)
                            for c, m in zip(zc.images, zc.masks)], 1)
    painted_strip = np.concatenate(list(painted), 1)
    panels = [("generated image", image), ("detect: mask + PAR", overlay(image, mask)),
              ("regions -> square crops 1.5x", np.asarray(pil)),
              ("zoomed crops + masks", crops), ("inpainted crops", painted_strip), ("composite", fixed)]
    dest = ROOT / "docs" / "pipeline.jpg"
    out = save_row([tile(title, arr) for title, arr in panels], dest, quality=85)
    print(dest, out.size, f"PAR {mask.mean():.4f}", f"{len(zc)} regions")


if __name__ == "__main__":
    main()
