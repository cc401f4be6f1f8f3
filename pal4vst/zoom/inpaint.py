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


class Inpainter(Protocol):
    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


def _back_to(result: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An inpainter's uint8 result in the type of the crops it was given."""
    return result if like.dtype == np.uint8 else (result.astype(np.float32) / 255.0).astype(like.dtype)


@dataclass
class OpenCVInpainter:
    """``cv2.inpaint`` (Telea or Navier-Stokes): CPU, no download, always available. It only
    smooths, so it shows the pipeline rather than repairing content."""

    method: str = option("telea", "OpenCV's inpainting method", choices=("telea", "ns"), flags=("--cv-method",))
    radius: int = option(5, "OpenCV's inpainting radius (pixels)", min=1, max=64, flags=("--cv-radius",))

    def __post_init__(self) -> None:
        check(self)

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        out = np.empty_like(images)
        for i, (img, m) in enumerate(zip(images, masks)):
            out[i] = _back_to(cv2.inpaint(array_to_rgb_uint8(img), mask_to_uint8(m), self.radius, flag), images)
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

    def _load(self):
        try:
            import torch
            from diffusers import AutoPipelineForInpainting
        except ImportError as e:
            raise RuntimeError("the diffusers inpainter needs `pip install pal4vst[diffusers]` "
                               "(diffusers, transformers, accelerate)") from e
        from ..device import pick_device

        device = pick_device(self.device)
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        try:
            pipe = AutoPipelineForInpainting.from_pretrained(self.sd_model, torch_dtype=dtype,
                                                             local_files_only=not self.allow_download)
        except Exception as e:
            raise RuntimeError(
                f"could not load the inpainting model {self.sd_model!r} ({type(e).__name__}: {e}). It must be in the "
                "Hugging Face cache or a local folder; pass --allow-download to fetch it when online."
            ) from None
        self._pipe = pipe.to(device)

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        if self._pipe is None:
            self._load()
        s = self.sampling
        out = np.empty_like(images)
        size = images.shape[1]
        for i, (img, m) in enumerate(zip(images, masks)):
            g = torch.Generator(device="cpu").manual_seed(max(s.seed, 0) + i)
            res = self._pipe(prompt=s.prompt, negative_prompt=s.negative_prompt,
                             image=Image.fromarray(array_to_rgb_uint8(img)), mask_image=Image.fromarray(mask_to_uint8(m)),
                             strength=s.denoise,
                             num_inference_steps=s.steps, guidance_scale=s.cfg, generator=g,
                             height=size, width=size).images[0]
            out[i] = _back_to(np.asarray(res.convert("RGB").resize((size, size))), images)
        return out
