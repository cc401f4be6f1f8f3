"""Inpainting backends behind one small interface: ``inpainter(images, masks) -> images``.

``images`` is ``[N, S, S, 3]``, uint8 or float 0..1 (the type of the image being
repaired), ``masks`` ``[N, S, S]`` bool (True = repaint); the result has the shape and type of
``images``. Adapters (ComfyUI graphs, the webui's img2img) do their own
inpainting and use only the crop/composite half of the pipeline; the webui's inpainter and
:class:`DiffusersInpainter` share :class:`SamplingOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..options import check, option
from ..settings import SamplingOptions
from ..images import array_to_rgb_uint8
from ..render import mask_to_uint8
from .verify import candidate_seeds


class InpainterUnavailable(RuntimeError):
    """An inpainter that cannot run here (a package or its model is missing); the message says
    how to get it."""


class Inpainter(Protocol):
    """``inpainter(crops, masks) -> crops``. An inpainter whose repaint is the same every time
    may say so with ``deterministic = True``: verification then asks it for one candidate per
    region, whatever ``candidates`` is (the others would be copies, judged for nothing)."""

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


def is_deterministic(inpainter: Inpainter) -> bool:
    """Whether ``inpainter`` makes the same repaint every time (see :class:`Inpainter`)."""
    return bool(getattr(inpainter, "deterministic", False))


class CandidateInpainter(Inpainter, Protocol):
    """An inpainter that makes several candidates per crop with the seeds it is handed:
    ``seeds[i, j]`` is the seed of candidate ``j`` of crop ``i`` (the repair computes them by the
    rule of :func:`pal4vst.zoom.verify.candidate_seeds`). Returns ``[j, N, S, S, 3]``."""

    def candidates(self, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray: ...


def paint_candidates(inpainter: Inpainter, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The candidates ``seeds`` (``[N, count]``) asks for, ``[count, N, S, S, 3]``: the inpainter's
    own ``candidates`` with those seeds when it has one, else ``count`` calls of it (unseeded)."""
    seeds = np.asarray(seeds, np.int64).reshape(len(images), -1)
    count = seeds.shape[1]
    if hasattr(inpainter, "candidates"):
        out = np.asarray(inpainter.candidates(images, masks, seeds))
    else:
        out = np.stack([inpainter(images, masks) for _ in range(count)])
    if out.shape != (count, *images.shape):
        raise ValueError(f"the inpainter returned candidates of shape {out.shape}, expected {(count, *images.shape)}")
    return out


def _as_type_of(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An inpainter's uint8 result in the type of the crops it was given."""
    return result if like.dtype == np.uint8 else (result.astype(np.float32) / 255.0).astype(like.dtype)


@dataclass
class OpenCVInpainter:
    """``cv2.inpaint`` (Telea or Navier-Stokes): CPU, no download, always available. It only
    smooths, so it shows the pipeline rather than repairing content."""

    method: str = option("telea", "OpenCV's inpainting method", choices=("telea", "ns"), flags=("--cv-method",))
    radius: int = option(5, "OpenCV's inpainting radius (pixels)", min=1, max=64, flags=("--cv-radius",))

    deterministic = True  # the same repaint every time: one candidate per region is enough

    def __post_init__(self) -> None:
        check(self)

    def candidates(self, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Every candidate is the same inpaint, computed once (the seeds change nothing)."""
        return np.broadcast_to(self(images, masks), (np.shape(seeds)[1], *images.shape))

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        out = np.empty_like(images)
        for i, (img, m) in enumerate(zip(images, masks)):
            out[i] = _as_type_of(cv2.inpaint(array_to_rgb_uint8(img), mask_to_uint8(m), self.radius, flag), images)
        return out


@dataclass
class DiffusersInpainter:
    """A Stable Diffusion / SDXL inpainting pipeline from ``diffusers`` (extra ``[diffusers]``)."""

    sd_model: str = option("stable-diffusion-v1-5/stable-diffusion-inpainting", "diffusers inpainting model: a Hugging "
                           "Face id (from the local cache unless downloads are allowed) or a local folder")
    allow_download: bool = option(False, "let diffusers download the inpainting model")
    sampling: SamplingOptions = dataclasses.field(default_factory=SamplingOptions)
    device: str = "auto"

    def __post_init__(self) -> None:
        check(self)
        self._pipe = None

    def load(self) -> DiffusersInpainter:
        """Load the pipeline now (else at the first crop): a missing package or model is then one
        :class:`InpainterUnavailable` before any image is worked on."""
        if self._pipe is not None:
            return self
        try:
            import torch
            from diffusers import AutoPipelineForInpainting
        except ImportError:
            raise InpainterUnavailable(
                'the diffusers inpainter needs diffusers, transformers and accelerate: pip install -e ".[diffusers]" '
                "in the clone (elsewhere: pip install diffusers transformers accelerate)") from None
        from ..device import pick_device

        device = pick_device(self.device)
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        try:
            pipe = AutoPipelineForInpainting.from_pretrained(self.sd_model, torch_dtype=dtype,
                                                             local_files_only=not self.allow_download)
        except Exception as e:
            raise InpainterUnavailable(
                f"could not load the inpainting model {self.sd_model!r} ({type(e).__name__}: {e}). It must be in the "
                "Hugging Face cache or a local folder; pass --allow-download to fetch it when online."
            ) from None
        self._pipe = pipe.to(device)
        return self

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        seed = max(self.sampling.seed, 0)
        return self.candidates(images, masks, candidate_seeds(seed, 0, len(images), 1))[0]

    def candidates(self, images: np.ndarray, masks: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The repaints ``seeds`` (``[N, count]``) asks for, in one pipeline call per crop (a
        batch of ``count``, one generator per seed)."""
        import torch
        from PIL import Image

        self.load()
        s = self.sampling
        count = np.shape(seeds)[1]
        out = np.empty((count, *images.shape), images.dtype)
        size = images.shape[1]
        for i, (img, m) in enumerate(zip(images, masks)):
            gens = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds[i]]
            res = self._pipe(prompt=s.prompt, negative_prompt=s.negative_prompt,
                             image=Image.fromarray(array_to_rgb_uint8(img)),
                             mask_image=Image.fromarray(mask_to_uint8(m)),
                             strength=s.denoise, num_inference_steps=s.steps, guidance_scale=s.cfg, generator=gens,
                             num_images_per_prompt=count, height=size, width=size).images
            for j, pic in enumerate(res):
                out[j, i] = _as_type_of(np.asarray(pic.convert("RGB").resize((size, size))), images)
        return out
