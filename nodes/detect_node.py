"""PAL Detect and PAL Score."""

from __future__ import annotations

import torch

from pal4vst.deps import check as check_requirements
from pal4vst.settings import DetectOptions, MaskOptions

from . import host
from .inputs import options, Output, outputs, widget, widgets
from .model_node import CATEGORY
from .tensors import image_batch_to_numpy, to_image_batch, to_mask_batch


def _run(pal_model, images: torch.Tensor, **options):
    """Detections for an IMAGE batch, one image at a time (progress, interruption)."""
    detector = pal_model.detector(**options)
    progress = host.Progress(images.shape[0])
    results = []
    try:
        for img in images:
            host.check_interrupted()
            results.append(detector(img))
            progress.update(1)
    finally:
        pal_model.offload()
    return results


def _summary(pars: list[float]) -> str:
    return "\n".join(f"#{i}: PAR {p:.4f}" for i, p in enumerate(pars))


class PALDetect:
    """Artifact mask, probability map, overlay and PAR for each image of a batch."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("mask", "MASK", "binary artifact mask (after grow / minimum area)"),
        Output("probability", "MASK", "artifact probability 0..1"),
        Output("overlay", "IMAGE", "the image darkened with artifacts in magenta"),
        Output("par", "FLOAT", "PAR (artifact area / image area), per image", is_list=True),
    )
    SEARCH_ALIASES = ["artifact", "artifacts", "detect artifacts", "broken", "quality", "fix hands", "par", "mask"]
    FUNCTION = "detect"
    DESCRIPTION = "Finds the perceptual artifacts of generated images (PAL4VST) and measures PAR."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pal_model": ("PAL_MODEL",),
                "image": ("IMAGE",),
                "threshold": widget(DetectOptions, "threshold"),
                **widgets(MaskOptions, "grow", "min_area"),
                "mode": widget(DetectOptions, "mode"),
            }
        }

    def detect(self, pal_model, image: torch.Tensor, **settings):
        check_requirements()
        from pal4vst.images import array_to_rgb_uint8
        from pal4vst.render import overlay
        from pal4vst.masks import clean_mask

        results = _run(pal_model, image, threshold=settings["threshold"], mode=settings["mode"])
        cleanup = options(MaskOptions, settings)
        masks, overlays = [], []
        for img, det in zip(image_batch_to_numpy(image), results):
            mask = clean_mask(det.mask, cleanup)
            masks.append(mask)
            overlays.append(overlay(array_to_rgb_uint8(img), mask, det.prob))
        pars = [det.par for det in results]
        return {
            "ui": {"par": pars, "text": [_summary(pars)]},
            "result": (to_mask_batch(masks), to_mask_batch([d.prob for d in results]), to_image_batch(overlays), pars),
        }


class PALScore:
    """Ranks a batch by PAR: the best image, the batch sorted best-first, and their indices."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("par", "FLOAT", "PAR per input image, in input order", is_list=True),
        Output("best", "IMAGE", "the image with the lowest PAR"),
        Output("sorted", "IMAGE", "the batch sorted by PAR, best first"),
        Output("indices", "INT", "input index of each sorted image", is_list=True),
        Output("summary", "STRING", "a text table of the ranking"),
    )
    SEARCH_ALIASES = ["quality", "score", "best of n", "rank", "filter", "artifact score", "image quality"]
    FUNCTION = "score"
    DESCRIPTION = "Best-of-N: scores each image's Perceptual Artifacts Ratio and keeps the cleanest."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"pal_model": ("PAL_MODEL",), "images": ("IMAGE",),
                             "threshold": widget(DetectOptions, "threshold")}}

    def score(self, pal_model, images: torch.Tensor, **settings):
        check_requirements()
        from pal4vst.scoring.ranking import rank

        results = _run(pal_model, images, threshold=settings["threshold"])
        pars = [d.par for d in results]
        ranking = rank(pars)
        order = [r.index for r in ranking]
        summary = "\n".join(f"{r.rank}. image {r.index}: PAR {r.par:.4f}" for r in ranking)
        return {
            "ui": {"par": pars, "text": [summary]},
            "result": (pars, images[order[0]:order[0] + 1], images[order], order, summary),
        }
