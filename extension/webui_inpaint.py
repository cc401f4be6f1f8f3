"""Inpaint zoom crops with the webui's own loaded model, through a copied img2img job.

Imports the webui (``modules.*``): used only inside AUTOMATIC1111 / Forge.
"""

from __future__ import annotations

import inspect
import logging
from copy import copy

import numpy as np
from PIL import Image

from pal4vst.render import mask_to_uint8
from pal4vst.settings import SamplingOptions

from .args import PALArgs

# AlwaysOn scripts that are safe to keep on the inner img2img (they change prompts or sampling,
# not the image's geometry). Everything else, PAL4VST itself included, is dropped.
SAFE_SCRIPTS = {"dynamic_prompting", "dynamic_thresholding", "wildcards", "wildcard_encoder", "lora_block_weight",
                "negpip", "soft_inpainting"}
INNER_FLAG = "_pal4vst_inner"
# The img2img fields without which a job would not be the fix; the others are left out on a webui
# whose processing class lacks them (``scheduler`` came with A1111 1.9; Forge Classic has none).
ESSENTIAL_FIELDS = frozenset({"init_images", "mask", "denoising_strength", "inpainting_fill", "prompt", "seed",
                              "batch_size", "steps", "cfg_scale", "width", "height"})
log = logging.getLogger("pal4vst")


