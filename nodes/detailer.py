"""PAL Detailer: detect -> zoom crops -> inpaint each crop with the given model -> composite ->
detect again, until the PAR is low enough. Graphs cannot loop, so the node samples itself, as
Impact Pack's detailers do; the loop is the core's :func:`pal4vst.zoom.refine.refine`, the
sampling ComfyUI's own (``nodes.InpaintModelConditioning`` / ``SetLatentNoiseMask``,
``comfy.sample``), so nothing outside the repaired mask changes, exactly as with PAL Composite.
"""

from __future__ import annotations

import numpy as np
import torch

from pal4vst.deps import check as check_requirements
from pal4vst.settings import CropOptions, DetectOptions, PasteOptions, RefineOptions, RegionOptions, SamplingOptions

from . import host
from .inputs import widget, widgets
from .model_node import CATEGORY
from .tensors import image_batch_to_numpy, to_image_batch, to_mask_batch


class StepProgress:
    """One progress bar over every sampling step of every crop of every round (the total grows as
    rounds find crops), with the sampler's previews."""

    def __init__(self, model) -> None:
        self.done = self.total = 0
        self.bar = host.progress_bar(1)
        self.previewer = host.previewer(model)

    def add(self, steps: int) -> None:
        self.total += steps

    def callback(self, step, x0, x, total_steps) -> None:
        host.check_interrupted()  # Cancel stops the detailer between two sampling steps
        self.done += 1
        preview = self.previewer.decode_latent_to_preview_image("JPEG", x0) if self.previewer else None
        if self.bar is not None:
            self.bar.update_absolute(self.done, max(self.total, self.done), preview)


class ComfyInpainter:
    """The core's ``Inpainter`` over a ComfyUI MODEL, VAE and conditioning: each crop is encoded
    with its mask (an inpainting model gets InpaintModelConditioning's concat inputs, any model a
    latent noise mask), sampled with ComfyUI's sampler, and decoded at the working size."""

    def __init__(self, model, vae, positive, negative, seed: int, steps: int, cfg: float, sampler_name: str,
                 scheduler: str, denoise: float) -> None:
        self.model, self.vae, self.positive, self.negative = model, vae, positive, negative
        self.seed, self.steps, self.cfg, self.denoise = seed, steps, cfg, denoise
        self.sampler_name, self.scheduler = sampler_name, scheduler
        self.inpaint_model = bool(getattr(getattr(model, "model", None), "concat_keys", ()))
        self.progress = StepProgress(model)
        self.crops_done = 0

    def _encode(self, pixels: torch.Tensor, mask: torch.Tensor):
        import nodes

        if self.inpaint_model:
            return nodes.InpaintModelConditioning().encode(self.positive, self.negative, pixels, self.vae, mask, True)
        latent = nodes.SetLatentNoiseMask().set_mask(nodes.VAEEncode().encode(self.vae, pixels)[0], mask)[0]
        return self.positive, self.negative, latent

    def _sample(self, positive, negative, latent: dict, seed: int) -> torch.Tensor:
        import comfy.sample

        image = latent["samples"]
        if hasattr(comfy.sample, "fix_empty_latent_channels"):
            image = comfy.sample.fix_empty_latent_channels(self.model, image)
        noise = comfy.sample.prepare_noise(image, seed, None)
        return comfy.sample.sample(self.model, noise, self.steps, self.cfg, self.sampler_name, self.scheduler,
                                   positive, negative, image, denoise=self.denoise, noise_mask=latent.get("noise_mask"),
                                   callback=self.progress.callback, disable_pbar=True, seed=seed)

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        self.progress.add(len(images) * self.steps)
        out = np.empty_like(images)
        for i, (crop, mask) in enumerate(zip(images, masks)):
            host.check_interrupted()
            pixels = torch.from_numpy(np.ascontiguousarray(crop, np.float32))[None]
            positive, negative, latent = self._encode(pixels, torch.from_numpy(mask.astype(np.float32))[None])
            samples = self._sample(positive, negative, latent, self.seed + self.crops_done)
            self.crops_done += 1
            decoded = self.vae.decode(samples)
            decoded = decoded.reshape(-1, *decoded.shape[-3:])[0, ..., :3]  # video VAEs add a frame axis
            out[i] = decoded.clamp(0, 1).cpu().numpy().astype(images.dtype)
        return out


