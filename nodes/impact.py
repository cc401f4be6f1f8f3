"""PAL in Impact Pack's detailer graphs, without importing Impact Pack (it is optional).

Impact's ``SEGS`` is ``((H, W), [SEG, ...])``, a SEG a namedtuple of ``cropped_image``,
``cropped_mask`` (float numpy, crop-sized), ``confidence``, ``crop_region`` ``[x1, y1, x2, y2]``,
``bbox`` ``[x1, y1, x2, y2]``, ``label`` and ``control_net_wrapper``. Impact reads SEGs by field
name (and ``_replace``s them), so a namedtuple with the same fields is a SEG to every SEGS node.

Meanings follow Impact (``modules/impact/utils.py``, ``core.py``, the Subpack's ``subcore.py``):
``crop_factor`` scales the bbox's width and height about its centre, then the region is shifted
inside the image; ``dilation`` grows (negative: shrinks) each mask with a square kernel of that
size; a region is kept when its bbox is wider and taller than ``drop_size``. A detector object has
``detect(image, threshold, dilation, crop_factor, drop_size=1, detailer_hook=None)`` -> SEGS,
``detect_combined(image, threshold, dilation)`` -> MASK ``[H, W]``, and ``setAux(x)``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import torch

from pal4vst.deps import check as check_requirements
from pal4vst.options import declaration, option, settings
from pal4vst.settings import DetectOptions

from .inputs import options, Output, outputs, widget, widgets
from .model_node import CATEGORY

SEG = namedtuple("SEG", ["cropped_image", "cropped_mask", "confidence", "crop_region", "bbox", "label",
                         "control_net_wrapper"], defaults=[None])
LABEL = "artifact"


@settings
class ImpactSettings:
    """The settings of Impact's detector nodes, in Impact's own meanings (declared here: they
    belong to Impact's protocol, not to the core)."""

    dilation: int = option(0, "grow (negative: shrink) each region's mask with a square kernel of this size, as "
                           "Impact's detectors do", min=-512, max=512, step=1)
    crop_factor: float = option(1.5, "crop = the region's bbox scaled by this about its centre (Impact's meaning); "
                                "the paper's zoom-in uses 1.5", min=1.0, max=100.0, step=0.1)
    drop_size: int = option(10, "ignore regions whose bbox is not wider and taller than this (pixels)", min=1,
                            max=16384, step=1)


def make_crop_region(w: int, h: int, bbox, crop_factor: float) -> list[int]:
    """Impact's crop region: ``bbox`` scaled by ``crop_factor`` about its centre, shifted inside
    the ``w x h`` image (clipped where it is larger)."""
    x1, y1, x2, y2 = bbox
    cw, ch = (x2 - x1) * crop_factor, (y2 - y1) * crop_factor
    nx1, nx2 = _inside(w, int(x1 + (x2 - x1) / 2 - cw / 2), cw)
    ny1, ny2 = _inside(h, int(y1 + (y2 - y1) / 2 - ch / 2), ch)
    return [nx1, ny1, nx2, ny2]


def _inside(limit: int, start: int, size: float) -> tuple[int, int]:
    if start < 0:
        return 0, int(min(limit, size))
    if start + size > limit:
        return int(max(0, limit - size)), limit
    return start, int(min(limit, start + size))


def dilate(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Impact's dilation: a square ``|dilation|`` kernel, dilating (> 0) or eroding (< 0)."""
    import cv2

    if dilation == 0:
        return mask
    kernel = np.ones((abs(dilation), abs(dilation)), np.uint8)
    return (cv2.dilate if dilation > 0 else cv2.erode)(mask, kernel)


def segs_of(image: torch.Tensor, detection, dilation: int, crop_factor: float, drop_size: int = 1,
            detailer_hook=None):
    """SEGS of one ``[1, H, W, C]`` image from its :class:`~pal4vst.detect.Detection`: one SEG per
    8-connected artifact region, largest first."""
    h, w = detection.mask.shape
    regions = detection.regions()
    items = []
    for region in regions:
        bx1, by1, bx2, by2 = region.bbox
        if not (bx2 - bx1 > max(drop_size, 1) and by2 - by1 > max(drop_size, 1)):
            continue
        bbox = [bx1, by1, bx2, by2]
        crop = make_crop_region(w, h, bbox, crop_factor)
        if detailer_hook is not None:
            crop = list(detailer_hook.post_crop_region(w, h, bbox, crop))
        cx1, cy1, cx2, cy2 = crop
        full = np.zeros((h, w), np.uint8)
        full[by1:by2, bx1:bx2] = region.mask
        cropped_mask = dilate(full[cy1:cy2, cx1:cx2].copy(), dilation).astype(np.float32)
        confidence = float(detection.prob[by1:by2, bx1:bx2][region.mask].max())
        items.append(SEG(image[:, cy1:cy2, cx1:cx2, :].clone(), cropped_mask, confidence, crop, bbox, LABEL, None))
    segs = ((h, w), items)
    if detailer_hook is not None and hasattr(detailer_hook, "post_detection"):
        segs = detailer_hook.post_detection(segs)
    return segs


def _one_image(image: torch.Tensor, who: str) -> torch.Tensor:
    if image.ndim == 3:
        image = image[None]
    if image.shape[0] != 1:
        raise ValueError(f"{who} takes one image at a time, as Impact Pack's detectors do (got a batch of "
                         f"{image.shape[0]}); for batches use PAL Detailer, or Impact's batching nodes")
    return image


class PALImpactDetector:
    """A PAL4VST model as an Impact ``BBOX_DETECTOR`` / ``SEGM_DETECTOR``."""

    def __init__(self, pal_model, mode: str = "whole") -> None:
        self.pal_model = pal_model
        self.mode = mode

    def _detect(self, image: torch.Tensor, threshold: float):
        check_requirements()
        image = _one_image(image, "the PAL4VST detector")
        spec = declaration(DetectOptions, "threshold").spec  # Impact allows 0..1
        detector = self.pal_model.detector(threshold=min(max(float(threshold), spec.min), spec.max), mode=self.mode)
        try:
            return image, detector(image[0])
        finally:
            self.pal_model.offload()

    def detect(self, image, threshold, dilation, crop_factor, drop_size=1, detailer_hook=None):
        image, detection = self._detect(image, threshold)
        return segs_of(image, detection, int(dilation), float(crop_factor), int(drop_size), detailer_hook)

    def detect_combined(self, image, threshold, dilation):
        _, detection = self._detect(image, threshold)
        return torch.from_numpy(dilate(detection.mask.astype(np.uint8), int(dilation)).astype(np.float32))

    def setAux(self, x):  # noqa: N802 - Impact's name; text prompts (CLIPSeg's 'face') mean nothing to PAL
        pass


class PALDetectSEGS:
    """PAL4VST's artifact regions as Impact Pack SEGS, for "Detailer (SEGS)" and every SEGS node."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("segs", "SEGS", "one SEG per artifact region, label 'artifact', for Impact Pack's SEGS nodes"),
    )
    SEARCH_ALIASES = ["artifact segs", "segs detector", "impact", "fix hands", "detailer"]
    FUNCTION = "detect"
    DESCRIPTION = ("One SEG per artifact region (label 'artifact'), with Impact's crop_factor, dilation and drop_size, "
                   "for Impact Pack's Detailer (SEGS) and SEGS nodes. One image at a time, as Impact's detectors.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pal_model": ("PAL_MODEL",),
                "image": ("IMAGE",),
                "threshold": widget(DetectOptions, "threshold"),
                **widgets(ImpactSettings, "dilation", "crop_factor", "drop_size"),
                "mode": widget(DetectOptions, "mode"),
            },
            "optional": {"detailer_hook": ("DETAILER_HOOK",)},
        }

    def detect(self, pal_model, image, detailer_hook=None, **settings):
        impact = options(ImpactSettings, settings)
        detector = PALImpactDetector(pal_model, settings["mode"])
        return (detector.detect(image, settings["threshold"], impact.dilation, impact.crop_factor, impact.drop_size,
                                detailer_hook),)


class PALDetectorProvider:
    """A PAL4VST model as Impact Pack's BBOX_DETECTOR and SEGM_DETECTOR: FaceDetailer, "Simple
    Detector (SEGS)", "SEGM Detector (SEGS)" and the rest use PAL to find what to repair."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("bbox_detector", "BBOX_DETECTOR", "for FaceDetailer's bbox_detector and BBOX Detector (SEGS)"),
        Output("segm_detector", "SEGM_DETECTOR", "for SEGM Detector (SEGS) and the combined SEGM detector"),
    )
    SEARCH_ALIASES = ["artifact detector", "bbox detector", "segm detector", "facedetailer", "impact"]
    FUNCTION = "provide"
    DESCRIPTION = ("PAL4VST as an Impact Pack detector: connect to FaceDetailer's bbox_detector or a SEGM/BBOX "
                   "Detector node. Their threshold, dilation and crop_factor keep Impact's meanings.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"pal_model": ("PAL_MODEL",), "mode": widget(DetectOptions, "mode")}}

    def provide(self, pal_model, mode):
        check_requirements()
        detector = PALImpactDetector(pal_model, mode)
        return (detector, detector)
