"""PAL Zoom Crop and PAL Composite: the paper's zoom-in repair around any inpainting graph.

Zoom Crop takes any MASK (PAL Detect's, the mask editor's, SAM's, a CropAndStitch input), so
"inpaint several regions of one image separately and get one merged image back" is Zoom Crop ->
sampler -> Composite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pal4vst.deps import check as check_requirements
from pal4vst.settings import CropOptions, PasteOptions, RegionOptions

from . import host
from .inputs import options, Output, outputs, widget, widgets
from .model_node import CATEGORY
from .tensors import image_batch_to_numpy, mask_batch_to_numpy, to_image_batch, to_mask_batch


@dataclass
class PALCrops:
    """What flows along a PAL_CROPS link: the crop records and how to paste them back.

    When no image of the batch has artifacts, one placeholder crop (``placeholder=True``, empty
    mask) keeps the sampler downstream fed; the composite then returns the images unchanged.
    """

    records: list = field(default_factory=list)  # pal4vst.zoom.crops.CropRecord
    work_size: int = 512
    paste: PasteOptions = field(default_factory=PasteOptions)
    placeholder: bool = False


def placeholder_crop(image: np.ndarray, work_size: int) -> np.ndarray:
    """The centre square of ``image`` at the working size: something for a sampler to chew on."""
    from pal4vst.zoom.crops import resize_to

    h, w = image.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return resize_to(image[y0:y0 + side, x0:x0 + side], work_size)


class PALZoomCrop:
    """Square crops 1.5x each artifact region (the paper's zoom-in), resized for the inpainter."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("crops", "IMAGE", "all regions of all images as one batch, work_size x work_size"),
        Output("crop_masks", "MASK", "the region mask of each crop"),
        Output("pal_crops", "PAL_CROPS", "crop records for PAL Composite"),
    )
    SEARCH_ALIASES = ["zoom inpaint", "crop regions", "inpaint crop", "multi region inpaint", "fix artifacts"]
    FUNCTION = "crop"
    DESCRIPTION = ("Splits any mask into regions and crops a square around each (context x its size), zoomed to the "
                   "inpainter's working size. Inpaint the crops as one batch, then paste them back with PAL Composite.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": ("IMAGE",),
                "mask": ("MASK",),
                "context": widget(RegionOptions, "context"),
                "work_size": widget(CropOptions, "work_size"),
                **widgets(RegionOptions, "min_size", "max_regions", "grow", "min_area"),
                "feather": widget(PasteOptions, "feather"),
            },
            "optional": {
                "colour_match": widget(PasteOptions, "colour_match"),
                "merge": widget(RegionOptions, "merge"),
            },
        }

    def crop(self, image: torch.Tensor, mask: torch.Tensor, **settings):
        check_requirements()
        from pal4vst.zoom.crops import zoom_crops

        images = image_batch_to_numpy(image)
        masks = mask_batch_to_numpy(mask, len(images))
        ropts, copts = options(RegionOptions, settings), options(CropOptions, settings)
        progress = host.Progress(len(images))

        def next_image(_: int) -> None:
            host.check_interrupted()
            progress.update(1)

        zc = zoom_crops(images, masks, ropts, copts, on_image=next_image)
        state = PALCrops(zc.records, copts.work_size, options(PasteOptions, settings), placeholder=not len(zc))
        if state.placeholder:  # keep the graph running: one crop of the first image, nothing to repaint
            side = copts.work_size
            crops, cmasks = [placeholder_crop(images[0], side)], [np.zeros((side, side), np.float32)]
        else:
            crops, cmasks = list(zc.images), list(zc.masks.astype(np.float32))
        return (to_image_batch(crops).clamp(0, 1), to_mask_batch(cmasks), state)


class PALComposite:
    """Pastes inpainted crops back; pixels outside the repaired regions stay exactly as they were."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("image", "IMAGE", "the images with each crop's change pasted inside its region only"),
    )
    SEARCH_ALIASES = ["stitch", "paste back", "inpaint stitch", "uncrop"]
    FUNCTION = "composite"
    DESCRIPTION = "Pastes the inpainted crops from PAL Zoom Crop back into the original images."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",), "inpainted": ("IMAGE",), "pal_crops": ("PAL_CROPS",)}}

    def composite(self, image: torch.Tensor, inpainted: torch.Tensor, pal_crops: PALCrops):
        check_requirements()
        from pal4vst.zoom.composite import composite_batch

        if pal_crops.placeholder:
            return (image,)
        images = image_batch_to_numpy(image)
        patches = image_batch_to_numpy(inpainted)
        if len(patches) != len(pal_crops.records):
            raise ValueError(f"PAL Composite got {len(patches)} inpainted crops for {len(pal_crops.records)} regions; "
                             "connect the crops from the same PAL Zoom Crop, inpainted as one batch")
        if len(images) <= max(r.image_index for r in pal_crops.records):
            raise ValueError("PAL Composite: the image batch is smaller than the one PAL Zoom Crop cropped")
        progress = host.Progress(len(images))

        def done(i: int) -> None:
            host.check_interrupted()
            progress.update(1)

        out = composite_batch(images, patches, pal_crops.records, on_image=done, paste=pal_crops.paste)
        return (to_image_batch(out).to(image.dtype),)
