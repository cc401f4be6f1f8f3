"""Inpainting backends behind one small interface: ``inpainter(images, masks) -> images``.

``images`` is ``[N, S, S, 3]`` uint8, ``masks`` ``[N, S, S]`` bool (True = repaint); the result
has the shape of ``images``. Adapters (ComfyUI graphs, the webui's img2img) do their own
inpainting and use only the crop/composite half of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..render import mask_to_uint8


class Inpainter(Protocol):
    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


@dataclass
class OpenCVInpainter:
    """``cv2.inpaint`` (Telea or Navier-Stokes): CPU, no download, always available."""

    method: str = "telea"
    radius: int = 5

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        out = np.empty_like(images)
        for i, (img, m) in enumerate(zip(images, masks)):
            out[i] = cv2.inpaint(np.ascontiguousarray(img), mask_to_uint8(m), self.radius, flag)
        return out


@dataclass
class DiffusersInpainter:
    """A Stable Diffusion / SDXL inpainting pipeline from ``diffusers`` (extra ``[diffusers]``).

    ``model`` is a Hugging Face model id (from the local cache unless ``allow_download``) or a
    local folder.
    """

    model: str = "stable-diffusion-v1-5/stable-diffusion-inpainting"
    prompt: str = ""
    negative_prompt: str = "blurry, distorted, deformed, artifacts"
    strength: float = 0.75
    steps: int = 30
    guidance: float = 7.5
    seed: int = 0
    device: str = "auto"
    allow_download: bool = False

    def __post_init__(self) -> None:
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
            pipe = AutoPipelineForInpainting.from_pretrained(self.model, torch_dtype=dtype,
                                                             local_files_only=not self.allow_download)
        except Exception as e:
            raise RuntimeError(
                f"could not load the inpainting model {self.model!r} ({type(e).__name__}: {e}). It must be in the "
                "Hugging Face cache or a local folder; pass --allow-download to fetch it when online."
            ) from None
        self._pipe = pipe.to(device)
        self._device = device

    def __call__(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        import torch
        from PIL import Image

        if self._pipe is None:
            self._load()
        out = np.empty_like(images)
        size = images.shape[1]
        for i, (img, m) in enumerate(zip(images, masks)):
            g = torch.Generator(device="cpu").manual_seed(self.seed + i)
            res = self._pipe(prompt=self.prompt, negative_prompt=self.negative_prompt, image=Image.fromarray(img),
                             mask_image=Image.fromarray(mask_to_uint8(m)), strength=self.strength,
                             num_inference_steps=self.steps, guidance_scale=self.guidance, generator=g,
                             height=size, width=size).images[0]
            out[i] = np.asarray(res.convert("RGB").resize((size, size)))
        return out


def make_inpainter(name: str, **kwargs) -> Inpainter:
    """``opencv`` or ``diffusers`` with their options."""
    if name == "opencv":
        return OpenCVInpainter(**{k: v for k, v in kwargs.items() if k in ("method", "radius")})
    if name == "diffusers":
        fields = DiffusersInpainter.__dataclass_fields__
        return DiffusersInpainter(**{k: v for k, v in kwargs.items() if k in fields})
    raise ValueError(f"unknown inpainter {name!r}; use opencv or diffusers")
