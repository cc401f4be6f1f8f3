"""Write example_workflows/*.json (UI format) and api/*.json (API format) from compact graph specs.

API files live in a subfolder because ComfyUI lists every top-level .json as a template.

The node definitions (input order, widgets, defaults, outputs) are read from a running ComfyUI's
``/object_info``, so the workflows match the real node API instead of a hand-typed guess:

    python tools/build_workflows.py --url http://127.0.0.1:8188
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "example_workflows"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
NEG = "blurry, deformed, distorted, bad anatomy, extra fingers, artifacts"

# name -> (description, {node_key: (class_type, (column, row), {input: value | (node_key, output_slot)})})
# Where the front-end says to get a loader's model when it is missing (node properties.models):
# the file's public download URL and the models/ folder it goes in. PAL Load Model carries none:
# it downloads the releases itself on first use, and front-end 1.27 would report a release
# missing, with a red "download not allowed" for its Google Drive URL, even then.
SD_MODELS = {
    "v1-5-pruned-emaonly.safetensors":
        "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors",
    "sd-v1-5-inpainting.ckpt":
        "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-inpainting/resolve/main/sd-v1-5-inpainting.ckpt",
    "sd_xl_base_1.0.safetensors":
        "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors",
}
LOADERS = {"CheckpointLoaderSimple": ("ckpt_name", "checkpoints")}  # class -> (widget, models/ folder)


def model_metadata(cls: str, values: dict) -> list[dict]:
    """``properties.models`` of a loader node: name (as its widget holds it), url, directory."""
    if cls not in LOADERS:
        return []
    widget, directory = LOADERS[cls]
    return [{"name": values[widget], "url": SD_MODELS[values[widget]], "directory": directory}]


# What workflows 07 and 10 feed PAL Detailer: an image, the PAL model, an SD1.5 inpainting model, prompts.
DETAILER_SOURCES = {
    "image": ("LoadImage", (0, 0), {"image": "example.png"}),
    "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
    "ckpt": ("CheckpointLoaderSimple", (0, 2), {"ckpt_name": "sd-v1-5-inpainting.ckpt"}),
    "pos": ("CLIPTextEncode", (1, 2), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
    "neg": ("CLIPTextEncode", (1, 3), {"text": NEG, "clip": ("ckpt", 1)}),
}
DETAILER_LINKS = {"image": ("image", 0), "pal_model": ("model", 0), "model": ("ckpt", 0), "vae": ("ckpt", 2),
                  "positive": ("pos", 0), "negative": ("neg", 0), "seed": 7, "steps": 25, "scheduler": "normal"}

TEACH_NOTE = (
    "Teach PAL your generator, step 1 of 2: collect examples.\n\n"
    "1. Load one of your generated images where PAL is wrong (top left) and Queue: PAL Edit Mask writes it to "
    "ComfyUI's input folder with PAL's mask as its transparency (pal4vst_edit_00001.png, ...).\n"
    "2. In the Load Image below, pick that file (press R to refresh the list), right-click the image, Open in "
    "MaskEditor: PAL's mask is painted. Paint what it missed, erase what it marked wrongly, Save.\n"
    "3. Unmute the two nodes below (select them, Ctrl+M) and Queue: PAL Save Example adds the image and your mask "
    "to the set (models/pal4vst/examples/my_generator). An empty mask is a clean example.\n\n"
    "About ten examples, with artifacts and without, are enough; then workflow 12 fine-tunes PAL on the set."
)

WORKFLOWS: dict[str, tuple[str, dict]] = {
    "01_detect_and_score": (
        "Detect perceptual artifacts in an image: mask, probability, overlay and PAR.",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "detect": ("PALDetect", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0)}),
            "overlay": ("PreviewImage", (2, 0), {"images": ("detect", 2)}),
            "mask_img": ("MaskToImage", (2, 1), {"mask": ("detect", 0)}),
            "mask_preview": ("PreviewImage", (3, 1), {"images": ("mask_img", 0)}),
            "prob_img": ("MaskToImage", (2, 2), {"mask": ("detect", 1)}),
            "prob_preview": ("PreviewImage", (3, 2), {"images": ("prob_img", 0)}),
        },
    ),
    "02_best_of_n": (
        "Generate a batch of 4 with SD1.5, score each image's PAR and keep the one with the fewest artifacts.",
        {
            "ckpt": ("CheckpointLoaderSimple", (0, 0), {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
            "pos": ("CLIPTextEncode", (1, 0), {"text": "a photo of a woman waving at the camera, detailed hands",
                                                "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (1, 1), {"text": NEG, "clip": ("ckpt", 1)}),
            "latent": ("EmptyLatentImage", (1, 2), {"width": 512, "height": 512, "batch_size": 4}),
            "sampler": ("KSampler", (2, 0), {"model": ("ckpt", 0), "positive": ("pos", 0), "negative": ("neg", 0),
                                             "latent_image": ("latent", 0), "seed": 42, "steps": 25, "cfg": 7.0}),
            "decode": ("VAEDecode", (3, 0), {"samples": ("sampler", 0), "vae": ("ckpt", 2)}),
            "model": ("PALLoadModel", (3, 1), {"model": "unified"}),
            "score": ("PALScore", (4, 0), {"pal_model": ("model", 0), "images": ("decode", 0)}),
            "save": ("SaveImage", (5, 0), {"images": ("score", 1), "filename_prefix": "pal4vst_best"}),
            "all": ("PreviewImage", (5, 1), {"images": ("score", 2)}),
        },
    ),
    "03_zoom_in_refine_sd15": (
        "Zoom-in refinement (the paper's fix) with an SD1.5 inpainting model: detect, crop each artifact 1.5x at "
        "512x512, inpaint the crops as one batch, paste back. Pixels outside the repaired regions do not change.",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "detect": ("PALDetect", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0)}),
            "crop": ("PALZoomCrop", (2, 0), {"image": ("image", 0), "mask": ("detect", 0), "work_size": 512}),
            "ckpt": ("CheckpointLoaderSimple", (1, 1), {"ckpt_name": "sd-v1-5-inpainting.ckpt"}),
            "pos": ("CLIPTextEncode", (2, 1), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (2, 2), {"text": NEG, "clip": ("ckpt", 1)}),
            "encode": ("VAEEncodeForInpaint", (3, 0), {"pixels": ("crop", 0), "vae": ("ckpt", 2), "mask": ("crop", 1),
                                                        "grow_mask_by": 6}),
            "sampler": ("KSampler", (4, 0), {"model": ("ckpt", 0), "positive": ("pos", 0), "negative": ("neg", 0),
                                             "latent_image": ("encode", 0), "seed": 7, "steps": 25, "cfg": 7.0,
                                             "denoise": 1.0}),
            "decode": ("VAEDecode", (5, 0), {"samples": ("sampler", 0), "vae": ("ckpt", 2)}),
            "paste": ("PALComposite", (6, 0), {"image": ("image", 0), "inpainted": ("decode", 0),
                                               "pal_crops": ("crop", 2)}),
            "save": ("SaveImage", (7, 0), {"images": ("paste", 0), "filename_prefix": "pal4vst_refined"}),
            "before": ("PreviewImage", (2, 3), {"images": ("detect", 2)}),
            "crops": ("PreviewImage", (6, 1), {"images": ("decode", 0)}),
        },
    ),
    "04_zoom_in_refine_sdxl": (
        "Zoom-in refinement with SDXL at 1024x1024 crops through InpaintModelConditioning (works with base "
        "models and inpainting models alike); denoise 0.75 keeps the composition of each crop.",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "detect": ("PALDetect", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0), "grow": 4}),
            "crop": ("PALZoomCrop", (2, 0), {"image": ("image", 0), "mask": ("detect", 0), "work_size": 1024,
                                             "min_size": 128, "grow": 12, "feather": 8}),
            "ckpt": ("CheckpointLoaderSimple", (1, 1), {"ckpt_name": "sd_xl_base_1.0.safetensors"}),
            "pos": ("CLIPTextEncode", (2, 1), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (2, 2), {"text": NEG, "clip": ("ckpt", 1)}),
            "cond": ("InpaintModelConditioning", (3, 0), {"positive": ("pos", 0), "negative": ("neg", 0),
                                                          "vae": ("ckpt", 2), "pixels": ("crop", 0),
                                                          "mask": ("crop", 1), "noise_mask": True}),
            "sampler": ("KSampler", (4, 0), {"model": ("ckpt", 0), "positive": ("cond", 0), "negative": ("cond", 1),
                                             "latent_image": ("cond", 2), "seed": 7, "steps": 30, "cfg": 6.0,
                                             "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 0.75}),
            "decode": ("VAEDecode", (5, 0), {"samples": ("sampler", 0), "vae": ("ckpt", 2)}),
            "paste": ("PALComposite", (6, 0), {"image": ("image", 0), "inpainted": ("decode", 0),
                                               "pal_crops": ("crop", 2)}),
            "save": ("SaveImage", (7, 0), {"images": ("paste", 0), "filename_prefix": "pal4vst_refined_xl"}),
            "before": ("PreviewImage", (2, 3), {"images": ("detect", 2)}),
        },
    ),
    "05_pal_segs_into_impact_detailer": (
        "Needs Impact Pack. PAL4VST's artifact regions as SEGS into Impact's Detailer (SEGS): each region is "
        "re-sampled at guide_size and pasted back. noise_mask_feather stays 0 (above 0 Impact 7.x calls "
        "DifferentialDiffusion().apply, which current ComfyUI no longer has).",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "segs": ("PALDetectSEGS", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0), "dilation": 4}),
            "ckpt": ("CheckpointLoaderSimple", (1, 1), {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
            "pos": ("CLIPTextEncode", (2, 1), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (2, 2), {"text": NEG, "clip": ("ckpt", 1)}),
            "detailer": ("DetailerForEach", (3, 0), {"image": ("image", 0), "segs": ("segs", 0), "model": ("ckpt", 0),
                                                     "clip": ("ckpt", 1), "vae": ("ckpt", 2), "positive": ("pos", 0),
                                                     "negative": ("neg", 0), "seed": 7, "steps": 20, "cfg": 7.0,
                                                     "scheduler": "normal", "denoise": 0.5, "noise_mask_feather": 0}),
            "save": ("SaveImage", (4, 0), {"images": ("detailer", 0), "filename_prefix": "pal4vst_impact_segs"}),
        },
    ),
    "06_pal_detector_in_facedetailer": (
        "Needs Impact Pack. PAL4VST as the detector of Impact's FaceDetailer (or any BBOX/SEGM detector input): "
        "the detailer repairs what PAL marks as broken, not faces. bbox_crop_factor 1.5 is the paper's zoom-in.",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "provider": ("PALDetectorProvider", (1, 1), {"pal_model": ("model", 0)}),
            "ckpt": ("CheckpointLoaderSimple", (0, 2), {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
            "pos": ("CLIPTextEncode", (1, 2), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (1, 3), {"text": NEG, "clip": ("ckpt", 1)}),
            "detailer": ("FaceDetailer", (2, 0), {"image": ("image", 0), "model": ("ckpt", 0), "clip": ("ckpt", 1),
                                                  "vae": ("ckpt", 2), "positive": ("pos", 0), "negative": ("neg", 0),
                                                  "bbox_detector": ("provider", 0), "seed": 7, "steps": 20, "cfg": 7.0,
                                                  "scheduler": "normal", "denoise": 0.5, "bbox_dilation": 4,
                                                  "bbox_crop_factor": 1.5, "noise_mask_feather": 0}),
            "save": ("SaveImage", (3, 0), {"images": ("detailer", 0), "filename_prefix": "pal4vst_facedetailer"}),
            "mask_img": ("MaskToImage", (3, 1), {"mask": ("detailer", 3)}),
            "mask_preview": ("PreviewImage", (4, 1), {"images": ("mask_img", 0)}),
        },
    ),
    "07_pal_detailer_until_clean": (
        "PAL Detailer: detect, zoom-in inpaint every region with an SD1.5 inpainting model, detect again, up to 3 "
        "passes or until PAR <= 0.002. Nothing outside the repaired mask changes. Previews: crops sent and returned.",
        {
            **DETAILER_SOURCES,
            "detailer": ("PALDetailer", (2, 0), {**DETAILER_LINKS, "denoise": 1.0,
                                                 "iterations": 3, "target_par": 0.002}),
            "save": ("SaveImage", (3, 0), {"images": ("detailer", 0), "filename_prefix": "pal4vst_detailer"}),
            "mask_img": ("MaskToImage", (3, 1), {"mask": ("detailer", 1)}),
            "mask_preview": ("PreviewImage", (4, 1), {"images": ("mask_img", 0)}),
            "before": ("PreviewImage", (3, 2), {"images": ("detailer", 4)}),
            "after": ("PreviewImage", (4, 2), {"images": ("detailer", 5)}),
        },
    ),
    "10_pal_detailer_best_of_4_verified": (
        "Verified repair: PAL Detailer inpaints every artifact region 4 times (4 seeds, one sampling call per region) "
        "and the detector judges them. Each region keeps its least broken candidate, and only if PAL finds it less "
        "broken than before; otherwise the region keeps its own pixels. The report lists every region: its score "
        "before, the 4 candidates' scores, the one chosen, kept or reverted. Nothing outside kept regions changes.",
        {
            **DETAILER_SOURCES,
            "detailer": ("PALDetailer", (2, 0), {**DETAILER_LINKS, "denoise": 0.75,
                                                 "iterations": 2, "candidates": 4, "verify": True, "min_gain": 0.0}),
            "save": ("SaveImage", (3, 0), {"images": ("detailer", 0), "filename_prefix": "pal4vst_verified"}),
            "mask_img": ("MaskToImage", (3, 1), {"mask": ("detailer", 1)}),
            "mask_preview": ("PreviewImage", (4, 1), {"images": ("mask_img", 0)}),
            "report": ("PreviewAny", (3, 2), {"source": ("detailer", 6)}),
        },
    ),
    "11_teach_detect_correct_save": (
        "Teach PAL your generator, step 1: show PAL's mask in the mask editor, correct it (paint what PAL missed, "
        "erase what it marked wrongly) and save the image with your mask into an example set. The note on the "
        "canvas says how.",
        {
            "note": ("Note", (0, 2), {"text": TEACH_NOTE}),
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "detect": ("PALDetect", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0)}),
            "edit": ("PALEditMask", (2, 0), {"image": ("image", 0), "mask": ("detect", 0)}),
            "corrected": ("LoadImage", (1, 2), {"image": "example.png"}, {"mode": 2}),
            "save": ("PALSaveExample", (2, 2), {"image": ("corrected", 0), "mask": ("corrected", 1),
                                                "set_name": "my_generator"}, {"mode": 2}),
        },
    ),
    "12_teach_finetune_and_use": (
        "Teach PAL your generator, step 2: fine-tune PAL on your example set (workflow 11). Part of the examples is "
        "held out and judges base and result; the report says whether the new model is better. PAL Fine-Tune passes "
        "on the better model, here to PAL Detect. The new model is saved in models/pal4vst (PAL Load Model lists it "
        "after a refresh).",
        {
            "model": ("PALLoadModel", (0, 0), {"model": "unified"}),
            "finetune": ("PALFineTune", (1, 0), {"pal_model": ("model", 0), "example_set": "my_generator",
                                                 "model_name": "my_generator"}),
            "report": ("PreviewAny", (2, 1), {"source": ("finetune", 1)}),
            "image": ("LoadImage", (0, 1), {"image": "example.png"}),
            "detect": ("PALDetect", (2, 0), {"pal_model": ("finetune", 0), "image": ("image", 0)}),
            "overlay": ("PreviewImage", (3, 0), {"images": ("detect", 2)}),
        },
    ),
    "08_any_mask_multi_region_inpaint": (
        "Inpaint several regions of one image separately and get one image back: paint the regions in the mask "
        "editor (right-click the image, Open in MaskEditor), or feed any MASK. Each region is zoomed to 512x512, all "
        "are sampled as one batch, and PAL Composite pastes them back; nothing outside the regions changes.",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "crop": ("PALZoomCrop", (1, 0), {"image": ("image", 0), "mask": ("image", 1), "grow": 4, "min_area": 0}),
            "ckpt": ("CheckpointLoaderSimple", (0, 1), {"ckpt_name": "sd-v1-5-inpainting.ckpt"}),
            "pos": ("CLIPTextEncode", (1, 1), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (1, 2), {"text": NEG, "clip": ("ckpt", 1)}),
            "cond": ("InpaintModelConditioning", (2, 0), {"positive": ("pos", 0), "negative": ("neg", 0),
                                                          "vae": ("ckpt", 2), "pixels": ("crop", 0),
                                                          "mask": ("crop", 1), "noise_mask": True}),
            "sampler": ("KSampler", (3, 0), {"model": ("ckpt", 0), "positive": ("cond", 0), "negative": ("cond", 1),
                                             "latent_image": ("cond", 2), "seed": 7, "steps": 25, "cfg": 7.0,
                                             "denoise": 1.0}),
            "decode": ("VAEDecode", (4, 0), {"samples": ("sampler", 0), "vae": ("ckpt", 2)}),
            "paste": ("PALComposite", (5, 0), {"image": ("image", 0), "inpainted": ("decode", 0),
                                               "pal_crops": ("crop", 2)}),
            "save": ("SaveImage", (6, 0), {"images": ("paste", 0), "filename_prefix": "pal4vst_multi_region"}),
            "crops": ("PreviewImage", (5, 1), {"images": ("decode", 0)}),
        },
    ),
    "09_pal_mask_into_inpaint_crop_and_stitch": (
        "Needs Inpaint-CropAndStitch. PAL Detect's mask drives Inpaint Crop / Inpaint Stitch directly (a 0/1 MASK "
        "at the image's size, one per image).",
        {
            "image": ("LoadImage", (0, 0), {"image": "example.png"}),
            "model": ("PALLoadModel", (0, 1), {"model": "unified"}),
            "detect": ("PALDetect", (1, 0), {"pal_model": ("model", 0), "image": ("image", 0)}),
            "crop": ("InpaintCropImproved", (2, 0), {"image": ("image", 0), "mask": ("detect", 0)}),
            "ckpt": ("CheckpointLoaderSimple", (1, 2), {"ckpt_name": "sd-v1-5-inpainting.ckpt"}),
            "pos": ("CLIPTextEncode", (2, 2), {"text": "high quality, detailed, sharp", "clip": ("ckpt", 1)}),
            "neg": ("CLIPTextEncode", (2, 3), {"text": NEG, "clip": ("ckpt", 1)}),
            "cond": ("InpaintModelConditioning", (3, 0), {"positive": ("pos", 0), "negative": ("neg", 0),
                                                          "vae": ("ckpt", 2), "pixels": ("crop", 1),
                                                          "mask": ("crop", 2), "noise_mask": True}),
            "sampler": ("KSampler", (4, 0), {"model": ("ckpt", 0), "positive": ("cond", 0), "negative": ("cond", 1),
                                             "latent_image": ("cond", 2), "seed": 7, "steps": 25, "cfg": 7.0,
                                             "denoise": 1.0}),
            "decode": ("VAEDecode", (5, 0), {"samples": ("sampler", 0), "vae": ("ckpt", 2)}),
            "stitch": ("InpaintStitchImproved", (6, 0), {"stitcher": ("crop", 0), "inpainted_image": ("decode", 0)}),
            "save": ("SaveImage", (7, 0), {"images": ("stitch", 0), "filename_prefix": "pal4vst_crop_and_stitch"}),
        },
    ),
}


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _default(spec: list):
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if "default" in opts:
        return opts["default"]
    if isinstance(kind, list):
        return kind[0] if kind else ""
    if kind == "COMBO":
        return (opts.get("options") or [""])[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


FRONTEND_ONLY = {"Note": ["text"]}  # nodes of the front-end alone: widgets only, not in /object_info or the API


def build(name: str, description: str, graph: dict, info: dict) -> tuple[dict, dict]:
    """``graph`` entries are ``(class, (column, row), values)``, or with a fourth ``{"mode": 2}``
    for a node shipped muted (the user unmutes it when its step comes)."""
    graph = {key: (*entry, {}) if len(entry) == 3 else entry for key, entry in graph.items()}
    ids = {key: i + 1 for i, key in enumerate(graph)}
    links: list[list] = []
    nodes, api = [], {}
    out_links: dict[tuple[str, int], list[int]] = {}
    for key, (cls, _, values, _) in graph.items():
        for inp, v in values.items():
            if isinstance(v, tuple):
                src, slot = v
                link_id = len(links) + 1
                src_type = info[graph[src][0]]["output"][slot]
                links.append([link_id, ids[src], slot, ids[key], None, src_type, inp])
                out_links.setdefault((src, slot), []).append(link_id)
    for order, (key, (cls, (col, row), values, extra)) in enumerate(graph.items()):
        if cls in FRONTEND_ONLY:
            nodes.append({"id": ids[key], "type": cls, "pos": [40 + 420 * col, 60 + 420 * row], "size": [380, 420],
                          "flags": {}, "order": order, "mode": 0, "properties": {},
                          "widgets_values": [values[w] for w in FRONTEND_ONLY[cls]]})
            continue
        node = info[cls]
        spec = {**node["input"].get("required", {}), **node["input"].get("optional", {})}
        order_names = node["input_order"].get("required", []) + node["input_order"].get("optional", [])
        inputs, widgets, api_inputs = [], [], {}
        for inp in order_names:
            s = spec[inp]
            v = values.get(inp)
            if isinstance(v, tuple):
                link = next(l for l in links if l[3] == ids[key] and l[6] == inp)
                link[4] = len(inputs)
                inputs.append({"name": inp, "type": link[5], "link": link[0]})
                api_inputs[inp] = [str(ids[v[0]]), v[1]]
            elif _is_widget(s):
                val = _default(s) if v is None else v
                widgets.append(val)
                # The front-end adds a "control after generate" widget for these (migrateWidgetsValues).
                if s[1:] and s[1].get("control_after_generate") or inp in ("seed", "noise_seed"):
                    widgets.append("fixed")
                if s[1:] and s[1].get("image_upload"):
                    widgets.append("image")
                api_inputs[inp] = val
            elif inp in node["input"].get("required", {}):
                raise ValueError(f"{name}: {key} ({cls}) input {inp} is not connected")
        outputs = [{"name": n, "type": t, "links": out_links.get((key, i), []), "slot_index": i}
                   for i, (n, t) in enumerate(zip(node.get("output_name", node["output"]), node["output"]))]
        height = 46 + 24 * (len(widgets) + max(len(inputs), len(outputs)))
        properties = {"Node name for S&R": cls}
        models = model_metadata(cls, values)
        if models:
            properties["models"] = models
        mode = extra.get("mode", 0)
        nodes.append({"id": ids[key], "type": cls, "pos": [40 + 420 * col, 60 + 420 * row], "size": [340, height],
                      "flags": {}, "order": order, "mode": mode, "inputs": inputs, "outputs": outputs,
                      "properties": properties, "widgets_values": widgets})
        if mode == 0:  # the front-end leaves muted nodes out of the prompt it queues
            api[str(ids[key])] = {"class_type": cls, "inputs": api_inputs, "_meta": {"title": node["display_name"]}}
    ui = {
        "last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes,
        "links": [l[:6] for l in links], "groups": [], "config": {},
        "extra": {"info": {"name": name, "description": description, "author": "PAL4VST"}}, "version": 0.4,
    }
    return ui, api


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8188")
    args = ap.parse_args()
    with urllib.request.urlopen(f"{args.url}/object_info") as r:
        info = json.load(r)
    OUT.mkdir(exist_ok=True)
    for name, (description, graph) in WORKFLOWS.items():
        ui, api = build(name, description, graph, info)
        (OUT / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        (OUT / "api").mkdir(exist_ok=True)
        (OUT / "api" / f"{name}.json").write_text(json.dumps(api, indent=1) + "\n")
        print(f"wrote {name}.json and api/{name}.json ({len(ui['nodes'])} nodes, {len(ui['links'])} links)")


if __name__ == "__main__":
    main()
