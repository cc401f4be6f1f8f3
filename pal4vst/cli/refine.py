"""``python -m pal4vst refine``: zoom-in repair of images, with PAR before and after."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .common import SetupError, add_model_args, each_image, make_detector

OUTPUTS = ("refined.png", "mask.png", "compare.jpg")
INPAINTERS = ("opencv", "diffusers")


def add_parser(sub) -> None:
    from ..options import add_arguments
    from ..settings import CropOptions, PasteOptions, RefineOptions, RegionOptions, SamplingOptions
    from ..zoom.inpaint import DiffusersInpainter, OpenCVInpainter

    p = sub.add_parser("refine", help="repair artifacts by zoom-in inpainting (detect, crop, inpaint, composite)")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_args(p)
    g = p.add_argument_group("regions and crops")
    for cls in (RegionOptions, CropOptions, PasteOptions):
        add_arguments(g, cls)
    add_arguments(p.add_argument_group("passes"), RefineOptions)
    g = p.add_argument_group("inpainting")
    g.add_argument("--inpainter", choices=INPAINTERS, default="opencv",
                   help="opencv (no model; it only smooths) or diffusers (a Stable Diffusion inpainting model); "
                   "default opencv")
    for cls in (OpenCVInpainter, DiffusersInpainter, SamplingOptions):
        add_arguments(g, cls)
    p.add_argument("--save-crops", action="store_true", help="also write the crops, crop masks and records")
    p.set_defaults(func=run)


def make_inpainter(args: argparse.Namespace):
    """The inpainter ``--inpainter`` names, with its flags, ready to run: a missing package or
    model is a :class:`~pal4vst.cli.common.SetupError` here, before any image."""
    from ..options import options_from
    from ..settings import SamplingOptions
    from ..zoom.inpaint import DiffusersInpainter, InpainterUnavailable, OpenCVInpainter

    if args.inpainter == "opencv":
        return options_from(args, OpenCVInpainter)
    inpainter = options_from(args, DiffusersInpainter, sampling=options_from(args, SamplingOptions), device=args.device)
    try:
        return inpainter.load()
    except InpainterUnavailable as e:
        raise SetupError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    from ..images import read_image, save_image
    from ..options import options_from
    from ..render import mask_to_uint8
    from ..settings import RepairOptions
    from ..zoom.inpaint import is_deterministic
    from ..zoom.refine import refine

    options = options_from(args, RepairOptions)
    seed = max(args.seed, 0)  # -1 means "the image's own seed" in the webui; images here have none

    def prepare():
        inpainter = make_inpainter(args)
        detector = make_detector(args)
        k = options.passes.candidates
        if k > 1 and is_deterministic(inpainter):
            print(f"note: the {args.inpainter} inpainter makes identical repaints, so --candidates {k} would judge "
                  "copies: one candidate per region is made and judged", file=sys.stderr)

        def work(path: Path, stem: str) -> dict:
            img = read_image(path)
            hook = CandidateSaver(args.out / "crops", stem) if args.save_crops else None
            res = refine(img, detector, inpainter, options, seed=seed, on_candidates=hook)
            save_image(res.image, args.out / f"{stem}_refined.png")
            save_image(mask_to_uint8(res.repaired), args.out / f"{stem}_mask.png")
            save_image(np.concatenate([img, res.image], axis=1), args.out / f"{stem}_compare.jpg", quality=92)
            if args.save_crops:
                save_crops(args.out / "crops", stem, res)
            print(f"{path}: PAR {res.par_before:.4f} -> {res.par_after:.4f} ({res.kept} of {res.judged} region "
                  f"repaints kept{_merged_note(res.report)})", file=sys.stderr)
            return {"width": img.shape[1], "height": img.shape[0], "par_before": round(res.par_before, 6),
                    "par_after": round(res.par_after, 6), "pars": [round(p, 6) for p in res.pars],
                    "passes": res.passes, "kept": res.kept, "judged": res.judged,
                    "merged": sum(r.members > 1 for r in res.report), "detections": res.detections,
                    "inpainter": args.inpainter, "report": [r.to_dict() for r in res.report]}

        return work

    return each_image(args, "refine", OUTPUTS, prepare)


def _merged_note(report) -> str:
    """``; 5 marked areas merged into 2 regions`` when neighbours shared a crop, else nothing."""
    merged = [r for r in report if r.members > 1]
    if not merged:
        return ""
    return (f"; {sum(r.members for r in merged)} marked areas merged into {len(merged)} "
            f"region{'s' if len(merged) > 1 else ''}")


class CandidateSaver:
    """``on_candidates`` of :func:`~pal4vst.zoom.refine.refine` for ``--save-crops``: every
    candidate as it is judged, its score in the file name (candidates are not kept after)."""

    def __init__(self, folder: Path, stem: str) -> None:
        self.folder, self.stem = folder, stem

    def __call__(self, pass_index: int, first: int, crops: np.ndarray, scores: np.ndarray) -> None:
        from ..images import save_image

        for b in range(len(crops)):
            for k in range(crops.shape[1]):
                name = f"{self.stem}_pass{pass_index}_crop{k}_cand{first + b}_score{scores[b, k]:.4f}.png"
                save_image(crops[b, k], self.folder / name)


def save_crops(folder: Path, stem: str, res) -> None:
    """Each pass's crops, crop masks, the crop records and the pass's report (JSON), for
    inspection or another inpainter (the candidates are written by :class:`CandidateSaver`)."""
    import json

    from ..files import atomic_write
    from ..images import save_image
    from ..render import mask_to_uint8
    from ..zoom.crops import records_to_json

    for p, zc in enumerate(res.crops):
        report = [r for r in res.report if r.pass_index == p]
        for k in range(len(zc)):
            save_image(zc.images[k], folder / f"{stem}_pass{p}_crop{k}.png")
            save_image(mask_to_uint8(zc.masks[k]), folder / f"{stem}_pass{p}_crop{k}_mask.png")
        report_json = json.dumps([r.to_dict() for r in report])
        for name, text in (("records", records_to_json(zc.records)), ("report", report_json)):
            atomic_write(folder / f"{stem}_pass{p}_{name}.json", lambda tmp, t=text: tmp.write_text(t))
