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
    """ComfyUI's device for ``auto``; a named one checked by the core (a clear error when absent)."""
    from pal4vst.device import pick_device

    if choice == "auto" and IN_COMFY:
        return mm.get_torch_device()
    return pick_device(choice)


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
    """ComfyUI's progress bar on the running node (comfy.utils.ProgressBar), or nothing outside it."""

    def __init__(self, total: int) -> None:
        self.bar = cu.ProgressBar(max(total, 1)) if IN_COMFY else None

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        """Set the bar to ``value`` of ``total`` (which may grow), with a sampler preview image."""
        if self.bar is not None:
            self.bar.update_absolute(value, total, preview)

    def show(self, value: int, total: int) -> None:
        """Set the bar without stopping on Cancel (ComfyUI's progress hook raises when interrupted):
        for a job that stops by itself between two steps and keeps what it has."""
        if self.bar is None or interrupted():
            return
        try:
            self.bar.update_absolute(value, total)
        except mm.InterruptProcessingException:
            pass  # pressed between the check and the update: the job sees it before its next step


def previewer(model):
    """ComfyUI's latent previewer for ``model`` (as its samplers show), or None."""
    if not IN_COMFY:
        return None
    try:
        import latent_preview

        return latent_preview.get_previewer(model.load_device, model.model.latent_format)
    except Exception:  # noqa: BLE001 - previews are a nicety; never fail a run for them
        return None


def ksampler_inputs() -> dict:
    """ComfyUI's own KSampler inputs (seed with its control-after-generate, sampler and scheduler
    lists), so a node that samples shows them exactly as KSampler does; plain stand-ins outside
    ComfyUI."""
    if IN_COMFY:
        import nodes as comfy_nodes  # ComfyUI's nodes.py (this pack's folder is imported relatively)

        return comfy_nodes.KSampler.INPUT_TYPES()["required"]
    return {"seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}),
            "sampler_name": (["euler"],), "scheduler": (["normal"],)}


def input_directory() -> Path:
    """ComfyUI's input folder (where Load Image and its mask editor find images)."""
    if IN_COMFY:
        return Path(folder_paths.get_input_directory())
    return Path(os.environ.get("PAL4VST_INPUT_DIR", "input"))


def input_files() -> list[str]:
    """The files of ComfyUI's input folder, as Load Image lists them."""
    folder = input_directory()
    return sorted(f.name for f in folder.iterdir() if f.is_file()) if folder.is_dir() else []


def input_path(name: str) -> Path:
    """The file a Load Image-style input names (``name [input]`` annotations included)."""
    if IN_COMFY:
        return Path(folder_paths.get_annotated_filepath(name))
    return input_directory() / name


def models_directory() -> Path:
    """The first ``models/pal4vst`` folder: where new models and example sets go (PAL Load Model
    lists what is there)."""
    if IN_COMFY:
        return Path(folder_paths.get_folder_paths(FOLDER)[0])
    from pal4vst.model.weights import model_dirs

    return model_dirs()[0]


def interrupted() -> bool:
    """Whether the user pressed Cancel (without raising: a job can then stop cleanly)."""
    return bool(IN_COMFY and mm.processing_interrupted())


def make_room() -> None:
    """Unload the models ComfyUI holds on the GPU, so that a fine-tune fits beside nothing else."""
    if IN_COMFY:
        mm.unload_all_models()
        mm.soft_empty_cache()


def progress_text(node_id: str | None, text: str) -> None:
    """A line of text on the running node (ComfyUI versions that show progress text)."""
    if not (IN_COMFY and node_id):
        return
    try:
        from server import PromptServer

        PromptServer.instance.send_progress_text(text, node_id)
    except Exception:  # noqa: BLE001 - older ComfyUI: the progress bar alone
        pass
