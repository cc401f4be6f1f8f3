"""Verified repair's cost: refine an image with three artifact regions, K candidates per region,
with the "bright" model (a real Swin + UPerNet whose artifacts are the image's bright areas) and
a cheap inpainter (each candidate paints its regions a grey of its own), so what is left over is
detection, cropping and compositing.

    python benchmarks/bench_refine.py [--preset swin_b] [--size 1024] [--candidates 1 4] [--passes 1]
    python benchmarks/bench_refine.py --size 4096 --candidates 8 --all-at-once    # memory, before/after

Prints, per K: detections (whole-image forward passes) per pass, seconds per pass, the share of
the time spent in detection, the region verdicts (the detection before the first pass is left
out of the pass figures), and the peak memory (RSS) the repair added to the process once the
model was loaded and warm. ``--all-at-once`` also runs each K holding all K candidate images and
their detections at once, as the repair did before it judged candidates a detector batch at a
time: the same choices and pixels (checked here), more memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pal4vst.detect import Detector
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.settings import RefineOptions, RegionOptions, RepairOptions
from pal4vst.testing import bright_checkpoint
from pal4vst.zoom.refine import refine

from memory import in_fresh_process, reset_peak, status


def make_image(size: int) -> np.ndarray:
    """Dark, with three bright squares of different sizes far apart."""
    img = np.full((size, size, 3), 30, np.uint8)
    s = size // 16
    for y, x, side in ((2 * s, 2 * s, 2 * s), (9 * s, 3 * s, 3 * s), (5 * s, 10 * s, 4 * s)):
        img[y:y + side, x:x + side] = 230
    return img


class GreyCandidates:
    """Candidate ``j`` of crop ``i`` paints it dark when ``j == i``, else a bright grey: with
    K = 1 one region is fixed and two are reverted, with K >= 3 each region is fixed by a
    different candidate (so the pass's composite is detected once more). The candidate number
    is read from the seed (seed = k * K + j with base 0)."""

    def candidates(self, images, masks, seeds):
        out = np.repeat(images[None], seeds.shape[1], axis=0)
        for b in range(seeds.shape[1]):
            for i in range(len(images)):
                j = int(seeds[i, b] % self.k)
                out[b, i][masks[i]] = 50 if j == i else 200
        return out

    def __init__(self, k: int) -> None:
        self.k = k


class TimedDetector:
    """The detector, timed; ``batch`` is what the repair reads to size its chunks of candidates."""

    def __init__(self, inner: Detector, batch: int | None = None) -> None:
        self.inner, self.seconds, self.images, self.first = inner, 0.0, 0, None
        self.batch = batch or inner.batch

    def __call__(self, images):
        t0 = time.perf_counter()
        out = self.inner(images)
        took = time.perf_counter() - t0
        self.first = took if self.first is None else self.first
        self.seconds += took
        self.images += len(images) if isinstance(images, list) else 1
        return out


def run(det: Detector, img: np.ndarray, k: int, passes: int, all_at_once: bool):
    timed = TimedDetector(det, batch=k if all_at_once else None)
    base = status("VmRSS")
    measured = reset_peak()
    t0 = time.perf_counter()
    res = refine(img, timed, GreyCandidates(k), RepairOptions(RegionOptions(merge=False),
                 passes=RefineOptions(candidates=k, iterations=passes)))
    total = time.perf_counter() - t0 - timed.first  # the first detection comes before any pass
    peak = status("VmHWM") - base if measured else 0
    return res, timed, total, peak


def one(args: argparse.Namespace, k: int, at_once: bool) -> dict:
    """One configuration in this process: the model loaded and warm first, then the repair."""
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_checkpoint(bright_checkpoint(Path(tmp) / "bright.safetensors", args.preset))
    det = Detector(loaded, device=args.device, dtype=args.dtype)
    img = make_image(args.size)
    det([img] * det.batch)  # warm-up, at the largest batch a pass uses
    res, timed, total, peak = run(det, img, k, args.passes, at_once)
    passes = max(1, len({r.pass_index for r in res.report}))
    return {"k": k, "held": f"all {k}" if at_once else f"{min(k, det.batch)} at a time",
            "detections": (res.detections - 1) / passes, "seconds": total / passes,
            "share": (timed.seconds - timed.first) / total, "kept": f"{res.kept}/{res.judged}",
            "pars": f"{res.par_before:.4f} -> {res.par_after:.4f}", "peak_mib": peak / 2**20,
            "choices": [(r.chosen, r.accepted) for r in res.report],
            "image_sha1": hashlib.sha1(res.image.tobytes()).hexdigest(),
            "device": f"{det.device} ({det.dtype})", "batch": det.batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="swin_b", help="model size of the bright model (tiny, swin_t, swin_b)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--all-at-once", action="store_true", help="also run each K with all K candidates held at once")
    ap.add_argument("--one", nargs=2, type=int, metavar=("K", "AT_ONCE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # a child: one configuration, its figures as JSON
        print(json.dumps(one(args, args.one[0], bool(args.one[1]))))
        return
    rows = []
    for k in args.candidates:
        for at_once in ([False, True] if args.all_at_once else [False]):
            rows.append(in_fresh_process(__file__, [*sys.argv[1:], "--one", str(k), str(int(at_once))]))
    r0 = rows[0]
    print(f"bright {args.preset} on {r0['device']}, {args.size}x{args.size}, 3 regions, {args.passes} pass(es), "
          f"detector batch {r0['batch']}; each row in a fresh process, the model loaded and warm before it")
    print("| K | candidates held | detections / pass | s / pass | detection share | regions kept | "
          "PAR before -> after | peak memory added |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['k']} | {r['held']} | {r['detections']:.0f} | {r['seconds']:.2f} | {r['share']:.0%} | "
              f"{r['kept']} | {r['pars']} | {r['peak_mib']:.0f} MiB |")
    for k in args.candidates:
        same = [(r["choices"], r["image_sha1"]) for r in rows if r["k"] == k]
        if len(same) == 2:
            print(f"K = {k}: the same choices and output pixels either way: {same[0] == same[1]}")


if __name__ == "__main__":
    main()
