"""Draw docs/verified_repair.jpg: verified repair on a synthetic image, drawn by the real code.

The detector is a real Swin + UPerNet (``pal4vst.testing.mark_bright``: its artifacts are the
image's bright areas, standing in for the released weights); the three candidate "inpainters"
are stand-ins of known quality: 0 paints bright noise, 1 is OpenCV's Telea inpainting, 2 is
Telea with bright streaks. In region C every candidate stays bright, as when an inpainter keeps failing
on a region. ``refine`` scores every candidate of every region with one detection per candidate
image and keeps, per region, the best candidate only where it beats the region's own score.

    python tools/make_verify_figure.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pal4vst.detect import Detector  # noqa: E402
from pal4vst.model.checkpoint import load_checkpoint  # noqa: E402
from pal4vst.render import overlay  # noqa: E402
from pal4vst.settings import CropOptions, RefineOptions, RegionOptions, RepairOptions  # noqa: E402
from pal4vst.testing import bright_checkpoint  # noqa: E402
from pal4vst.zoom.inpaint import OpenCVInpainter  # noqa: E402
from pal4vst.zoom.refine import refine  # noqa: E402
from tools.figures import font, save_row, tile  # noqa: E402
from pal4vst.learn.synthetic import texture  # noqa: E402

BLOBS = [(100, 110, 34, 24), (290, 120, 30, 36), (200, 290, 40, 26)]  # (cx, cy, a, b): regions A, B, C
STUBBORN = 2  # region C: every candidate stays bright


class StandInCandidates:
    """Candidate 0: bright noise; 1: OpenCV Telea; 2: Telea with bright streaks. Region C: all noise."""

    def __init__(self, image: np.ndarray) -> None:
        self.rng = np.random.default_rng(0)
        self.telea = OpenCVInpainter(radius=9)
        self.stubborn_centre = (BLOBS[STUBBORN][0], BLOBS[STUBBORN][1])

    def candidates(self, images, masks, seeds):
        count = seeds.shape[1]
        out = np.repeat(images[None], count, axis=0)
        good = self.telea(images, masks)
        for i, (crop, m) in enumerate(zip(images, masks)):
            noise = self.rng.integers(150, 255, crop.shape, dtype=np.uint8)
            stripes = good[i].copy()
            stripes[:, ::16] = 255  # a repaint with bright streaks: better, not clean
            stripes[:, 1::16] = 255
            stripes[:, 2::16] = 255
            stripes[:, 3::16] = 255
            options = [noise, good[i], stripes]
            stubborn = i == self.stubborn_index
            for j in range(count):
                pick = noise if stubborn else options[j % len(options)]
                out[j, i][m] = pick[m]
        return out

    stubborn_index = -1

    def __call__(self, images, masks):
        return self.candidates(images, masks, np.zeros((len(images), 1), int))[0]


def scene(size: int = 400) -> np.ndarray:
    rng = np.random.default_rng(5)
    img = (texture(size, rng).astype(np.float32) * 0.35).astype(np.uint8)
    for cx, cy, a, b in BLOBS:
        m = np.zeros((size, size), np.uint8)
        cv2.ellipse(m, (cx, cy), (a, b), 25, 0, 360, 1, -1)
        img[m.astype(bool)] = (235, 225, 215)
    return img


def main() -> None:
    image = scene()
    with tempfile.TemporaryDirectory() as tmp:
        det = Detector(load_checkpoint(bright_checkpoint(Path(tmp) / "bright.safetensors")), device="cpu",
                       dtype="fp32")
    paint = StandInCandidates(image)
    regions = RegionOptions(merge=False, grow=16)  # the tiny model's mask is coarse: grow it over the blob
    # which crop is region C: regions come largest first; find it by its centre
    from pal4vst.zoom.crops import zoom_crops

    zc = zoom_crops([image], [det(image).mask], regions, CropOptions(work_size=192))
    cx, cy = BLOBS[STUBBORN][:2]
    paint.stubborn_index = next(i for i, r in enumerate(zc.records)
                                if r.bbox[0] <= cx < r.bbox[2] and r.bbox[1] <= cy < r.bbox[3])
    seen: dict[int, np.ndarray] = {}  # pass 0's candidates, by number

    def keep(pass_index, first, crops, scores):
        for b in range(len(crops)):
            if pass_index == 0:
                seen[first + b] = crops[b]

    options = RepairOptions(regions, CropOptions(work_size=192), passes=RefineOptions(candidates=3))
    res = refine(image, det, paint, options, on_candidates=keep)
    before = det(image)

    judged = Image.fromarray(overlay(image, before.mask, before.prob))
    d = ImageDraw.Draw(judged)
    for r in res.report:
        x0, y0, x1, y1 = r.bbox
        colour = (40, 220, 60) if r.accepted else (230, 40, 40)
        d.rectangle([x0 - 3, y0 - 3, x1 + 2, y1 + 2], outline=colour, width=4)
        d.text((x0 - 3, max(0, y0 - 22)), f"{r.score_before:.2f} -> {r.score_after:.2f}", fill=colour, font=font(20))
    # the kept region whose candidates scored most differently
    shown = max((i for i, r in enumerate(res.report) if r.accepted),
                key=lambda i: len({round(s, 2) for s in res.report[i].scores}))
    r = res.report[shown]
    strip = []
    for j, s in enumerate(r.scores):
        c = Image.fromarray(np.ascontiguousarray(seen[j][shown]))
        dc = ImageDraw.Draw(c)
        colour = (40, 220, 60) if j == r.chosen and r.accepted else (230, 40, 40)
        dc.rectangle([0, 0, c.width - 1, c.height - 1], outline=colour, width=5)
        dc.text((10, 8), f"candidate {j}: {s:.3f}", fill=colour, font=font(20))
        strip.append(np.asarray(c))
    titled = [("generated image", image), ("green kept, red reverted: score", np.asarray(judged)),
              (f"region {shown}: its candidates, scored (before {r.score_before:.3f})", np.concatenate(strip, 1)),
              (f"result: PAR {res.par_before:.3f} -> {res.par_after:.3f}", res.image)]
    dest = ROOT / "docs" / "verified_repair.jpg"
    out = save_row([tile(t, a, size=17, at=(4, 4)) for t, a in titled], dest, quality=88)
    kept = sum(r.accepted for r in res.report)
    print(dest, out.size, f"{kept}/{len(res.report)} regions kept, PAR {res.par_before:.4f} -> {res.par_after:.4f}")
    for r in res.report:
        print(f"  region {r.region} {r.bbox}: {r.score_before:.3f} -> {[round(s, 3) for s in r.scores]} "
              f"{'kept #' + str(r.chosen) if r.accepted else 'reverted'}")


if __name__ == "__main__":
    main()
