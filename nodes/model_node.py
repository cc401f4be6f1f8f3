"""PAL Load Model: a release name or a file from ``models/pal4vst`` -> ``PAL_MODEL``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from pal4vst.deps import check as check_requirements

from . import comfy

CATEGORY = "image/PAL4VST"
RELEASES = ("unified", "stylegan2", "portrait_shadow_removal")


@dataclass
class PALModel:
    """What flows along a PAL_MODEL link: the loaded network and where/how to run it."""

    loaded: Any  # pal4vst.model.checkpoint.LoadedModel
    device: str
    dtype: str
    name: str

    def detector(self, threshold: float = 0.5, mode: str = "whole"):
        from pal4vst.detect import Detector

        return Detector(self.loaded, device=comfy.compute_device(self.device), dtype=self.dtype,
                        threshold=threshold, mode=mode)

    def offload(self) -> None:
        """Hand the GPU back to the diffusion model between runs."""
        self.loaded.module.to(comfy.offload_device())
        comfy.free_cache()


class PALLoadModel:
    """Loads a PAL4VST segmenter. Release names are downloaded into ``models/pal4vst`` on first use."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("PAL_MODEL",)
    RETURN_NAMES = ("pal_model",)
    FUNCTION = "load"
    DESCRIPTION = ("Loads a PAL4VST artifact segmenter: a release (unified, stylegan2, portrait_shadow_removal; "
                   "downloaded on first use) or a .pth/.pt/.safetensors file from models/pal4vst.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        files = [f for f in comfy.model_files() if f.rsplit(".", 1)[0] not in RELEASES]
        return {
            "required": {
                "model": (list(RELEASES) + files, {"default": "unified",
                          "tooltip": "release name (downloaded when missing) or a file in models/pal4vst"}),
                "device": (["auto", "cpu", "cuda", "mps"], {"default": "auto"}),
                "dtype": (["auto", "fp32", "fp16", "bf16"], {"default": "auto",
                          "tooltip": "auto = bf16 where the hardware supports it, else fp32"}),
            }
        }

    def load(self, model: str, device: str, dtype: str):
        check_requirements()
        from pal4vst.model.checkpoint import load_checkpoint
        from pal4vst.model.weights import resolve

        comfy.register_model_folder()
        if model in RELEASES:
            path = resolve(model, download=True)
        else:
            path = comfy.model_path(model)
            if path is None:
                raise FileNotFoundError(f"PAL4VST model file {model!r} is not in models/pal4vst any more")
        loaded = load_checkpoint(path)
        loaded.module.to(comfy.offload_device())
        return (PALModel(loaded, device, dtype, model),)
