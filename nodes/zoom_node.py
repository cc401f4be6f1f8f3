"""PAL Zoom Crop and PAL Composite: the paper's zoom-in repair around any inpainting graph."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pal4vst.deps import check as check_requirements

from . import comfy
from .model_node import CATEGORY
from .tensors import image_batch_to_numpy, mask_batch_to_numpy, to_image_batch, to_mask_batch


@dataclass
class PALCrops:
    """What flows along a PAL_CROPS link: the crop records and how to paste them back.

    When no image of the batch has artifacts, one placeholder crop (``placeholder=True``, empty
    mask) keeps the sampler downstream fed; the composite then returns the images unchanged.
    """

    records: list = field(default_factory=list)  # pal4vst.crops.CropRecord
    work_size: int = 512
    feather: int = 4
    colour_match: bool = False
    placeholder: bool = False


class PALZoomCrop:
    """Square crops 1.5x each artifact region (the paper's zoom-in), resized for the inpainter."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", "PAL_CROPS")
    RETURN_NAMES = ("crops", "crop_masks", "pal_crops")
    OUTPUT_TOOLTIPS = ("all regions of all images as one batch, work_size x work_size",
                       "the region mask of each crop", "crop records for PAL Composite")
    FUNCTION = "crop"
    DESCRIPTION = ("Splits the mask into regions and crops a square around each (context x its size), zoomed to the "
                   "inpainter's working size. Inpaint the crops, then paste them back with PAL Composite.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": ("IMAGE",),
                "mask": ("MASK",),
                "context": ("FLOAT", {"default": 1.5, "min": 1.0, "max": 4.0, "step": 0.05,
                                      "tooltip": "crop side / region's longest side (the paper uses 1.5)"}),
                "work_size": ("INT", {"default": 512, "min": 64, "max": 2048, "step": 8,
                                      "tooltip": "inpainter's working resolution: 512 for SD1.5, 1024 for SDXL"}),
                "min_size": ("INT", {"default": 64, "min": 8, "max": 4096, "step": 8,
                                     "tooltip": "smallest crop side in image pixels"}),
                "max_regions": ("INT", {"default": 0, "min": 0, "max": 64,
                                        "tooltip": "repair at most this many regions, largest first (0 = all)"}),
                "grow": ("INT", {"default": 8, "min": -256, "max": 256, "tooltip": "grow the mask (pixels)"}),
                "min_area": ("INT", {"default": 16, "min": 0, "max": 1_000_000,
                                     "tooltip": "ignore regions smaller than this (pixels)"}),
                "feather": ("INT", {"default": 4, "min": 0, "max": 128,
                                    "tooltip": "soften the paste inside the mask (pixels); nothing outside changes"}),
            },
            "optional": {
                "colour_match": ("BOOLEAN", {"default": False, "tooltip": "cancel a colour shift of the patch"}),
                "merge": ("BOOLEAN", {"default": True, "tooltip": "merge regions whose crops overlap"}),
            },
        }

    def crop(self, image: torch.Tensor, mask: torch.Tensor, context: float, work_size: int, min_size: int,
             max_regions: int, grow: int, min_area: int, feather: int, colour_match: bool = False, merge: bool = True):
        check_requirements()
        from pal4vst.zoom.crops import CropOptions, zoom_crops
        from pal4vst.zoom.regions import RegionOptions

        images = image_batch_to_numpy(image)
        masks = mask_batch_to_numpy(mask, len(images))
        ropts = RegionOptions(grow=grow, min_area=min_area, max_regions=max_regions, merge=merge,
                              context=context, min_size=min_size)
        progress = comfy.Progress(len(images))
        records, crops, cmasks = [], [], []
        for i, (img, m) in enumerate(zip(images, masks)):
            comfy.check_interrupted()
            zc = zoom_crops([img], [m], ropts, CropOptions(work_size=work_size))
            for r in zc.records:
                r.image_index = i
            records += zc.records
            crops += list(zc.images)
            cmasks += list(zc.masks.astype(np.float32))
            progress.update(1)
        state = PALCrops(records, work_size, feather, colour_match, placeholder=not records)
        if not records:  # keep the graph running: one crop of the first image, nothing to repaint
            from pal4vst.zoom.crops import resize_to

            h, w = images[0].shape[:2]
            side = min(h, w)
            y0, x0 = (h - side) // 2, (w - side) // 2
            crops = [resize_to(images[0][y0:y0 + side, x0:x0 + side], work_size)]
            cmasks = [np.zeros((work_size, work_size), np.float32)]
        return (to_image_batch(crops).clamp(0, 1), to_mask_batch(cmasks), state)


class PALComposite:
    """Pastes inpainted crops back; pixels outside the repaired regions stay exactly as they were."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "composite"
    DESCRIPTION = "Pastes the inpainted crops from PAL Zoom Crop back into the original images."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",), "inpainted": ("IMAGE",), "pal_crops": ("PAL_CROPS",)}}

    def composite(self, image: torch.Tensor, inpainted: torch.Tensor, pal_crops: PALCrops):
        check_requirements()
        from pal4vst.zoom.composite import composite

        if pal_crops.placeholder:
            return (image,)
        images = image_batch_to_numpy(image)
        patches = image_batch_to_numpy(inpainted)
        if len(patches) != len(pal_crops.records):
            raise ValueError(f"PAL Composite got {len(patches)} inpainted crops for {len(pal_crops.records)} regions; "
                             "connect the crops from the same PAL Zoom Crop, inpainted as one batch")
        if len(images) <= max(r.image_index for r in pal_crops.records):
            raise ValueError("PAL Composite: the image batch is smaller than the one PAL Zoom Crop cropped")
        progress = comfy.Progress(len(images))
        out = []
        for i, img in enumerate(images):
            comfy.check_interrupted()
            out.append(composite(img, patches, pal_crops.records, image_index=i, feather=pal_crops.feather,
                                 colour_match=pal_crops.colour_match))
            progress.update(1)
        result = to_image_batch(out)
        return (result.to(image.dtype),)
