"""The ComfyUI services the nodes use (progress bars, interruption, the model folder, device
management), with plain fallbacks so the nodes also run, and are tested, outside ComfyUI."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger("pal4vst")
FOLDER = "pal4vst"
EXTENSIONS = {".safetensors", ".pth", ".pt"}

try:  # inside ComfyUI
    import comfy.model_management as mm
    import comfy.utils as cu
    import folder_paths

    IN_COMFY = True
except ImportError:  # plain Python (tests, scripts)
    mm = cu = folder_paths = None
    IN_COMFY = False


def register_model_folder() -> None:
    """Register ``models/pal4vst`` with folder_paths (so extra_model_paths.yaml works) and with the core."""
    from pal4vst.model.weights import add_model_dir

    if IN_COMFY:
        if FOLDER not in folder_paths.folder_names_and_paths:
            folder_paths.folder_names_and_paths[FOLDER] = ([os.path.join(folder_paths.models_dir, FOLDER)], EXTENSIONS)
        for d in folder_paths.get_folder_paths(FOLDER):
            add_model_dir(d)


def model_files() -> list[str]:
    """Model files in ``models/pal4vst`` (all configured paths)."""
    if IN_COMFY:
        return sorted(folder_paths.get_filename_list(FOLDER))
    from pal4vst.model.weights import list_local_models

    return sorted(p.name for p in list_local_models())


def model_path(name: str) -> Path | None:
    if IN_COMFY:
        p = folder_paths.get_full_path(FOLDER, name)
        return Path(p) if p else None
    from pal4vst.model.weights import find_local

    return find_local(name)


def compute_device(choice: str) -> torch.device:
    if choice != "auto":
        return torch.device(choice)
    if IN_COMFY:
        return mm.get_torch_device()
    from pal4vst.device import pick_device

    return pick_device("auto")


def offload_device() -> torch.device:
    return mm.unet_offload_device() if IN_COMFY else torch.device("cpu")


def free_cache() -> None:
    if IN_COMFY:
        mm.soft_empty_cache()


def check_interrupted() -> None:
    """Raise ComfyUI's interruption exception when the user pressed Cancel."""
    if IN_COMFY:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """comfy.utils.ProgressBar, or nothing."""

    def __init__(self, total: int) -> None:
        self.bar = cu.ProgressBar(total) if IN_COMFY and total > 0 else None

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)
