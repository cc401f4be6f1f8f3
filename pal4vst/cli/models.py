"""``python -m pal4vst convert | models | selfcheck``: model files and checking the port."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .common import EXIT_INPUT_FAILED, EXIT_SETUP_FAILED, SetupError, add_debug, add_model_args, make_detector


def add_parsers(sub) -> None:
    from ..options import add_arguments
    from ..settings import ModelSource

    p = sub.add_parser("convert", help="convert a release checkpoint (.pth / TorchScript) to safetensors")
    p.add_argument("input", help="checkpoint file or release name")
    p.add_argument("output", type=Path, help="output .safetensors file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_arguments(p, ModelSource, ["download"])
    add_debug(p)
    p.set_defaults(func=convert)

    p = sub.add_parser("models", help="list releases, model folders and local model files")
    add_debug(p)
    p.set_defaults(func=models)

    p = sub.add_parser("selfcheck", help="compare a model's mask on the authors' demo input with theirs")
    p.add_argument("--image", type=Path, help="reference input (default: img.jpg in $PAL4VST_REFERENCE)")
    p.add_argument("--expected", type=Path, help="reference mask (default: img_unified_mask.png there)")
    p.add_argument("--min-iou", type=float, default=0.9,
                   help="artifact IoU with the authors' mask at or above which the check passes; default 0.9")
    add_model_args(p)
    p.set_defaults(func=selfcheck)


def convert(args: argparse.Namespace) -> int:
    from ..model.checkpoint import check_convert_target, convert as convert_file
    from ..model.weights import resolve

    try:
        check_convert_target(args.input, args.output, args.overwrite)  # before a download
        src = resolve(args.input, download=args.download)
        check_convert_target(src, args.output, args.overwrite)
    except ValueError as e:
        raise SetupError(str(e)) from None
    dst = convert_file(src, args.output, args.overwrite)
    print(f"wrote {dst}")
    return 0


def models(args: argparse.Namespace) -> int:
    from ..model.weights import RELEASES, find_local, list_local_models, model_dirs

    print("releases:")
    for r in RELEASES.values():
        local = find_local(r.name)
        print(f"  {r.name:<24} {'found: ' + str(local) if local else 'not downloaded'}\n      {r.description}")
    print("model folders searched:")
    for d in model_dirs():
        print(f"  {d}{'' if d.is_dir() else '  (absent)'}")
    files = list_local_models()
    if files:
        print("model files:")
        for f in files:
            print(f"  {f}")
    return 0


def reference_dir() -> Path | None:
    """The folder of the authors' reference input and mask named by ``$PAL4VST_REFERENCE``."""
    folder = os.environ.get("PAL4VST_REFERENCE", "")
    return Path(folder) if folder and (Path(folder) / "img.jpg").is_file() else None


def selfcheck(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..images import read_image

    ref = reference_dir()
    image = args.image or (ref / "img.jpg" if ref else None)
    expected = args.expected or (ref / "img_unified_mask.png" if ref else None)
    if image is None or expected is None:
        print("error: the reference image was not found. Get img.jpg and img_unified_mask.png from the authors' "
              "repository (github.com/adobe/PAL4VST, folder demo/) and pass --image and --expected, or set "
              "PAL4VST_REFERENCE to their folder.", file=sys.stderr)
        return EXIT_SETUP_FAILED
    if args.dtype == "auto":
        args.dtype = "fp32"  # compare the port at full precision
    det = make_detector(args)(read_image(image))
    want = np.asarray(Image.open(expected).convert("L")) > 127
    if want.shape != det.mask.shape:
        print(f"error: expected mask is {want.shape[::-1]}, detection is {det.mask.shape[::-1]}", file=sys.stderr)
        return EXIT_INPUT_FAILED
    inter = np.logical_and(want, det.mask).sum()
    union = np.logical_or(want, det.mask).sum()
    iou = float(inter / union) if union else 1.0
    ok = iou >= args.min_iou
    print(f"model {args.model}: artifact IoU with the authors' mask = {iou:.4f} "
          f"(PAR ours {det.par:.4f}, theirs {want.mean():.4f}) -> {'PASS' if ok else 'FAIL'} (needs >= {args.min_iou})")
    return 0 if ok else EXIT_INPUT_FAILED
