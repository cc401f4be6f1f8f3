"""Few-shot fine-tuning of a released model on your generator's failures (~10 labelled images).

    python -m training.finetune --from unified --data DIR [--iters 2000] [--out runs/finetune]

DIR holds NAME.png + NAME_mask.png pairs, or RGBA images whose transparent pixels mark the
artifacts (ComfyUI's mask editor), or the released images/ + labels/ layout. The paper's setting:
the unified model fine-tuned for ~2k iterations lifts unseen generators (SD2 6.75 -> 11.04 mIoU,
DiT 16.46 -> 31.76). The result is OUT/best.safetensors, ready for the nodes and the extension.
"""

from __future__ import annotations

import argparse
import json
import logging

from .config import TrainConfig, add_override_args, apply_overrides
from .engine import train

FINETUNE = dict(iters=2000, warmup_iters=100, poly_end=2000, val_interval=200, ckpt_interval=200, out="runs/finetune")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default="unified", help="release name or checkpoint to start from")
    add_override_args(ap)
    ap.add_argument("--resume", nargs="?", const=True, default=False)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = apply_overrides(TrainConfig(init=args.source, **FINETUNE), args)
    if not cfg.data:
        raise SystemExit("--data DIR is required")
    summary = train(cfg, resume=args.resume)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
