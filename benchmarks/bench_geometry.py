"""Regions + zoom crops + composite on a 4096x4096 RGB image with 20 artifact regions.

    python benchmarks/bench_geometry.py [--size 4096] [--regions 20] [--repeat 5] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import resource
import time

import numpy as np

from pal4vst.zoom.composite import composite
from pal4vst.zoom.crops import CropOptions, zoom_crops
from pal4vst.settings import RegionOptions
from pal4vst.zoom.regions import find_regions


def make_case(size: int, regions: int, seed: int = 0):
    r = np.random.default_rng(seed)
    img = r.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    grid = int(np.ceil(np.sqrt(regions)))
    cell = size // grid
    for k in range(regions):
        cy, cx = (k // grid) * cell + cell // 2, (k % grid) * cell + cell // 2
        h, w = r.integers(cell // 10, cell // 4, 2)
        mask[cy - h:cy + h, cx - w:cx + w] = True
    return img, mask


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--regions", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work-size", type=int, default=512)
    ap.add_argument("--csv")
    args = ap.parse_args()
    img, mask = make_case(args.size, args.regions)
    ropts, copts = RegionOptions(grow=8, merge=False), CropOptions(work_size=args.work_size)
    zc = zoom_crops([img], [mask], ropts, copts)
    painted = 255 - zc.images
    rows = [
        ("regions", best_of(lambda: find_regions(mask, ropts), args.repeat)),
        ("regions + crops", best_of(lambda: zoom_crops([img], [mask], ropts, copts), args.repeat)),
        ("composite", best_of(lambda: composite(img, painted, zc.records, originals=zc.images),
                              args.repeat)),
    ]
    rows.append(("total (crops + composite)", rows[1][1] + rows[2][1]))
    print(f"{args.size}x{args.size} RGB, {len(zc)} regions, work size {args.work_size}, best of {args.repeat}")
    print(f"{'step':<28}{'ms':>10}")
    for name, s in rows:
        print(f"{name:<28}{s * 1000:>10.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(the image itself: {img.nbytes / 2**20:.0f} MiB)")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "ms"])
            w.writerows([(n, f"{s * 1000:.2f}") for n, s in rows])


if __name__ == "__main__":
    main()
