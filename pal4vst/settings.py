"""Everything a user can set, declared once: default, range, step, choices and help on each field.

The CLI's flags, ComfyUI's node inputs, the webui's controls, its API and its infotext are all
generated from these declarations (:mod:`pal4vst.options`), and each class checks its values when
built. This module imports neither torch nor OpenCV, so a host can build its controls before
either is available.
"""

from __future__ import annotations

from dataclasses import field

from .learn.recipes import MODEL_LR, TEACH, describe_teach
from .options import option, settings


# ------------------------------------------------------------------ model and detection


@settings
class ModelSource:
    """Which PAL4VST model to use, and whether a missing release may be downloaded."""

    model: str = option("unified", "a release (unified, stylegan2, portrait_shadow_removal; downloaded on first "
                        "use), a file in the model folders, a path, hf://owner/repo/file or a URL",
                        label="PAL4VST model")
    download: bool = option(True, "download a missing release from the authors' Google Drive")


@settings
class DetectOptions:
    """How detection runs; every adapter's detection controls come from these declarations."""

    device: str = option("auto", "where to run: auto (CUDA, then Apple MPS, then the CPU), cpu, cuda, cuda:N or mps",
                         choices=("auto", "cpu", "cuda", "mps"), open_choices=True)
    dtype: str = option("auto", "precision: auto = bf16 where the hardware supports it, else fp32",
                        choices=("auto", "fp32", "fp16", "bf16"))
    threshold: float = option(0.5, "artifact probability above which a pixel is marked; 0.5 is the model's argmax",
                              min=0.01, max=0.99, step=0.01)
    mode: str = option("whole", "whole: the release's 512x512 resize; tiled: overlapping windows at the image's own "
                       "scale, for large images with small artifacts", choices=("whole", "tiled"))
    batch: int = option(4, "images (or tiles) per forward pass", min=1, max=64)
    tile_overlap: int = option(128, "pixels neighbouring tiles share in tiled mode", min=0, max=256, step=8)


# ------------------------------------------------------------------ zoom-in repair


@settings
class RegionOptions:
    """How a mask becomes the regions to repair. Sizes are pixels of the original image; areas
    are measured after growing; with ``merge``, one inpaint covers neighbours whose crops overlap,
    as long as no region's crop grows beyond ``merge_limit`` times its own side."""

    grow: int = option(8, "grow (negative: shrink) the mask by this many pixels before repairing it",
                       min=-256, max=256, step=1, label="Grow mask (px)")
    grow_percent: float = option(0.0, "also grow by this percentage of the image's short side", min=0.0, max=50.0,
                                 step=0.5)
    fill_holes: bool = option(True, "fill holes enclosed by a region")
    min_area: int = option(16, "ignore regions smaller than this many pixels", min=0, max=1_000_000, step=1,
                           label="Minimum region area (px)")
    max_regions: int = option(0, "repair at most this many regions, largest first (0 = all)", min=0, max=64, step=1,
                              label="Max regions (0 = all)")
    merge: bool = option(True, "merge regions whose crops overlap, so one inpaint covers neighbours")
    merge_limit: float = option(2.0, "merge only while no region's crop grows beyond this many times the side it has "
                                "alone (its zoom at least 1 / this of its own)", min=1.0, max=8.0, step=0.25)
    context: float = option(1.5, "crop side / region's longest side (the paper uses 1.5)", min=1.0, max=4.0, step=0.05,
                            label="Context (crop / region)")
    min_size: int = option(64, "smallest crop side in image pixels", min=8, max=4096, step=8,
                           label="Smallest crop (px)")


@settings
class MaskOptions:
    """Clean-up of a detection mask handed on as a mask (PAL Detect's output): unlike the repair
    regions, nothing is grown or dropped unless asked, so the mask matches the PAR beside it."""

    grow: int = option(0, "grow (negative: shrink) the output mask by this many pixels", min=-256, max=256, step=1)
    min_area: int = option(0, "drop marked areas smaller than this many pixels from the output mask", min=0,
                           max=1_000_000, step=1)


@settings
class CropOptions:
    """Working size, padding and resampling of the zoom crops."""

    work_size: int = option(512, "the inpainter's working resolution: 512 for SD1.5, 1024 for SDXL", min=8, max=4096,
                            step=8, multiple_of=8, label="Working size")
    pad_mode: str = option("reflect", "how a crop is filled where it reaches past the image",
                           choices=("reflect", "edge", "constant"))
    lanczos: bool = option(False, "enlarge small crops with Lanczos instead of bicubic")


@settings
class PasteOptions:
    """How an inpainted crop goes back in: only its change, inside the region's mask."""

    feather: int = option(4, "soften the paste over this many pixels inside the mask; nothing outside it changes",
                          min=0, max=128, step=1, label="Feather (px)")
    colour_match: bool = option(False, "cancel a colour shift of the inpainted patch (its mean change on a ring just "
                                "outside the region)")


