"""Train a PAL4VST segmenter.

    python -m training.train [CONFIG.json] --data DIR [--preset swin_b] [--iters N] [--batch N] [--out DIR]
    torchrun --nproc_per_node N -m training.train CONFIG.json ...     # DDP (NCCL on GPU, gloo on CPU)

Defaults are the released recipe (see pal4vst/learn/config.py); ``--recipe scratch`` is the schedule for
short runs of the small presets from random weights. A default warm-up that would take most of a
short run is scaled down, and the schedule is printed at start. ``--resume`` continues from
OUT/last.pt (or a given checkpoint) with the model, optimiser, scheduler, iteration and RNG restored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from pal4vst.options import OptionError

from pal4vst.learn.config import TrainConfig, add_override_args, apply_overrides, explicit_keys, fit_warmup, recipe
from pal4vst.learn.engine import train
from pal4vst.learn.errors import LearnError

log = logging.getLogger("pal4vst.train")


def parser(description: str = __doc__) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="JSON file with TrainConfig fields")
    add_override_args(ap)
    ap.add_argument("--resume", nargs="?", const=True, default=False,
                    help="continue from OUT/last.pt, or from the checkpoint given")
    return ap


def configure(args: argparse.Namespace, default_recipe: str = "release", **fixed) -> tuple[TrainConfig, str | None]:
    """The recipe, then ``fixed``, the JSON file, the flags and ``--set``; the warm-up fitted to the
    run. Returns the config and the note to print about the warm-up, if any."""
    cfg = dataclasses.replace(recipe(args.recipe or default_recipe), **fixed)
    from_file = json.loads(Path(args.config).read_text()) if args.config else {}
    file_cfg = TrainConfig.from_dict(from_file)  # checks the keys, turns lists into tuples
    cfg = dataclasses.replace(cfg, **{k: getattr(file_cfg, k) for k in from_file})
    return fit_warmup(apply_overrides(cfg, args), set(from_file) | explicit_keys(args, cfg))


def run(args: argparse.Namespace, default_recipe: str = "release", **fixed):
    """Configure, train, print the summary as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg, note = configure(args, default_recipe, **fixed)
        if note:
            log.warning("%s", note)
        if not cfg.data:
            raise LearnError("--data DIR is required (a dataset folder; see pal4vst/learn/data.py for layouts)")
    except (OptionError, ValueError) as e:  # a setting: usage or setup, exit 2
        print(f"training: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        summary = train(cfg, resume=args.resume)
    except LearnError as e:  # the dataset or the batch split; any other error keeps its traceback
        print(f"training: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(dataclasses.asdict(summary)))
    return summary


def main(argv: list[str] | None = None):
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
