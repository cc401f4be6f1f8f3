"""ImageNet Swin weights as the backbone's starting point (the release starts from Swin-B 22k).

The three layouts in use are mapped by :func:`pal4vst.model.layouts.filter_swin_imagenet`.
"""

from __future__ import annotations

import torch

from ..model.checkpoint import read_file
from ..model.layouts import filter_swin_imagenet


def load_imagenet_backbone(model: torch.nn.Module, path: str) -> tuple[list[str], list[str]]:
    """Load ImageNet Swin weights into ``model.backbone``; returns (missing, unexpected) names."""
    sd = filter_swin_imagenet(read_file(path)[0])
    own = model.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
    missing = [k for k in own if k.startswith("backbone.") and k not in usable and not k.endswith("num_batches_tracked")]
    return missing, sorted(set(sd) - set(usable))
