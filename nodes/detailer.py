"""PAL Detailer: detect -> zoom crops -> inpaint each crop with the given model -> composite ->
detect again, until the PAR is low enough. Graphs cannot loop, so the node samples itself, as
Impact Pack's detailers do; the loop is the core's :func:`pal4vst.zoom.refine.refine`, the
sampling ComfyUI's own (``nodes.InpaintModelConditioning`` / ``SetLatentNoiseMask``,
``comfy.sample``), so nothing outside the repaired mask changes, exactly as with PAL Composite.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from pal4vst.deps import check as check_requirements
from pal4vst.settings import (CropOptions, DetectOptions, PasteOptions, RefineOptions, RegionOptions, RepairOptions,
                              SamplingOptions)

from . import host
from .inputs import options, Output, outputs, widget, widgets
from .model_node import CATEGORY
from .tensors import image_batch_to_numpy, to_image_batch, to_mask_batch


class StepProgress:
    """One progress bar over every sampling step of every crop of every round (the total grows as
    rounds find crops), with the sampler's previews."""

    def __init__(self, model) -> None:
        self.done = self.total = 0
        self.bar = host.Progress(1)
        self.previewer = host.previewer(model)

    def add(self, steps: int) -> None:
        self.total += steps

    def callback(self, step, x0, x, total_steps) -> None:
        host.check_interrupted()  # Cancel stops the detailer between two sampling steps
        self.done += 1
        preview = self.previewer.decode_latent_to_preview_image("JPEG", x0) if self.previewer else None
        self.bar.update_absolute(self.done, max(self.total, self.done), preview)


