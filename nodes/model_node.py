"""PAL Load Model: a release name or a file from ``models/pal4vst`` -> ``PAL_MODEL``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pal4vst.deps import check as check_requirements
from pal4vst.model.weights import RELEASES
from pal4vst.options import declaration
from pal4vst.settings import DetectOptions, ModelSource

from . import host
from .inputs import Output, outputs, widgets

CATEGORY = "image/PAL4VST"


@dataclass
class PALModel:
    """What flows along a PAL_MODEL link: the loaded network and where/how to run it."""

    loaded: Any  # pal4vst.model.checkpoint.LoadedModel
    device: str
    dtype: str
    name: str
    _detector: Any = field(default=None, repr=False, compare=False)

    def detector(self, threshold: float | None = None, mode: str | None = None):
        """The model's one :class:`~pal4vst.detect.Detector`, placed on ComfyUI's device (again,
        after :meth:`offload`), reading with ``threshold`` and ``mode``."""
        from pal4vst.detect import Detector

        if self._detector is None:
            self._detector = Detector(self.loaded, device=str(host.compute_device(self.device)), dtype=self.dtype)
        else:
            self._detector.place()
        return self._detector.reading(threshold=threshold, mode=mode)

    def offload(self) -> None:
        """Hand the GPU back to the diffusion model between runs."""
        self.loaded.module.to(host.offload_device())
        host.free_cache()


class PALLoadModel:
    """Loads a PAL4VST segmenter. Release names are downloaded into ``models/pal4vst`` on first use."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("pal_model", "PAL_MODEL", "the loaded artifact segmenter, for every other PAL node"),
    )
    SEARCH_ALIASES = ["pal4vst", "artifact detector", "load artifact model", "perceptual artifacts"]
    FUNCTION = "load"
    DESCRIPTION = ("Loads a PAL4VST artifact segmenter: a release (unified, stylegan2, portrait_shadow_removal; "
                   "downloaded on first use) or a .pth/.pt/.safetensors file from models/pal4vst.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        files = [f for f in host.model_files() if f.rsplit(".", 1)[0] not in RELEASES]
        source = declaration(ModelSource, "model")
        return {
            "required": {
                "model": (list(RELEASES) + files, {"default": source.default, "tooltip": source.spec.help}),
                **widgets(DetectOptions, "device", "dtype"),
            }
        }

    def load(self, model: str, device: str, dtype: str):
        check_requirements()
        from pal4vst.model.checkpoint import load_checkpoint
        from pal4vst.model.weights import resolve

        host.register_model_folder()
        if model in RELEASES:
            path = resolve(model, download=True)
        else:
            path = host.model_path(model)
            if path is None:
                raise FileNotFoundError(f"PAL4VST model file {model!r} is not in models/pal4vst any more")
        loaded = load_checkpoint(path)
        loaded.module.to(host.offload_device())
        return (PALModel(loaded, device, dtype, model),)
