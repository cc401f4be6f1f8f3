"""``python -m pal4vst``: detect, score, refine, convert, selfcheck, models."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import __version__

log = logging.getLogger("pal4vst")
EXIT_INPUT_FAILED = 1
EXIT_SETUP_FAILED = 2
EXIT_INTERRUPTED = 130


class Failures:
    """Collects per-input failures: one line each, a traceback only with ``--debug``."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.items: list[tuple[Path, str]] = []

    def add(self, path: Path, error: BaseException) -> None:
        self.items.append((path, str(error)))
        print(f"error: {path}: {error}" if str(path) not in str(error) else f"error: {error}", file=sys.stderr)
        if self.debug:
            traceback.print_exception(error)


# ------------------------------------------------------------------------------------------------
# argument helpers


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="unified",
                   help="release name (unified, stylegan2, portrait_shadow_removal), a file path, hf://owner/repo/file "
                        "or a URL (default: unified)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="compute precision; auto = bf16 where the hardware supports it, else fp32")
    p.add_argument("--threshold", type=float, default=0.5, help="artifact probability threshold (0.5 = argmax)")
    p.add_argument("--mode", default="whole", choices=["whole", "tiled"],
                   help="whole: the release's 512x512 resize; tiled: overlapping 512 windows at full resolution")
    p.add_argument("--batch", type=int, default=4, help="images per forward pass")
    p.add_argument("--no-download", action="store_true", help="never download weights; fail if they are missing")
    p.add_argument("--debug", action="store_true", help="print tracebacks")


def _make_detector(args: argparse.Namespace):
    from ..model.checkpoint import load_checkpoint
    from ..detect import Detector
    from ..model.weights import resolve

    path = resolve(args.model, download=not args.no_download)
    return Detector(load_checkpoint(path), device=args.device, dtype=args.dtype, threshold=args.threshold,
                    mode=args.mode, max_batch=args.batch)


