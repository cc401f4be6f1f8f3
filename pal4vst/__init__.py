"""PAL4VST: find, score and fix the perceptual artifacts of generated images.

The framework-free core, in parts:

* :mod:`pal4vst.model`: the segmenter (Swin + UPerNet), safe checkpoint loading, the mapping of
  foreign checkpoint layouts, and where model files come from;
* :mod:`pal4vst.detect`: detection at each image's own resolution;
* :mod:`pal4vst.zoom`: the zoom-in repair (regions, crops, inpainting, composite, refine);
* :mod:`pal4vst.scoring`: PAR, ranking and dataset-scale scoring;
* :mod:`pal4vst.cli`: ``python -m pal4vst``;
* :mod:`pal4vst.settings`: everything a user can set, declared once (:mod:`pal4vst.options`).

The names below are imported on first use, so ``import pal4vst`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Detector": "detect", "Detection": "detect", "detect": "detect",
    "DetectOptions": "settings", "RegionOptions": "settings", "MaskOptions": "settings", "CropOptions": "settings",
    "PasteOptions": "settings", "RefineOptions": "settings", "RepairOptions": "settings", "SamplingOptions": "settings",
    "ScoreOptions": "settings", "Detects": "detect",
    "load_checkpoint": "model.checkpoint", "CheckpointError": "model.checkpoint", "convert": "model.checkpoint",
    "resolve": "model.weights", "WeightsNotFound": "model.weights",
    "par": "masks", "rank": "scoring.ranking", "Region": "masks",
    "find_regions": "zoom.regions", "zoom_crops": "zoom.crops", "CropRecord": "zoom.crops",
    "composite": "zoom.composite", "refine": "zoom.refine", "RefineResult": "zoom.refine",
    "RegionReport": "zoom.verify", "candidate_seed": "zoom.verify", "candidate_seeds": "zoom.verify",
    "OpenCVInpainter": "zoom.inpaint", "DiffusersInpainter": "zoom.inpaint",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pal4vst' has no attribute {name!r}")
