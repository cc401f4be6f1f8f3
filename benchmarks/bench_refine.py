"""Verified repair's cost: refine a 1024x1024 image with three artifact regions, K = 1 and K = 4
candidates per region, with the "bright" model (a real Swin + UPerNet whose artifacts are the
image's bright areas) and a cheap inpainter (each candidate paints its regions a grey of its own),
so the time left over is detection, cropping and compositing.

    python benchmarks/bench_refine.py [--preset swin_b] [--size 1024] [--candidates 1 4] [--passes 1]

Prints, per K: detections (whole-image forward passes) per pass, seconds per pass, the share of
the time spent in detection, and the region verdicts (the detection before the first pass is
left out of the pass figures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from pal4vst.detect import Detector
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.settings import RefineOptions, RegionOptions
from pal4vst.testing import bright_checkpoint
from pal4vst.zoom.refine import refine


def make_image(size: int) -> np.ndarray:
    """Dark, with three bright squares of different sizes far apart."""
    img = np.full((size, size, 3), 30, np.uint8)
    s = size // 16
    for y, x, side in ((2 * s, 2 * s, 2 * s), (9 * s, 3 * s, 3 * s), (5 * s, 10 * s, 4 * s)):
        img[y:y + side, x:x + side] = 230
    return img


class GreyCandidates:
    """Candidate ``j`` of the ``i``-th crop of a call paints it dark when ``j == i``, else a bright
    grey: with K = 1 one region is fixed and two are reverted, with K = 4 each region is fixed by
    a different candidate (so the pass's composite is detected once more)."""

    def candidates(self, images, masks, count, first_crop):
        out = np.repeat(images[None], count, axis=0)
        for j in range(count):
            for i in range(len(images)):
                out[j, i][masks[i]] = 50 if j == i else 200
        return out

    def __call__(self, images, masks):
        return self.candidates(images, masks, 1, 0)[0]


class TimedDetector:
    def __init__(self, inner: Detector) -> None:
        self.inner, self.seconds, self.images, self.first = inner, 0.0, 0, None

    def __call__(self, images):
        t0 = time.perf_counter()
        out = self.inner(images)
        took = time.perf_counter() - t0
        self.first = took if self.first is None else self.first
        self.seconds += took
        self.images += len(images) if isinstance(images, list) else 1
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="swin_b", help="model size of the bright model (tiny, swin_t, swin_b)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_checkpoint(bright_checkpoint(Path(tmp) / "bright.safetensors", args.preset))
    det = Detector(loaded, device=args.device, dtype=args.dtype)
    img = make_image(args.size)
    det(img)  # warm-up
    print(f"bright {args.preset} on {det.device} ({det.dtype}), {args.size}x{args.size}, 3 regions, "
          f"{args.passes} pass(es)")
    print("| K | detections / pass | s / pass | detection share | regions kept | PAR before -> after |")
    print("|---|---|---|---|---|---|")
    for k in args.candidates:
        timed = TimedDetector(det)
        t0 = time.perf_counter()
        res = refine(img, timed, GreyCandidates(), RegionOptions(merge=False),
                     passes=RefineOptions(candidates=k, iterations=args.passes))
        total = time.perf_counter() - t0 - timed.first  # the first detection comes before any pass
        passes = max(1, len({r.pass_index for r in res.report}))
        per_pass = (res.detections - 1) / passes
        share = (timed.seconds - timed.first) / total
        print(f"| {k} | {per_pass:.0f} | {total / passes:.2f} | {share:.0%} | "
              f"{res.accepted}/{res.regions} | {res.par_before:.4f} -> {res.par_after:.4f} |")


if __name__ == "__main__":
    main()
