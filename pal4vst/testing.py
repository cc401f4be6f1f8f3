"""Random-weight checkpoints in the released file layouts, for tests, benchmarks and offline trials.

    python -m pal4vst.testing tiny /tmp/tiny.pth        # MMSegmentation layout
    python -m pal4vst.testing tiny /tmp/tiny.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .checkpoint import save_safetensors
from .model import PALSegmenter, build_model


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


def write_mmseg_checkpoint(model: PALSegmenter, path: str | Path) -> Path:
    """Save as MMSegmentation does: ``{"meta": ..., "state_dict": ...}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"dataset_meta": {"classes": ("background", "artifact")}, "iter": 0}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    return path


def random_checkpoint(path: str | Path, preset: str = "tiny", seed: int = 0, artifact_bias: float = 0.0) -> Path:
    """Write a random model of ``preset``; ``.safetensors`` gives our format, anything else MMSeg's."""
    model = randomise(build_model(preset), seed, artifact_bias)
    path = Path(path)
    if path.suffix == ".safetensors":
        return save_safetensors(model, path, source_name=f"random-{preset}")
    return write_mmseg_checkpoint(model, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m pal4vst.testing PRESET OUT(.pth|.safetensors)")
    print(random_checkpoint(sys.argv[2], sys.argv[1]))
