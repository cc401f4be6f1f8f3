"""Inpaint zoom crops with the webui's own loaded model, through a copied img2img job.

Imports the webui (``modules.*``): used only inside AUTOMATIC1111 / Forge.
"""

from __future__ import annotations

from copy import copy

import numpy as np
from PIL import Image

from pal4vst.render import mask_to_uint8

from .args import PALArgs

# AlwaysOn scripts that are safe to keep on the inner img2img (they change prompts or sampling,
# not the image's geometry). Everything else, PAL4VST itself included, is dropped.
SAFE_SCRIPTS = {"dynamic_prompting", "dynamic_thresholding", "wildcards", "wildcard_encoder", "lora_block_weight",
                "negpip", "soft_inpainting"}
INNER_FLAG = "_pal4vst_inner"


def _filtered_scripts(p):
    from pathlib import Path

    if getattr(p, "scripts", None) is None:
        return None, None
    runner = copy(p.scripts)
    keep = [s for s in runner.alwayson_scripts if Path(getattr(s, "filename", "")).stem in SAFE_SCRIPTS]
    runner.alwayson_scripts = keep
    return runner, list(p.script_args)


class WebuiInpainter:
    """The core's ``Inpainter`` protocol over ``StableDiffusionProcessingImg2Img``."""

    def __init__(self, p, args: PALArgs) -> None:
        self.p = p
        self.args = args
        self.calls = 0

    def _job(self, crop: Image.Image, mask: Image.Image, index: int):
        from modules.processing import StableDiffusionProcessingImg2Img

        p, a = self.p, self.args
        seed = (int(getattr(p, "seed", -1)) + index) if a.seed < 0 else a.seed + index
        i2i = StableDiffusionProcessingImg2Img(
            init_images=[crop], mask=mask, mask_blur=a.mask_blur, inpainting_fill=1, inpaint_full_res=False,
            denoising_strength=a.denoise, resize_mode=0, inpainting_mask_invert=0,
            sd_model=getattr(p, "sd_model", None), outpath_samples=getattr(p, "outpath_samples", None),
            outpath_grids=getattr(p, "outpath_grids", None),
            prompt=a.prompt or getattr(p, "prompt", ""), negative_prompt=a.negative_prompt or getattr(p, "negative_prompt", ""),
            styles=[], seed=seed, subseed=-1, subseed_strength=0, sampler_name=a.sampler or getattr(p, "sampler_name", None),
            scheduler=getattr(p, "scheduler", None), batch_size=1, n_iter=1, steps=a.steps, cfg_scale=a.cfg,
            width=a.work_size, height=a.work_size, do_not_save_samples=True, do_not_save_grid=True,
            override_settings={}, extra_generation_params={},
        )
        i2i.scripts, i2i.script_args = _filtered_scripts(p)
        setattr(i2i, INNER_FLAG, True)
        return i2i

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        from modules import shared
        from modules.processing import process_images

        out = np.array(images, copy=True)
        for i, (crop, m) in enumerate(zip(images, masks)):
            if shared.state.interrupted or shared.state.skipped:
                break
            job = self._job(Image.fromarray(crop), Image.fromarray(mask_to_uint8(m)), self.calls)
            self.calls += 1
            try:
                processed = process_images(job)
            finally:
                job.close()
            if not processed.images:
                raise RuntimeError("the webui's img2img returned no image (is an SD model loaded?)")
            res = processed.images[0].convert("RGB")
            if res.size != (crop.shape[1], crop.shape[0]):
                res = res.resize((crop.shape[1], crop.shape[0]), Image.LANCZOS)
            out[i] = np.asarray(res)
        return out


def standalone_inpainter(args: PALArgs) -> WebuiInpainter:
    """An inpainter for the tab and the API, outside any generation: the settings come from ``args``."""
    from types import SimpleNamespace

    from modules import shared

    p = SimpleNamespace(prompt=args.prompt, negative_prompt=args.negative_prompt, seed=max(args.seed, 0),
                        sampler_name=args.sampler or None, scheduler=None, sd_model=getattr(shared, "sd_model", None),
                        outpath_samples=None, outpath_grids=None, scripts=None, script_args=[])
    return WebuiInpainter(p, args)
