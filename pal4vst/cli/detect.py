"""``python -m pal4vst detect``: masks, probability maps, overlays and PAR for images or folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_model_args, each_image, make_detector

OUTPUTS = ("mask.png", "prob.png", "overlay.jpg")


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="artifact masks, probability maps and overlays for images or folders")
    p.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..images import read_image, save_image
    from ..render import mask_to_uint8, overlay, prob_to_uint16

    def prepare():
        detector = make_detector(args)

        def work(path: Path, stem: str) -> dict:
            img = read_image(path)
            det = detector(img)
            save_image(mask_to_uint8(det.mask), args.out / f"{stem}_mask.png")
            save_image(prob_to_uint16(det.prob), args.out / f"{stem}_prob.png")
            save_image(overlay(img, det.mask, det.prob), args.out / f"{stem}_overlay.jpg", quality=90)
            return {"width": det.size[0], "height": det.size[1], "par": round(det.par, 6),
                    "regions": len(det.regions())}

        return work

    return each_image(args, "detect", OUTPUTS, prepare)
