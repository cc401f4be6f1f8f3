"""``python -m pal4vst``: the parser of every command, and the errors that end a run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from .. import __version__
from . import detect, models, refine, score
from .common import EXIT_INTERRUPTED, EXIT_SETUP_FAILED


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pal4vst", description="Find, score and fix the broken parts of "
                                 "generated images (PAL4VST, ICCV 2023).")
    ap.add_argument("--version", action="version", version=f"pal4vst {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    detect.add_parser(sub)
    score.add_parser(sub)
    refine.add_parser(sub)
    models.add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    from ..device import DeviceError
    from ..model.checkpoint import CheckpointError
    from ..model.weights import WeightsNotFound
    from ..options import OptionError
    from .common import SetupError

    try:
        return args.func(args)
    except (CheckpointError, WeightsNotFound, OptionError, SetupError, DeviceError) as e:
        print(f"error: --device {e}" if isinstance(e, DeviceError) else f"error: {e}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_SETUP_FAILED
    except KeyboardInterrupt:
        print("interrupted: finished outputs are complete; nothing half-written was left", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `pal4vst models | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