def _preview(crops: list[np.ndarray]) -> torch.Tensor:
    """All crops as one IMAGE batch; a small black image when there were none (like Impact)."""
    return to_image_batch(crops) if crops else torch.zeros(1, 64, 64, 3)


class PALDetailer:
    """Repairs each image's artifacts until its PAR is low enough: zoom-in inpainting with the
    given model, repeated as the node decides."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", "FLOAT", "FLOAT", "IMAGE", "IMAGE")
    RETURN_NAMES = ("image", "mask", "par_before", "par_after", "crops_before", "crops_after")
    OUTPUT_IS_LIST = (False, False, True, True, False, False)
    OUTPUT_TOOLTIPS = ("the repaired images", "what was repaired (nothing outside it changed)",
                       "PAR of each input image", "PAR of each repaired image",
                       "every crop as sent to the sampler", "every crop as the sampler returned it")
    FUNCTION = "detail"
    DESCRIPTION = ("Detects artifacts (PAL4VST), inpaints each region zoomed in (1.5x its size at the working size) "
                   "with the given model, pastes it back and detects again, until PAR <= target_par or the passes are "
                   "used up. Inpainting models are conditioned as InpaintModelConditioning does; any other model "
                   "samples under a latent noise mask.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        sampler = host.ksampler_inputs()
        return {
            "required": {
                "image": ("IMAGE",),
                "pal_model": ("PAL_MODEL",),
                "model": ("MODEL",),
                "vae": ("VAE",),
                "positive": ("CONDITIONING",),
                "negative": ("CONDITIONING",),
                "seed": sampler["seed"],
                **widgets(SamplingOptions, "steps", "cfg"),
                "sampler_name": sampler["sampler_name"],
                "scheduler": sampler["scheduler"],
                "denoise": widget(SamplingOptions, "denoise"),
                "threshold": widget(DetectOptions, "threshold"),
                "context": widget(RegionOptions, "context"),
                "work_size": widget(CropOptions, "work_size"),
                **widgets(RegionOptions, "grow", "min_area", "max_regions"),
                "feather": widget(PasteOptions, "feather"),
                **widgets(RefineOptions, "iterations", "target_par"),
            }
        }

    def detail(self, image, pal_model, model, vae, positive, negative, seed, steps, cfg, sampler_name, scheduler,
               denoise, threshold, context, work_size, grow, min_area, max_regions, feather, iterations, target_par):
        check_requirements()
        from pal4vst.zoom.refine import refine

        options = (RegionOptions(grow=grow, min_area=min_area, max_regions=max_regions, context=context),
                   CropOptions(work_size=work_size), PasteOptions(feather=feather),
                   RefineOptions(iterations=iterations, target_par=target_par))
        inpainter = ComfyInpainter(model, vae, positive, negative, seed, steps, cfg, sampler_name, scheduler, denoise)
        detector = pal_model.detector(threshold=threshold)
        images, masks, before, after, sent, painted = [], [], [], [], [], []
        try:
            for img in image_batch_to_numpy(image):
                host.check_interrupted()
                res = refine(img, detector, inpainter, *options)
                images.append(res.image)
                masks.append(res.repaired.astype(np.float32))
                before.append(res.par_before)
                after.append(res.par_after)
                for zc, done in zip(res.crops, res.painted):
                    sent.extend(zc.images)
                    painted.extend(done)
        finally:
            pal_model.offload()
        summary = "\n".join(f"#{i}: PAR {b:.4f} -> {a:.4f}" for i, (b, a) in enumerate(zip(before, after)))
        return {
            "ui": {"par": after, "text": [summary]},
            "result": (to_image_batch(images).to(image.dtype), to_mask_batch(masks), before, after, _preview(sent),
                       _preview(painted)),
        }