class ComfyInpainter:
    """The core's candidate inpainter over a ComfyUI MODEL, VAE and conditioning: each crop is
    encoded with its mask (an inpainting model gets InpaintModelConditioning's concat inputs, any
    model a latent noise mask), the candidates asked of it are sampled in one call as a batch of
    latents (each with the noise of the seed the core hands it), and decoded at the working size."""

    def __init__(self, model, vae, positive, negative, sampling: SamplingOptions, sampler_name: str,
                 scheduler: str) -> None:
        self.model, self.vae, self.positive, self.negative = model, vae, positive, negative
        self.sampling, self.sampler_name, self.scheduler = sampling, sampler_name, scheduler
        self.inpaint_model = bool(getattr(getattr(model, "model", None), "concat_keys", ()))
        self.progress = StepProgress(model)

    def _encode(self, pixels: torch.Tensor, mask: torch.Tensor):
        import nodes

        if self.inpaint_model:
            return nodes.InpaintModelConditioning().encode(self.positive, self.negative, pixels, self.vae, mask, True)
        latent = nodes.SetLatentNoiseMask().set_mask(nodes.VAEEncode().encode(self.vae, pixels)[0], mask)[0]
        return self.positive, self.negative, latent

    def _sample(self, positive, negative, latent: dict, seeds: list[int]) -> torch.Tensor:
        import comfy.sample

        image = latent["samples"]
        if hasattr(comfy.sample, "fix_empty_latent_channels"):
            image = comfy.sample.fix_empty_latent_channels(self.model, image)
        noise = torch.cat([comfy.sample.prepare_noise(image, seed, None) for seed in seeds])
        batch = image.repeat(len(seeds), *([1] * (image.ndim - 1)))
        s = self.sampling
        return comfy.sample.sample(self.model, noise, s.steps, s.cfg, self.sampler_name, self.scheduler,
                                   positive, negative, batch, denoise=s.denoise, noise_mask=latent.get("noise_mask"),
                                   callback=self.progress.callback, disable_pbar=True, seed=seeds[0])

    def candidates(self, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        count = np.shape(seeds)[1]
        self.progress.add(len(images) * self.sampling.steps)
        out = np.empty((count, *images.shape), images.dtype)
        for i, (crop, mask) in enumerate(zip(images, masks)):
            host.check_interrupted()
            pixels = torch.from_numpy(np.ascontiguousarray(crop, np.float32))[None]
            positive, negative, latent = self._encode(pixels, torch.from_numpy(mask.astype(np.float32))[None])
            decoded = self.vae.decode(self._sample(positive, negative, latent, [int(x) for x in seeds[i]]))
            decoded = decoded.reshape(-1, *decoded.shape[-3:])[..., :3]  # video VAEs add a frame axis
            out[:, i] = decoded[:count].clamp(0, 1).cpu().numpy().astype(images.dtype)
        return out

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        from pal4vst.zoom.verify import candidate_seeds  # imports OpenCV: not at node registration

        seed = self.sampling.seed
        return self.candidates(images, masks, candidate_seeds(seed, 0, len(images), 1))[0]


def _preview(crops: list[np.ndarray]) -> torch.Tensor:
    """All crops as one IMAGE batch; a small black image when there were none (like Impact)."""
    return to_image_batch(crops) if crops else torch.zeros(1, 64, 64, 3)


class PALDetailer:
    """Repairs each image's artifacts until its PAR is low enough: zoom-in inpainting with the
    given model, each region's repaint judged by the detector (best of ``candidates``, kept only
    where it is less broken than before), repeated as the node decides."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("image", "IMAGE", "the repaired images"),
        Output("mask", "MASK", "the regions whose repaint was kept (nothing outside it changed)"),
        Output("par_before", "FLOAT", "PAR of each input image", is_list=True),
        Output("par_after", "FLOAT", "PAR of each repaired image", is_list=True),
        Output("crops_before", "IMAGE", "every crop as sent to the sampler"),
        Output("crops_after", "IMAGE", "each crop's chosen candidate as the sampler returned it"),
        Output("report", "STRING", "JSON: per image and region, its score before, each candidate's score and seed, "
                                   "the candidate chosen and whether it was accepted or reverted"),
    )
    FUNCTION = "detail"
    DESCRIPTION = ("Detects artifacts (PAL4VST), inpaints each region zoomed in (1.5x its size at the working size) "
                   "with the given model, `candidates` times with different seeds, and lets the detector judge: each "
                   "region keeps its least broken candidate only if it is less broken than before, else its own "
                   "pixels. Pastes back and detects again, until PAR <= target_par or the passes are used up. "
                   "Inpainting models are conditioned as InpaintModelConditioning does; any other model samples "
                   "under a latent noise mask.")
    SEARCH_ALIASES = ["fix artifacts", "fix hands", "fix faces", "detailer", "auto inpaint", "verified repair",
                      "best of n", "quality"]

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
            },
            # optional, so workflows saved before verification existed open and run unchanged
            "optional": widgets(RefineOptions, "candidates", "verify", "min_gain"),
        }

    def detail(self, image, pal_model, model, vae, positive, negative, seed, sampler_name, scheduler, **settings):
        check_requirements()
        from pal4vst.zoom.refine import refine

        settings = {name: value for name, value in settings.items() if value is not None}
        sampling = options(SamplingOptions, settings, seed=seed)
        repair = options(RepairOptions, settings)
        inpainter = ComfyInpainter(model, vae, positive, negative, sampling, sampler_name, scheduler)
        detector = pal_model.detector(threshold=settings["threshold"])
        images, masks, before, after, sent, painted, results = [], [], [], [], [], [], []
        crop = 0
        try:
            for img in image_batch_to_numpy(image):
                host.check_interrupted()
                res = refine(img, detector, inpainter, repair, seed=seed, first_crop=crop)
                crop = res.next_crop
                images.append(res.image)
                masks.append(res.repaired.astype(np.float32))
                before.append(res.par_before)
                after.append(res.par_after)
                results.append(res)
                for zc, done in zip(res.crops, res.painted):
                    sent.extend(zc.images)
                    painted.extend(done)
        finally:
            pal_model.offload()
        report = [{"image": i, "par_before": round(res.par_before, 6), "par_after": round(res.par_after, 6),
                   "kept": res.kept, "judged": res.judged, "report": [r.to_dict() for r in res.report]}
                  for i, res in enumerate(results)]
        return {
            "ui": {"par": after, "text": ["\n".join(_summary(i, res) for i, res in enumerate(results))]},
            "result": (to_image_batch(images).to(image.dtype), to_mask_batch(masks), before, after, _preview(sent),
                       _preview(painted), json.dumps(report)),
        }


def _summary(index: int, res) -> str:
    """``#0: PAR 0.1200 -> 0.0300, 2/3 regions kept`` and a line per region (the core's summary)."""
    from pal4vst.zoom.verify import summary

    head = f"#{index}: PAR {res.par_before:.4f} -> {res.par_after:.4f}, {res.kept} of {res.judged} regions kept"
    return "\n".join([head, summary(res.report, indent="  ")]) if res.report else head