def host_kwargs(cls, wanted: dict) -> dict:
    """The arguments of ``wanted`` that the webui's processing class ``cls`` takes, found from its
    signature rather than from version names; an essential one it lacks is an error naming it."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: pass everything, as before
        return dict(wanted)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    missing = sorted(ESSENTIAL_FIELDS & (set(wanted) - set(params)))
    if missing:
        raise RuntimeError(f"this webui's {cls.__name__} has no {', '.join(missing)}: the PAL4VST fix cannot run here")
    dropped = sorted(set(wanted) - set(params))
    if dropped:
        log.debug("PAL4VST: this webui's %s has no %s; left out", cls.__name__, ", ".join(dropped))
    return {k: v for k, v in wanted.items() if k in params}


def _filtered_scripts(p):
    from pathlib import Path

    if getattr(p, "scripts", None) is None:
        return None, None
    runner = copy(p.scripts)
    keep = [s for s in runner.alwayson_scripts if Path(getattr(s, "filename", "")).stem in SAFE_SCRIPTS]
    runner.alwayson_scripts = keep
    return runner, list(p.script_args)


class WebuiInpainter:
    """The core's candidate inpainter over ``StableDiffusionProcessingImg2Img``: the candidates
    of a crop are one img2img job of that batch size, whose seeds the webui numbers ``seed + j``;
    the core's seeds of a crop are consecutive (:func:`pal4vst.zoom.verify.candidate_seeds`), so
    the job's seed is the first of them (seeds that are not get a job each)."""

    def __init__(self, p, args: PALArgs) -> None:
        self.p = p
        self.args = args
        self.sampling = args.options(SamplingOptions)

    def _job(self, crop: Image.Image, mask: Image.Image, seed: int, count: int):
        from modules.processing import StableDiffusionProcessingImg2Img

        p, a, s = self.p, self.args, self.sampling
        wanted = dict(
            init_images=[crop], mask=mask, mask_blur=a.mask_blur, inpainting_fill=1, inpaint_full_res=False,
            denoising_strength=s.denoise, resize_mode=0, inpainting_mask_invert=0,
            sd_model=getattr(p, "sd_model", None), outpath_samples=getattr(p, "outpath_samples", None),
            outpath_grids=getattr(p, "outpath_grids", None),
            prompt=s.prompt or getattr(p, "prompt", ""), negative_prompt=s.negative_prompt or getattr(p, "negative_prompt", ""),
            styles=[], seed=seed, subseed=-1, subseed_strength=0, sampler_name=a.sampler or getattr(p, "sampler_name", None),
            scheduler=getattr(p, "scheduler", None), batch_size=count, n_iter=1, steps=s.steps, cfg_scale=s.cfg,
            width=a.work_size, height=a.work_size, do_not_save_samples=True, do_not_save_grid=True,
            override_settings={}, extra_generation_params={},
        )
        i2i = StableDiffusionProcessingImg2Img(**host_kwargs(StableDiffusionProcessingImg2Img, wanted))
        i2i.scripts, i2i.script_args = _filtered_scripts(p)
        setattr(i2i, INNER_FLAG, True)
        return i2i

    def _run(self, crop: np.ndarray, mask: np.ndarray, seed: int, count: int) -> list[Image.Image]:
        """``count`` repaints of one crop: one img2img job, seeds ``seed + j``."""
        from modules.processing import process_images

        job = self._job(Image.fromarray(crop), Image.fromarray(mask_to_uint8(mask)), seed, count)
        try:
            processed = process_images(job)
        finally:
            job.close()
        made = processed.images[getattr(processed, "index_of_first_image", 0):][:count]
        if len(made) < count:
            raise RuntimeError(f"the webui's img2img returned {len(made)} of {count} images (is an SD model loaded?)")
        return made

    def candidates(self, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        from modules import shared

        count = np.shape(seeds)[1]
        out = np.repeat(np.asarray(images)[None], count, axis=0)  # an interrupted job leaves crops unchanged
        for i, (crop, m) in enumerate(zip(images, masks)):
            if shared.state.interrupted or shared.state.skipped:
                break
            row = [int(x) for x in seeds[i]]
            if row == list(range(row[0], row[0] + count)):
                made = self._run(crop, m, row[0], count)
            else:
                made = [pic for seed in row for pic in self._run(crop, m, seed, 1)]
            for j, pic in enumerate(made):
                res = pic.convert("RGB")
                if res.size != (crop.shape[1], crop.shape[0]):
                    res = res.resize((crop.shape[1], crop.shape[0]), Image.LANCZOS)
                out[j, i] = np.asarray(res)
        return out

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        from pal4vst.zoom.verify import candidate_seeds  # imports OpenCV: not when the extension loads

        seed = max(self.sampling.seed, 0)
        return self.candidates(images, masks, candidate_seeds(seed, 0, len(images), 1))[0]


NEXT_CROP = "_pal4vst_next_crop"


def fix_seed(p, pp, args: PALArgs) -> tuple[int, int]:
    """``(seed, first_crop)`` of the fix of the image ``postprocess_image`` is handed: with the fix
    seed at -1, the image's own seed (``p.all_seeds`` at the image's index in the job, as
    ADetailer reads it) and crops counted from 0; with a fixed seed, that seed, crops counted on
    over the images of the job (so that the images of a batch still get seeds of their own)."""
    if args.seed >= 0:
        return args.seed, int(getattr(p, NEXT_CROP, 0))
    index = getattr(pp, "index", None)
    if index is None:  # webuis whose PostprocessImageArgs carries no index
        index = int(getattr(p, "iteration", 0)) * int(getattr(p, "batch_size", 1)) + int(getattr(p, "batch_index", 0))
    seeds = list(getattr(p, "all_seeds", None) or [])
    return int(seeds[index % len(seeds)] if seeds else getattr(p, "seed", 0)), 0


def standalone_inpainter(args: PALArgs) -> WebuiInpainter:
    """An inpainter for the tab and the API, outside any generation: the settings come from ``args``."""
    from types import SimpleNamespace

    from modules import shared

    p = SimpleNamespace(prompt=args.prompt, negative_prompt=args.negative_prompt,
                        sampler_name=args.sampler or None, scheduler=None, sd_model=getattr(shared, "sd_model", None),
                        outpath_samples=None, outpath_grids=None, scripts=None, script_args=[])
    return WebuiInpainter(p, args)
