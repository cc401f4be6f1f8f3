"""``python -m pal4vst``: the parser of every command, and the errors that end a run."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from .. import __version__
from . import detect, models, refine, score, teach
from .common import EXIT_INTERRUPTED, EXIT_SETUP_FAILED


EXIT_STATUSES = ("exit status: 0 all done, 1 some inputs failed, 2 usage or setup (nothing done), 130 interrupted; "
                 "teach: 3 a model was written but is not shown better")


def program_name() -> str:
    """How the user called us: ``pal4vst`` (the installed command) or ``python -m pal4vst``."""
    return "pal4vst" if Path(sys.argv[0]).name in ("pal4vst", "pal4vst.exe") else "python -m pal4vst"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=program_name(), description="Find, score and fix the broken parts of "
                                 "generated images (PAL4VST, ICCV 2023).", epilog=EXIT_STATUSES)
    ap.add_argument("--version", action="version", version=f"pal4vst {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    detect.add_parser(sub)
    score.add_parser(sub)
    refine.add_parser(sub)
    models.add_parsers(sub)
    teach.add_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    from ..device import DeviceError
    from ..files import WriteError
    from ..model.checkpoint import CheckpointError
    from ..model.weights import WeightsNotFound
    from ..options import OptionError
    from .common import SetupError

    try:
        return args.func(args)
    except (CheckpointError, WeightsNotFound, OptionError, SetupError, DeviceError, WriteError) as e:
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
