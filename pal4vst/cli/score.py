"""``python -m pal4vst score``: rank image sets by PAR, best first; resumable, sharded under torchrun."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_INPUT_FAILED, SetupError, add_model_args, check_writable, make_detector


def add_parser(sub) -> None:
    from ..options import add_arguments
    from ..settings import ScoreOptions

    p = sub.add_parser("score", help="rank images by PAR (Perceptual Artifacts Ratio), best first; "
                       "resumable, and sharded over ranks under torchrun")
    p.add_argument("inputs", nargs="+", help="folders (recursive), .txt/.csv lists of paths, .tar shards, globs")
    p.add_argument("--out", type=Path, default=Path("ranking.csv"), help="CSV ranking (default ranking.csv)")
    p.add_argument("--html", type=Path, help="also write a contact sheet of overlays")
    p.add_argument("--html-max", type=int, default=200, help="images in the contact sheet (best first); default 200")
    add_arguments(p.add_argument_group("reading and recording"), ScoreOptions)
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..distributed import World
    from ..files import WriteError
    from ..options import options_from
    from ..scoring.batch import ResumeError, ScoreJob, score_job, written_by
    from ..scoring.sources import enumerate_sources
    from ..settings import ScoreOptions

    world = World.from_env()
    options = options_from(args, ScoreOptions)
    # before the model loads: no images, no run; what scoring writes is never its input
    items, problems = enumerate_sources(args.inputs, exclude=written_by(args.out, args.html))
    if world.rank == 0:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
    if not items:
        if world.rank == 0:
            print("error: no images found in the inputs", file=sys.stderr)
        return EXIT_INPUT_FAILED
    for path, flag in ((args.out, "--out"), (args.html, "--html")):
        if path is not None:
            if path.is_dir():
                raise SetupError(f"{flag} {path} is a folder; give a file name")
            check_writable(path.parent, flag, path)
    if world.size > 1 and args.device == "auto":
        import torch

        if torch.cuda.is_available():
            args.device = f"cuda:{world.local_rank}"
    job = ScoreJob(args.inputs, args.out, make_detector(args), options, world, items=items,
                   thumbnails=args.html_max if args.html else 0)
    try:
        summary = score_job(job)
    except ResumeError as e:
        raise SetupError(str(e)) from None
    except OSError as e:  # the parts or the ranking could not be written
        raise SetupError(str(e) if isinstance(e, WriteError) else
                         f"cannot write {e.filename or args.out}: {e.strerror or e}") from None
    if world.rank != 0:
        return 0
    for _, path, par in summary.best:
        print(f"PAR {par:.4f}  {path}")
    print(f"ranked {summary.ranked} images -> {args.out} ({summary.images_per_s} images/s on rank 0, "
          f"{summary.skipped} already scored)", file=sys.stderr)
    if summary.histogram:
        print(f"PAR histogram: {summary.histogram}", file=sys.stderr)
    for line in summary.slowest_decode[:3]:
        print(f"slowest to decode: {line}", file=sys.stderr)
    for line in summary.failed:
        print(f"error: {line}", file=sys.stderr)
    if args.html:
        contact_sheet(args.out, args.html, job.detector, args.html_max)
    return EXIT_INPUT_FAILED if summary.failed or problems else 0


def contact_sheet(ranking: Path, html: Path, detector, limit: int) -> None:
    """The contact sheet of the first ``limit`` ranked images, from the overlays scoring kept."""
    from ..scoring.batch import ranked_cards
    from ..scoring.report import write_contact_sheet

    cards, again = ranked_cards(ranking, detector, limit)
    write_contact_sheet(html, cards)
    note = f"; {again} scored by an earlier run were detected again for it" if again else ""
    print(f"contact sheet: {html} ({len(cards)} images{note})", file=sys.stderr)
