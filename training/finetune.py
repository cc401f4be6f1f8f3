"""Teach a PAL model your generator from a few labelled images, with an honest before/after:
the same job as ComfyUI's PAL Fine-Tune and the webui tab's Fine-tune (pal4vst.learn.teach).

    python -m training.finetune --from unified --data DIR [--out runs/finetune] [--recipe default|quick]
                                [--steps N] [--lr X] [--held-out 0.3] [--device auto]

DIR holds NAME.png + NAME_mask.png pairs (what the hosts save: models/pal4vst/examples/<set>/),
or RGBA images whose transparent pixels mark the artifacts (ComfyUI's mask editor), or the
released images/ + labels/ layout (its val split is then the held-out part). Part of the examples
is held out and judges base and result; the rest is learned from. The paper's setting: ~10
images of an unseen generator lift the unified model (SD2 6.75 -> 11.04 mIoU, DiT 16.46 -> 31.76).
Writes OUT/best.safetensors (its record in the metadata) and OUT/best.json, and prints the record.
Expert flags (--batch, --crop, --amp, --tune, --set key=value, ...) replace the recipe's values.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pal4vst.learn.config import TrainConfig, parse_sets
from pal4vst.options import OptionError, add_arguments, declaration, options_from
from pal4vst.settings import ModelSource, TeachOptions

EXPERT = ["batch", "micro_batch", "crop", "tune", "amp", "workers", "val_interval", "ckpt_interval"]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=declaration(ModelSource, "model").default,
                    help="release name or checkpoint to start from; default unified")
    ap.add_argument("--data", required=True, help="the examples (see above)")
    ap.add_argument("--out", type=Path, default=Path("runs/finetune"), help="output folder; default runs/finetune")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps; default auto")
    add_arguments(ap.add_argument_group("recipe"), TeachOptions, ["recipe", "steps", "lr", "held_out", "seed"])
    g = ap.add_argument_group("expert (replace the recipe's values)")
    g.add_argument("--iters", dest="iters", type=int, help="the same as --steps")
    add_arguments(g, TrainConfig, EXPERT, keep_absent=True)
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field")
    return ap


def overrides(args: argparse.Namespace) -> dict:
    """The expert flags given and the ``--set`` values, typed as TrainConfig's fields."""
    return {**{k: getattr(args, k) for k in EXPERT if hasattr(args, k)}, **parse_sets(args.set, TrainConfig())}


def main(argv: list[str] | None = None):
    from pal4vst.learn.examples import ExampleError
    from pal4vst.learn.teach import teach
    from pal4vst.model.checkpoint import CheckpointError
    from pal4vst.model.weights import WeightsNotFound

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = parser().parse_args(argv)
    if args.iters and not args.steps:
        args.steps = args.iters
    try:
        options = options_from(args, TeachOptions)
        res = teach(args.source, args.data, args.out / "best.safetensors", options, device=args.device,
                    overrides=overrides(args), overwrite=True,
                    on_step=lambda step, total, loss, stage: print(f"{stage}: step {step}/{total} loss {loss:.4f}",
                                                                   file=sys.stderr)
                    if step % 10 == 0 or step == total else None)
    except (ExampleError, CheckpointError, WeightsNotFound, OptionError, ValueError) as e:
        print(f"finetune: {e}", file=sys.stderr)
        raise SystemExit(2) from None  # usage or setup, as every command of the project
    except KeyboardInterrupt:
        print("finetune: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    print(res.summary())
    print(f"wrote {res.path} and {res.path.with_suffix('.json')}")
    return res


if __name__ == "__main__":
    main()
