"""Teach PAL your generator, in ComfyUI: PAL Edit Mask (PAL's mask, ready to correct in the mask
editor), PAL Load Mask (a mask file drawn elsewhere), PAL Save Example (into an example set) and
PAL Fine-Tune (a new model; every example judged by a model that never learned from it). The
work is the core's (:mod:`pal4vst.learn`); these nodes only move pictures and files.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from pal4vst.deps import check as check_requirements
from pal4vst.settings import ExampleOptions, TeachOptions

from . import host
from .inputs import Output, options, outputs, widgets
from .model_node import CATEGORY, PALModel
from .tensors import image_batch_to_numpy, mask_batch_to_numpy


def _masks_for(images: list[np.ndarray], mask: torch.Tensor) -> list[np.ndarray]:
    """One boolean mask per image. An all-empty mask of any size means "nothing is broken" (Load
    Image gives a 64x64 empty mask for an image without transparency)."""
    masks = mask_batch_to_numpy(mask, len(images))
    out = []
    for img, m in zip(images, masks):
        if not m.any():
            out.append(np.zeros(img.shape[:2], bool))
        elif m.shape != img.shape[:2]:
            raise ValueError(f"the mask is {m.shape[1]}x{m.shape[0]} but the image is {img.shape[1]}x{img.shape[0]}: "
                             "connect the mask that belongs to this image")
        else:
            out.append(m > 0.5)
    return out


class PALEditMask:
    """PAL's mask as the transparency of the image, saved where Load Image and its mask editor find
    it: open it there, paint what PAL missed, erase what it marked wrongly, save."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("filename", "STRING", "the file written in ComfyUI's input folder (one per image)", is_list=True),
    )
    OUTPUT_NODE = True
    FUNCTION = "write"
    SEARCH_ALIASES = ["correct mask", "mask editor", "teach", "label", "annotate artifacts", "fix mask"]
    DESCRIPTION = ("Writes each image with PAL's mask as its transparency into ComfyUI's input folder. Pick the file "
                   "in a Load Image node and open it in the mask editor: PAL's mask is already painted there; add "
                   "what it missed, erase what it marked wrongly, save, then PAL Save Example.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",), "mask": ("MASK",), **widgets(ExampleOptions, "edit_prefix")}}

    def write(self, image: torch.Tensor, mask: torch.Tensor, **settings):
        check_requirements()
        from PIL import Image

        from pal4vst.files import atomic_write
        from pal4vst.images import array_to_rgb_uint8
        from pal4vst.learn.examples import check_name, next_number

        prefix = check_name(options(ExampleOptions, settings).edit_prefix, "file")
        folder = host.input_directory()
        folder.mkdir(parents=True, exist_ok=True)
        images = image_batch_to_numpy(image)
        names = []
        n = next_number(folder, prefix)
        for img, m in zip(images, _masks_for(images, mask)):
            alpha = np.where(m, 0, 255).astype(np.uint8)  # Load Image: MASK = 1 - alpha
            rgba = np.dstack([array_to_rgb_uint8(img), alpha])
            name = f"{prefix}_{n:05d}.png"
            atomic_write(folder / name, lambda tmp, a=rgba: Image.fromarray(a, "RGBA").save(tmp, format="PNG"))
            names.append(name)
            n += 1
        text = (f"wrote {', '.join(names)} to the input folder: pick it in a Load Image, right-click it, Open in "
                "MaskEditor (PAL's mask is painted), correct it, save, then PAL Save Example")
        return {"ui": {"images": [{"filename": f, "subfolder": "", "type": "input"} for f in names], "text": [text]},
                "result": (names,)}


class PALLoadMask:
    """A mask file read as people draw them (:mod:`pal4vst.mask_files`), for PAL Save Example."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("mask", "MASK", "1 where the file marks something broken"),
        Output("note", "STRING", "how the file was read, when that needs saying (a JPEG mask), else empty"),
    )
    OUTPUT_NODE = True
    FUNCTION = "load"
    SEARCH_ALIASES = ["load mask", "mask file", "label file", "teach", "artifact mask"]
    DESCRIPTION = ("Loads a mask drawn elsewhere: white (bright) = broken on black, palette images by their colours, "
                   "strokes only in the alpha channel, 16-bit and RGB masks, 0/1 masks, JPEG masks at half-way (with "
                   "a note). A file that is no mask (a photo) is an error naming it, never an empty mask. Connect it "
                   "to PAL Save Example with its image.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": (host.input_files(), {"image_upload": True,
                                                            "tooltip": "the mask file, in ComfyUI's input folder"})}}

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        path = host.input_path(image)
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        return True if host.input_path(image).is_file() else f"no mask file {image!r} in the input folder"

    def load(self, image: str):
        check_requirements()
        from pal4vst.mask_files import read_mask_file

        read = read_mask_file(host.input_path(image))
        text = f"{image}: {read.marked.mean():.1%} marked" + (f"\nnote: {read.note}" if read.note else "")
        return {"ui": {"text": [text]}, "result": (torch.from_numpy(read.marked.astype(np.float32))[None], read.note)}


class PALSaveExample:
    """Adds images with their (corrected) masks to an example set, to teach PAL your generator."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("examples", "INT", "how many examples the set holds now"),
    )
    OUTPUT_NODE = True
    FUNCTION = "save"
    SEARCH_ALIASES = ["teach", "example set", "dataset", "label", "save mask", "training data", "fine-tune data"]
    DESCRIPTION = ("Saves each image and its mask (white = broken; an empty mask says nothing is broken; a mask file "
                   "drawn elsewhere comes through PAL Load Mask) into models/pal4vst/examples/<set>, never "
                   "overwriting an example. About ten, with artifacts and "
                   "without, are enough for PAL Fine-Tune.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",), "mask": ("MASK",), **widgets(ExampleOptions, "set_name", "name")}}

    def save(self, image: torch.Tensor, mask: torch.Tensor, **settings):
        check_requirements()
        from pal4vst.images import array_to_rgb_uint8
        from pal4vst.learn.examples import examples_root, save_example, set_info

        opts = options(ExampleOptions, settings)
        root = examples_root(host.models_directory())
        images = image_batch_to_numpy(image)
        saved = [save_example(root, opts.set_name, array_to_rgb_uint8(img), m, opts.name).name
                 for img, m in zip(images, _masks_for(images, mask))]
        info = set_info(root / opts.set_name)
        text = f"saved {', '.join(saved)}\nset {info.describe()}"
        return {"ui": {"text": [text]}, "result": (info.count,)}


