"""Train a PAL4VST segmenter.

    python -m training.train [CONFIG.json] --data DIR [--preset swin_b] [--iters N] [--batch N] [--out DIR]
    torchrun --nproc_per_node N -m training.train CONFIG.json ...     # DDP (NCCL on GPU, gloo on CPU)

Defaults are the released recipe (see training/config.py). ``--resume`` continues from OUT/last.pt
(or a given checkpoint) with the model, optimiser, scheduler, iteration and RNG restored.
"""

from __future__ import annotations

import argparse
import json
import logging

from .config import TrainConfig, add_override_args, apply_overrides
from .engine import train


def parser(description: str = __doc__) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", help="JSON file with TrainConfig fields")
    add_override_args(ap)
    ap.add_argument("--resume", nargs="?", const=True, default=False,
                    help="continue from OUT/last.pt, or from the checkpoint given")
    return ap


def run(base: TrainConfig, args: argparse.Namespace) -> dict:
    """Apply the file and flags to ``base``, train, print the summary as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = apply_overrides(TrainConfig.load(args.config) if args.config else base, args)
    if not cfg.data:
        raise SystemExit("--data DIR is required (a dataset folder; see training/data.py for layouts)")
    summary = train(cfg, resume=args.resume)
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> dict:
    return run(TrainConfig(), parser().parse_args(argv))


if __name__ == "__main__":
    main()
