"""Evaluate like the paper's Table 1: artifact IoU and mIoU per task folder.

    python -m training.evaluate CKPT DATA [--split test] [--csv results.csv] [--device auto]

DATA is one dataset (released layout or flat folder) or a folder of task folders, each a dataset.
Preprocessing is the release's (512x512 resize, whole image); IoU sums a confusion matrix over
the images, as MMSegmentation's IoUMetric does. The last row, ``all``, pools every image.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


from pal4vst.detect import Detector
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.model.weights import resolve

from pal4vst.learn.data import discover
from pal4vst.learn.errors import LearnError
from pal4vst.learn.metrics import Confusion, confusion


def tasks(root: Path, split: str) -> dict[str, list]:
    """``{task: samples}``: the root itself when it is a dataset, else each sub-folder that is one."""
    own = discover(root, split)
    if own.samples and not own.errors:
        return {root.name: own.samples}
    found = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        rep = discover(sub, split)
        if rep.samples:
            rep.raise_if_errors(f"task {sub.name}")
            found[sub.name] = rep.samples
    if not found:
        own.raise_if_errors(str(root))
        raise LearnError(f"no dataset found in {root}")
    return found


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("data", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--csv", type=Path, default=Path("eval.csv"))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    # The file's own preprocessing (size, mean/std) and output (logits, or a TorchScript's labels),
    # through the same Detector that detection uses; fp32, as MMSegmentation evaluates.
    detector = Detector(load_checkpoint(resolve(args.checkpoint)), device=args.device, dtype="fp32")
    total = Confusion()
    rows = []
    try:
        found = tasks(args.data, args.split)
    except LearnError as e:
        print(f"evaluate: {e}", file=sys.stderr)
        raise SystemExit(2) from None  # usage or setup, as every command of the project
    for task, samples in found.items():
        conf = confusion(detector, samples)
        total.matrix += conf.matrix
        rows.append({"task": task, "images": len(samples), "artifact_iou": conf.artifact_iou, "miou": conf.miou})
    rows.append({"task": "all", "images": sum(r["images"] for r in rows), "artifact_iou": total.artifact_iou,
                 "miou": total.miou})
    print(f"{'task':<28}{'images':>8}{'artifact IoU':>14}{'mIoU':>8}")
    for r in rows:
        print(f"{r['task']:<28}{r['images']:>8}{r['artifact_iou'] * 100:>14.2f}{r['miou'] * 100:>8.2f}")
    with args.csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["task", "images", "artifact_iou", "miou"])
        w.writeheader()
        w.writerows([{**r, "artifact_iou": f"{r['artifact_iou']:.6f}", "miou": f"{r['miou']:.6f}"} for r in rows])
    return rows


if __name__ == "__main__":
    main()