def _example_sets() -> list[str]:
    from pal4vst.learn.examples import examples_root, list_sets

    names = [s.name for s in list_sets(examples_root(host.models_directory())) if s.count]
    return names or ["(no example set yet: save some with PAL Save Example)"]


class PALFineTune:
    """Teaches a PAL model from an example set and judges the result on examples it never saw."""

    CATEGORY = CATEGORY
    RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(
        Output("pal_model", "PAL_MODEL", "the fine-tuned model when the verdict is better, else the base model (the "
                                         "report says which)"),
        Output("report", "STRING", "JSON: base and example set (with hashes), the folds, each example's IoU before "
                                   "and after, the gain with its interval, the verdict"),
        Output("iou_before", "FLOAT", "artifact IoU of the base model over every example (pooled)"),
        Output("iou_after", "FLOAT", "artifact IoU over every example, each judged by a model that never learned "
                                     "from it"),
    )
    OUTPUT_NODE = True
    FUNCTION = "finetune"
    SEARCH_ALIASES = ["teach", "train", "fine-tune", "finetune", "adapt", "lora", "custom detector"]
    DESCRIPTION = ("Fine-tunes the PAL model on an example set (PAL Save Example). Every example is judged by a model "
                   "that never learned from it (a few folds, each learning from the others), with an interval: the "
                   "verdict is better, worse or not shown better, and only a better model is passed on. The model "
                   "written then learns from all examples (so the run costs one training per fold plus one). Writes "
                   "models/pal4vst/<name>.safetensors (listed by PAL Load Model after a refresh) with its record; "
                   "unloads ComfyUI's models first. Cancel stops between steps and keeps the best model so far.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pal_model": ("PAL_MODEL",),
                "example_set": (_example_sets(), {"tooltip": "an example set in models/pal4vst/examples"}),
                **widgets(TeachOptions, "model_name", "recipe", "steps", "lr", "held_out", "seed"),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def IS_CHANGED(cls, example_set: str, **_) -> str:
        """The set's contents (names, sizes, times): adding an example teaches again."""
        from pal4vst.learn.examples import examples_root

        folder = examples_root(host.models_directory()) / example_set
        h = hashlib.sha256()
        for p in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def finetune(self, pal_model: PALModel, example_set: str, unique_id: str | None = None, **settings):
        check_requirements()
        from pal4vst.learn.examples import examples_root
        from pal4vst.learn.teach import teach
        from pal4vst.model.checkpoint import load_checkpoint

        opts = options(TeachOptions, settings)
        folder = examples_root(host.models_directory()) / example_set
        if not folder.is_dir():
            raise ValueError(f"there is no example set {example_set!r} in {folder.parent}: save examples with PAL Save "
                             "Example first, then refresh the page (R) to list the set here")
        base = pal_model.loaded.source or pal_model.name
        pal_model.offload()
        host.make_room()
        bar = host.Progress(opts.steps or 1)

        def on_step(step: int, total: int, loss: float, stage: str) -> None:
            bar.show(step, total)
            host.progress_text(unique_id, f"{stage}: step {step}/{total}, loss {loss:.4f}")

        device = str(host.compute_device(pal_model.device))
        try:
            res = teach(base, folder, host.models_directory() / f"{opts.model_name}.safetensors", opts, device=device,
                        on_step=on_step, should_stop=host.interrupted, base_name=pal_model.name)
        finally:
            host.free_cache()
        text = res.summary() + f"\nsaved {res.path.name}: PAL Load Model lists it after a refresh (R)"
        host.progress_text(unique_id, text)
        host.check_interrupted()  # Cancel: the best model so far is saved; the run ends here
        model = pal_model
        if res.better:
            model = PALModel(load_checkpoint(res.path), pal_model.device, pal_model.dtype, res.path.name)
        return {"ui": {"text": [text]},
                "result": (model, json.dumps(res.report), res.iou_before, res.iou_after)}