@settings
class RefineOptions:
    """When to repair, how many passes, how many candidates per region and how they are judged."""

    iterations: int = option(1, "repair passes, detecting again after each", min=1, max=10, step=1, label="Passes")
    target_par: float = option(0.0, "stop once the PAR is at or below this (0: run every pass; a pass that repairs "
                               "nothing ends the repair)", min=0.0, max=1.0, step=0.001,
                               label="Target PAR (0 = every pass)")
    min_par: float = option(0.0, "leave images whose PAR is at or below this untouched", min=0.0, max=1.0, step=0.001,
                            label="Only fix when PAR is above")
    candidates: int = option(1, "repaints tried per region, each with its own seed; the detector keeps the best",
                             min=1, max=8, step=1, label="Candidates per region")
    verify: bool = option(True, "keep a region's repaint only where the detector finds it less broken than before "
                          "(off: accept every repaint)", label="Verify each repair")
    min_gain: float = option(0.0, "how much lower a region's artifact score (its mean artifact probability) must be "
                             "to accept its repaint (0: strictly lower)", min=0.0, max=1.0, step=0.005,
                             label="Minimum gain")


@settings
class RepairOptions:
    """Everything one zoom-in repair reads, travelling as one: the regions, the crops, the paste
    and the passes (built from flags or a host's settings by :func:`pal4vst.options.options_from`)."""

    regions: RegionOptions = field(default_factory=RegionOptions)
    crops: CropOptions = field(default_factory=CropOptions)
    paste: PasteOptions = field(default_factory=PasteOptions)
    passes: RefineOptions = field(default_factory=RefineOptions)


@settings
class SamplingOptions:
    """How a diffusion model repaints a crop (the webui's img2img, diffusers)."""

    prompt: str = option("", "prompt of the fix (blank: the generation's own prompt in the webui, none in the CLI)",
                         label="Fix prompt (blank = main prompt)")
    negative_prompt: str = option("", "negative prompt of the fix (blank: the generation's own in the webui)",
                                  label="Fix negative prompt (blank = main)")
    denoise: float = option(0.5, "denoising strength: how much of each crop is repainted", min=0.0, max=1.0, step=0.01,
                            label="Denoising strength", flags=("--strength",))
    steps: int = option(20, "sampling steps of the fix", min=1, max=150, step=1)
    cfg: float = option(7.0, "classifier-free guidance scale of the fix", min=1.0, max=30.0, step=0.5,
                        label="CFG scale", flags=("--guidance",))
    seed: int = option(-1, "seed of the fix (-1: the image's own seed in the webui, 0 in the CLI); candidate j of "
                       "crop k (counted over passes) gets seed + k * candidates + j",
                       min=-1, max=2**32 - 1, label="Seed (-1 = image seed)")


# ------------------------------------------------------------------ teaching a model


@settings
class ExampleOptions:
    """Where an artist's corrected example goes (``pal4vst.learn.examples``)."""

    set_name: str = option("my_generator", "the example set: a folder of models/pal4vst/examples (letters, digits, "
                           "spaces, '_', '-', '.'); one set per generator you teach PAL", label="Example set")
    name: str = option("example", "file name of the example; a number is added, nothing is overwritten",
                       label="Example name")
    edit_prefix: str = option("pal4vst_edit", "file name of the image to correct in ComfyUI's input folder (a number "
                              "is added): pick it in a Load Image and open it in the mask editor",
                              label="File to correct")


@settings
class TeachOptions:
    """How a model is taught from an example set, in every host (``pal4vst.learn.teach``)."""

    model_name: str = option("my_generator", "name of the new model: models/pal4vst/<name>.safetensors (a number is "
                             "added rather than overwrite; a release's name is refused)", label="New model name")
    recipe: str = option("default", f"default: {describe_teach('default')} (for a GPU; estimated to fit in 8 GB); "
                         f"quick: {describe_teach('quick')} (for a CPU: Swin-B from ten examples took 51 min on 2 "
                         "cores). Both: every weight learns, held near the base's so that what it knew is kept. The "
                         "verdict costs more trainings than one: one per fold (see the held-out share) and the final "
                         "one", choices=tuple(TEACH),
                         label="Fine-tune recipe")
    steps: int = option(0, "optimiser steps of each training (0: the recipe's)", min=0, max=100_000, step=10,
                        label="Fine-tune steps (0 = recipe)")
    lr: float = option(0.0, f"peak learning rate of the backbone, the heads x10 (0: the model's own: "
                       f"{MODEL_LR['swin_b']:g} for Swin-B, the released models' fine-tune rate; "
                       f"{MODEL_LR['tiny']:g} for the tiny test preset)", min=0.0, max=0.1, step=1e-5,
                       label="Learning rate (0 = the model's)")
    held_out: float = option(0.3, "share of the examples each fold holds out: every example is judged once by a "
                             "model that never learned from it (cross-fitting, about 1/share folds, fewer for small "
                             "sets so that each fold judges at least 3 examples with artifacts); the model you get "
                             "then learns from all of them", min=0.1, max=0.5, step=0.05, label="Held-out share")
    seed: int = option(0, "seed of the split, the sampling and the augmentation", min=0, max=2**31 - 1,
                       label="Fine-tune seed")


# ------------------------------------------------------------------ scoring image sets


@settings
class ScoreOptions:
    """How a scoring job reads and records; the forward batch is the detector's."""

    workers: int = option(2, "decoding processes per rank", min=0, max=64)
    chunk: int = option(256, "results written per chunk (a kill loses at most this many)", min=1, max=1_000_000)
    retry_failed: bool = option(False, "try files that failed before again")
    rescore: bool = option(False, "redo the results an earlier run into the same --out made with other settings "
                           "(another model file, threshold, mode, precision or input size); without it such a "
                           "resume is refused")
