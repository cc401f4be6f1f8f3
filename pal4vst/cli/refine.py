"""``python -m pal4vst refine``: zoom-in repair of images, with PAR before and after."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def add_refine_parser(sub, add_model_args) -> None:
    p = sub.add_parser("refine", help="repair artifacts by zoom-in inpainting (detect, crop, inpaint, composite)")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    add_model_args(p)
    g = p.add_argument_group("regions and crops")
    g.add_argument("--grow", type=int, default=8, help="grow (negative: shrink) the mask by this many pixels")
    g.add_argument("--grow-percent", type=float, default=0.0, help="also grow by this %% of the short side")
    g.add_argument("--min-area", type=int, default=16, help="ignore regions smaller than this (pixels)")
    g.add_argument("--max-regions", type=int, default=0, help="repair at most this many regions, largest first")
    g.add_argument("--no-merge", action="store_true", help="do not merge regions whose crops overlap")
    g.add_argument("--context", type=float, default=1.5, help="crop side / region's longest side (paper: 1.5)")
    g.add_argument("--min-size", type=int, default=64, help="smallest crop side in pixels")
    g.add_argument("--work-size", type=int, default=512, help="inpainter's working resolution (multiple of 8)")
    g.add_argument("--feather", type=int, default=4, help="feather the paste inside the mask (pixels)")
    g.add_argument("--colour-match", action="store_true", help="cancel colour shifts of the inpainted patch")
    g = p.add_argument_group("passes")
    g.add_argument("--iterations", type=int, default=1, help="repair passes (re-detect after each)")
    g.add_argument("--target-par", type=float, help="stop once the PAR is at or below this")
    g.add_argument("--min-par", type=float, default=0.0, help="leave images whose PAR is at or below this untouched")
    g = p.add_argument_group("inpainting")
    g.add_argument("--inpainter", choices=["opencv", "diffusers"], default="opencv")
    g.add_argument("--cv-method", choices=["telea", "ns"], default="telea")
    g.add_argument("--sd-model", default="stable-diffusion-v1-5/stable-diffusion-inpainting",
                   help="diffusers model id or local folder")
    g.add_argument("--prompt", default="")
    g.add_argument("--negative-prompt", default="blurry, distorted, deformed, artifacts")
    g.add_argument("--strength", type=float, default=0.75)
    g.add_argument("--steps", type=int, default=30)
    g.add_argument("--guidance", type=float, default=7.5)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--allow-download", action="store_true", help="let diffusers download the model")
    p.add_argument("--save-crops", action="store_true", help="also write the crops, crop masks and records")
    p.set_defaults(func=cmd_refine)


def cmd_refine(args: argparse.Namespace) -> int:
    from .main import EXIT_INPUT_FAILED, Failures, _guard_inputs, _iter_images, _make_detector, _output_stems, _progress
    from ..zoom.crops import CropOptions, records_to_json
    from ..files import atomic_write
    from ..images import read_image, save_image
    from ..zoom.inpaint import make_inpainter
    from ..zoom.refine import refine
    from ..zoom.regions import RegionOptions
    from ..render import mask_to_uint8

    images = _iter_images(args.inputs)
    if not images:
        print("error: no images found in the inputs", file=sys.stderr)
        return EXIT_INPUT_FAILED
    ropts = RegionOptions(threshold=args.threshold, grow=args.grow, grow_percent=args.grow_percent,
                          min_area=args.min_area, max_regions=args.max_regions, merge=not args.no_merge,
                          context=args.context, min_size=args.min_size)
    copts = CropOptions(work_size=args.work_size)
    inpainter = make_inpainter(args.inpainter, method=args.cv_method, model=args.sd_model, prompt=args.prompt,
                               negative_prompt=args.negative_prompt, strength=args.strength, steps=args.steps,
                               guidance=args.guidance, seed=args.seed, device=args.device,
                               allow_download=args.allow_download)
    detector = _make_detector(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stems = _output_stems(images)
    _guard_inputs([out / f"{s}_{k}" for s in stems for k in ("refined.png", "mask.png", "compare.jpg")], images)
    failures = Failures(args.debug)
    with (out / "results.jsonl").open("w") as jsonl:
        for path, stem in zip(_progress(images, "refine"), stems):
            t0 = time.perf_counter()
            try:
                img = read_image(path)
                res = refine(img, detector, inpainter, ropts, copts, feather=args.feather,
                             colour_match=args.colour_match, iterations=args.iterations, target_par=args.target_par,
                             min_par=args.min_par)
                save_image(res.image, out / f"{stem}_refined.png")
                save_image(mask_to_uint8(res.repaired.astype(bool)), out / f"{stem}_mask.png")
                save_image(np.concatenate([img, res.image], axis=1), out / f"{stem}_compare.jpg", quality=92)
                if args.save_crops:
                    _save_crops(out / "crops", stem, res, save_image, atomic_write, records_to_json)
            except (ValueError, OSError, RuntimeError) as e:
                failures.add(path, e)
                continue
            record = {"input": str(path), "width": img.shape[1], "height": img.shape[0],
                      "par_before": round(res.par_before, 6), "par_after": round(res.par_after, 6),
                      "pars": [round(p, 6) for p in res.pars], "passes": res.passes,
                      "regions": sum(len(z) for z in res.crops), "inpainter": args.inpainter,
                      "model": str(args.model), "seconds": round(time.perf_counter() - t0, 3)}
            jsonl.write(json.dumps(record) + "\n")
            jsonl.flush()
            print(f"{path}: PAR {res.par_before:.4f} -> {res.par_after:.4f} ({record['regions']} regions)",
                  file=sys.stderr)
    return EXIT_INPUT_FAILED if failures.items else 0


def _save_crops(folder: Path, stem: str, res, save_image, atomic_write, records_to_json) -> None:
    from ..render import mask_to_uint8

    for p, zc in enumerate(res.crops):
        for k in range(len(zc)):
            save_image(zc.images[k], folder / f"{stem}_pass{p}_crop{k}.png")
            save_image(mask_to_uint8(zc.masks[k]), folder / f"{stem}_pass{p}_crop{k}_mask.png")
        text = records_to_json(zc.records)
        atomic_write(folder / f"{stem}_pass{p}_records.json", lambda tmp, t=text: tmp.write_text(t))
