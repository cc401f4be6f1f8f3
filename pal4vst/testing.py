"""Checkpoints in the released file layouts, for tests, benchmarks and offline trials: random
weights, or weights crafted so that the artifacts are exactly the image's bright areas.

    python -m pal4vst.testing tiny /tmp/tiny.pth        # MMSegmentation layout
    python -m pal4vst.testing tiny /tmp/tiny.safetensors
    python -m pal4vst.testing tiny /tmp/bright.safetensors --bright
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch

from .model.checkpoint import save_safetensors
from .model.segmenter import PALSegmenter, build_model


def randomise(model: torch.nn.Module, seed: int = 0, artifact_bias: float = 0.0) -> torch.nn.Module:
    """Fill every parameter and BatchNorm statistic with non-trivial random values (works on any
    model with MMSegmentation's names, MMSegmentation's own included).

    ``artifact_bias`` is added to the artifact logit, to tune how much a random model marks.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.25)
            elif name.endswith(("running_mean", "bias", "relative_position_bias_table")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.5)
            elif t.ndim == 1:
                t.copy_(1.0 + torch.randn(t.shape, generator=g) * 0.2)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (1.5 / max(1, t[0].numel())) ** 0.5)
        if artifact_bias:
            model.decode_head.conv_seg.bias[1] += artifact_bias
    return model.eval()


def mark_bright(model: PALSegmenter, scale: float = 20.0) -> PALSegmenter:
    """Set the weights so that the artifact logit is ``+scale/2`` where the image is brighter than
    the normalisation's mean grey (~117/255) and ``-scale/2`` where it is darker: a real Swin +
    UPerNet forward pass whose output a test knows (white shapes on a dark image are the regions).

    Patch embedding: channel 0 = the patch's mean brightness, channel 1 its negative; LayerNorm
    turns the pair into ``+-k`` (``k = sqrt(C / 2)``). Every Swin block adds zero (identity), later
    stages are zero, and the head routes channel 0 of stage 0 through lateral, FPN and fusion convs
    (BatchNorm as identity, ReLU keeps the bright side) to the artifact logit.
    """
    cfg = model.config
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var") or (name.endswith(".weight") and t.ndim == 1):
                t.fill_(1.0)  # BatchNorm / LayerNorm scales
            else:
                t.zero_()
        emb = model.backbone.patch_embed.projection
        emb.weight[0].fill_(1.0 / emb.weight[0].numel())
        emb.weight[1].fill_(-1.0 / emb.weight[1].numel())
        head = model.decode_head
        head.lateral_convs[0].conv.weight[0, 0] = 1.0
        head.fpn_convs[0].conv.weight[0, 0, 1, 1] = 1.0
        head.fpn_bottleneck.conv.weight[0, 0, 1, 1] = 1.0
        k = (cfg.embed_dim / 2) ** 0.5
        head.conv_seg.weight[1, 0] = scale / k
        head.conv_seg.bias[1] = -scale / 2
    return model.eval()


def bright_checkpoint(path: str | Path, preset: str = "tiny", grey: float | None = None) -> Path:
    """Write a :func:`mark_bright` model of ``preset`` (``.safetensors``: ours, else MMSeg's layout);
    ``grey``: the brightness (0..255) above which a patch is marked, in place of the normalisation's
    mean (the file records it as its mean, so a detector reads it back; ``.safetensors`` only)."""
    model = mark_bright(build_model(preset))
    if grey is not None:
        if Path(path).suffix != ".safetensors":
            raise ValueError("grey is recorded in .safetensors files only")
        model.config = dataclasses.replace(model.config, mean=(float(grey),) * 3)
    return _write(model, Path(path), f"bright-{preset}")


def _write(model: PALSegmenter, path: Path, name: str) -> Path:
    if path.suffix == ".safetensors":
        return save_safetensors(model, path, source_name=name)
    return write_mmseg_checkpoint(model, path)


def write_mmseg_checkpoint(model: PALSegmenter, path: str | Path) -> Path:
    """Save as MMSegmentation does: ``{"meta": ..., "state_dict": ...}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"dataset_meta": {"classes": ("background", "artifact")}, "iter": 0}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    return path


def random_checkpoint(path: str | Path, preset: str = "tiny", seed: int = 0, artifact_bias: float = 0.0) -> Path:
    """Write a random model of ``preset``; ``.safetensors`` gives our format, anything else MMSeg's."""
    return _write(randomise(build_model(preset), seed, artifact_bias), Path(path), f"random-{preset}")


def teaching_scenario(root: str | Path, val: int = 24) -> dict[str, Path]:
    """A known answer for teaching (the tests', ``benchmarks/bench_finetune.py``'s and
    ``tools/make_teach_figure.py``'s): ``base``, the tiny preset trained on one artifact kind
    ("noise": 300 images, 500 steps, on the CPU in about a minute); ``examples``, ten an artist
    saved of a kind it never saw ("solid": flat saturated patches); ``old`` and ``new``, datasets
    of each kind whose ``val`` split (``val`` images) is unseen by both base and teaching."""
    from .learn.config import TrainConfig
    from .learn.engine import train
    from .learn.recipes import RECIPES
    from .learn.synthetic import write_dataset, write_example_set

    root = Path(root)
    old = write_dataset(root / "old", {"train": 300, "val": val}, size=96, seed=0, kinds=("noise",))
    train(TrainConfig.from_dict({**RECIPES["scratch"], "data": str(old), "out": str(root / "base"), "preset": "tiny",
                                 "iters": 500, "batch": 8, "crop": 64, "scale": 80, "amp": "none", "workers": 0,
                                 "val_interval": 500, "ckpt_interval": 500, "device": "cpu"}))
    return {
        "base": root / "base" / "last.safetensors",
        "old": old,
        "new": write_dataset(root / "new", {"val": val}, size=96, seed=7, kinds=("solid",)),
        "examples": write_example_set(root / "examples", 10, size=96, seed=3, kinds=("solid",)),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .model.segmenter import PRESETS

    ap = argparse.ArgumentParser(prog="python -m pal4vst.testing", description="Write a test model to try every "
                                 "command without the released weights (no download).", epilog="then, e.g.: "
                                 "pal4vst detect IMAGES --out out --model OUT")
    ap.add_argument("preset", choices=sorted(PRESETS), help="architecture: tiny (fast), swin_t, swin_b (the release's)")
    ap.add_argument("out", type=Path, help="OUT.safetensors (ours) or OUT.pth (MMSegmentation's layout)")
    ap.add_argument("--bright", action="store_true", help="artifacts = the image's bright areas (known output); "
                    "default: random weights")
    args = ap.parse_args(argv)
    print((bright_checkpoint if args.bright else random_checkpoint)(args.out, args.preset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
