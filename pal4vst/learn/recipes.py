"""Every named recipe in one table: training from scratch or ImageNet (``training.train``), the
researcher's fine-tune (``training.finetune``'s expert base) and the hosts' teaching recipes
(``TeachOptions.recipe``). A recipe sets :class:`pal4vst.learn.config.TrainConfig` fields; a
config file, flags and ``--set`` apply on top. Imports neither torch nor the model, so that
the settings' help texts can read their numbers from here.
"""

from __future__ import annotations

from typing import Any

RECIPES: dict[str, dict[str, Any]] = {
    # The official unified config: Swin-B from ImageNet-22k weights, 20k iterations of batch 8.
    "release": {},
    # Few-shot fine-tuning of a released model (the paper's ~10 images of an unseen generator).
    "finetune": dict(iters=2000, warmup_iters=100, poly_end=2000, val_interval=200, ckpt_interval=200,
                     out="runs/finetune"),
    # Small presets learning from random weights in a short run (what tests/test_training.py's
    # learning test uses): a high learning rate reached after 50 steps and decayed to zero at the
    # run's end, no drop path, milder rescaling.
    "scratch": dict(lr=1e-3, head_lr_mult=1.0, warmup_iters=50, poly_end=0, drop_path=0.0, ratio_range=(0.75, 1.5)),
    # Teaching in the hosts (TeachOptions.recipe "default" and "quick"): every weight learns,
    # pulled back towards the base's (anchor) with BatchNorm's statistics kept, so that what the
    # base knew is kept; chosen by benchmarks/bench_finetune.py (the README's table).
    "teach": dict(iters=300, warmup_iters=30, poly_end=0, tune="all", batch=2, drop_path=0.0, freeze_bn=True,
                  anchor=300.0),
    "teach_quick": dict(iters=100, warmup_iters=10, poly_end=0, tune="all", batch=2, drop_path=0.0, freeze_bn=True,
                        anchor=300.0),
}

#: TeachOptions.recipe -> (the recipe above, the share of the model's own input size it trains at)
TEACH: dict[str, tuple[str, float]] = {"default": ("teach", 1.0), "quick": ("teach_quick", 0.75)}

#: The peak learning rate of a fine-tune belongs to the model: Swin-B's is the release's
#: fine-tune rate; the tiny test preset learns nothing at that rate in a few hundred steps
#: (benchmarks/bench_finetune.py) and takes five times it. Keyed by preset (matched by
#: architecture, :func:`pal4vst.learn.config.model_lr`); a model of no preset gets Swin-B's.
MODEL_LR: dict[str, float] = {"swin_b": 6e-5, "swin_t": 6e-5, "tiny": 3e-4}
DEFAULT_LR = MODEL_LR["swin_b"]


def teach_recipe(name: str) -> dict[str, Any]:
    """The TrainConfig fields of a teaching recipe (``default`` or ``quick``)."""
    return RECIPES[TEACH[name][0]]


def describe_teach(name: str) -> str:
    """A teaching recipe in words, from its numbers (for help texts)."""
    r, share = teach_recipe(name), TEACH[name][1]
    size = "the model's own size" if share == 1 else f"{share:.0%} of the model's size"
    return f"{r['iters']} steps at {size}"