def _output_stems(paths: list[Path]) -> list[str]:
    """Unique output names: the stem, or ``parent_stem`` when two inputs share a stem."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    stems, used = [], set()
    for p in paths:
        stem = p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}"
        base, n = stem, 1
        while stem in used:
            n += 1
            stem = f"{base}_{n}"
        used.add(stem)
        stems.append(stem)
    return stems


def _iter_images(inputs: list[str]) -> list[Path]:
    from ..images import list_images

    images, skipped = list_images(inputs)
    for s in skipped:
        print(f"warning: skipping {s}: not an image file", file=sys.stderr)
    return images


def _progress(items: list, desc: str) -> Iterator:
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, unit="img", disable=None if len(items) > 1 else True))


def _guard_inputs(out_paths: list[Path], inputs: list[Path]) -> None:
    resolved = {p.resolve() for p in inputs}
    for o in out_paths:
        if o.resolve() in resolved:
            raise SystemExit(f"error: output {o} would overwrite an input; choose another --out folder")


# ------------------------------------------------------------------------------------------------
# detect


def cmd_detect(args: argparse.Namespace) -> int:
    from ..images import read_image, save_image
    from ..zoom.regions import count_components
    from ..render import mask_to_uint8, overlay, prob_to_uint16

    images = _iter_images(args.inputs)
    if not images:
        print("error: no images found in the inputs", file=sys.stderr)
        return EXIT_INPUT_FAILED
    detector = _make_detector(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stems = _output_stems(images)
    _guard_inputs([out / f"{s}_{k}" for s in stems for k in ("mask.png", "prob.png", "overlay.jpg")], images)
    failures = Failures(args.debug)
    results = out / "results.jsonl"
    with results.open("w") as jsonl:
        for path, stem in zip(_progress(images, "detect"), stems):
            t0 = time.perf_counter()
            try:
                img = read_image(path)
                det = detector(img)
                save_image(mask_to_uint8(det.mask), out / f"{stem}_mask.png")
                save_image(prob_to_uint16(det.prob), out / f"{stem}_prob.png")
                save_image(overlay(img, det.mask, det.prob), out / f"{stem}_overlay.jpg", quality=90)
            except (ValueError, OSError) as e:
                failures.add(path, e)
                continue
            record = {"input": str(path), "width": det.size[0], "height": det.size[1], "par": round(det.par, 6),
                      "regions": count_components(det.mask), "model": str(args.model),
                      "seconds": round(time.perf_counter() - t0, 3)}
            jsonl.write(json.dumps(record) + "\n")
            jsonl.flush()
    done = len(images) - len(failures.items)
    print(f"{done} of {len(images)} images written to {out}", file=sys.stderr)
    return EXIT_INPUT_FAILED if failures.items else 0


# ------------------------------------------------------------------------------------------------
# score


def cmd_score(args: argparse.Namespace) -> int:
    from ..scoring.batch import ScoreJob, World, run

    world = World.from_env()
    if world.size > 1 and args.device == "auto":
        import torch

        if torch.cuda.is_available():
            args.device = f"cuda:{world.local_rank}"
    job = ScoreJob(args.inputs, args.out, _make_detector(args), batch=args.batch, workers=args.workers,
                   chunk=args.chunk, retry_failed=args.retry_failed, world=world)
    summary = run(job)
    if world.rank != 0:
        return 0
    for _, path, par in summary["best"]:
        print(f"PAR {par:.4f}  {path}")
    print(f"ranked {summary['ranked']} images -> {args.out} ({summary['images_per_s']} images/s on rank 0, "
          f"{summary['skipped']} already scored)", file=sys.stderr)
    if summary["histogram"]:
        print(f"PAR histogram: {summary['histogram']}", file=sys.stderr)
    for line in summary["slowest_decode"][:3]:
        print(f"slowest to decode: {line}", file=sys.stderr)
    for line in summary["failed"]:
        print(f"error: {line}", file=sys.stderr)
    if args.html:
        _score_html(args.out, args.html, job.detector, args.html_max)
    return EXIT_INPUT_FAILED if summary["failed"] else 0


def _score_html(ranking: Path, html: Path, detector, limit: int) -> None:
    """A contact sheet of the first ``limit`` ranked images (overlays are recomputed)."""
    from ..scoring.report import write_contact_sheet
    from ..scoring.sources import read_item

    with ranking.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"][:limit]
    entries = []
    for r in rows:
        img = read_item(r["path"])
        entries.append((Path(r["path"]), img, detector(img)))
    write_contact_sheet(html, entries)
    print(f"contact sheet: {html}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# convert, models, selfcheck


def cmd_convert(args: argparse.Namespace) -> int:
    from ..model.checkpoint import convert
    from ..model.weights import resolve

    src = resolve(args.input, download=not args.no_download)
    dst = convert(src, args.output)
    print(f"wrote {dst}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
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


def cmd_selfcheck(args: argparse.Namespace) -> int:
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
    detector = _make_detector(args)
    det = detector(read_image(image))
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


# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pal4vst", description="Find, score and fix the broken parts of "
                                 "generated images (PAL4VST, ICCV 2023).")
    ap.add_argument("--version", action="version", version=f"pal4vst {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", help="artifact masks, probability maps and overlays for images or folders")
    p.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    _add_model_args(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("score", help="rank images by PAR (Perceptual Artifacts Ratio), best first; "
                       "resumable, and sharded over ranks under torchrun")
    p.add_argument("inputs", nargs="+", help="folders (recursive), .txt/.csv lists of paths, .tar shards, globs")
    p.add_argument("--out", type=Path, default=Path("ranking.csv"), help="CSV ranking (default ranking.csv)")
    p.add_argument("--html", type=Path, help="also write a contact sheet of overlays")
    p.add_argument("--html-max", type=int, default=200, help="images in the contact sheet (best first)")
    p.add_argument("--workers", type=int, default=2, help="decoding processes per rank")
    p.add_argument("--chunk", type=int, default=256, help="results written per chunk (lost at most on a kill)")
    p.add_argument("--retry-failed", action="store_true", help="try files that failed before again")
    _add_model_args(p)
    p.set_defaults(func=cmd_score)

    from .refine import add_refine_parser

    add_refine_parser(sub, _add_model_args)

    p = sub.add_parser("convert", help="convert a release checkpoint (.pth / TorchScript) to safetensors")
    p.add_argument("input", help="checkpoint file or release name")
    p.add_argument("output", type=Path, help="output .safetensors file")
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("models", help="list releases, model folders and local model files")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("selfcheck", help="compare a model's mask on the authors' demo input with theirs")
    p.add_argument("--image", type=Path, help="reference input (default: img.jpg of the reference folder)")
    p.add_argument("--expected", type=Path, help="reference mask (default: img_unified_mask.png)")
    p.add_argument("--min-iou", type=float, default=0.9)
    _add_model_args(p)
    p.set_defaults(func=cmd_selfcheck)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    from ..model.checkpoint import CheckpointError
    from ..model.weights import WeightsNotFound

    try:
        return args.func(args)
    except (CheckpointError, WeightsNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_SETUP_FAILED
    except KeyboardInterrupt:
        print("interrupted: finished outputs are complete; nothing half-written was left", file=sys.stderr)
        return EXIT_INTERRUPTED
