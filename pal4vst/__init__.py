"""PAL4VST: find, score and fix the perceptual artifacts of generated images.

The framework-free core: the segmenter (:mod:`pal4vst.model`), safe checkpoint loading
(:mod:`pal4vst.checkpoint`), weights resolution (:mod:`pal4vst.weights`), detection
(:mod:`pal4vst.detect`), PAR scoring (:mod:`pal4vst.score`, :mod:`pal4vst.batch_score`), and
zoom-in refinement (:mod:`pal4vst.regions`, :mod:`pal4vst.crops`, :mod:`pal4vst.composite`,
:mod:`pal4vst.refine`). The names below are imported on first use, so ``import pal4vst`` is cheap
(functions named like their module, ``detect``, ``composite``, ``refine``, live in that module).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Detector": "detect", "Detection": "detect",
    "load_checkpoint": "checkpoint", "CheckpointError": "checkpoint", "convert": "checkpoint",
    "resolve": "weights", "WeightsNotFound": "weights",
    "par": "score", "rank": "score", "best_index": "score",
    "find_regions": "regions", "RegionOptions": "regions",
    "zoom_crops": "crops", "CropOptions": "crops", "CropRecord": "crops",
    "OpenCVInpainter": "inpaint",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pal4vst' has no attribute {name!r}")
