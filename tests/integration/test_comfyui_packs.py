"""The shipped example workflows that sample, run for real: a real ComfyUI with this pack, the real
Impact Pack and Inpaint-CropAndStitch beside it, and full-size SD1.5 / SD1.5-inpainting checkpoints
(random weights, so every sampler path runs; the pictures are noise, so the checks are about where
pixels change, and sizes).

Skipped unless ``COMFYUI_DIR`` (and ``COMFYUI_PYTHON``), ``PAL4VST_TEST_SD15`` and
``PAL4VST_TEST_SD15_INPAINT`` are set (``../shared/tools/make_random_sd15.py`` writes both
checkpoints); the Impact and CropAndStitch workflows also need ``IMPACT_PACK_DIR`` and
``CROPANDSTITCH_DIR`` (checkouts with their requirements installed in ComfyUI's Python; Impact
7.x also needs its Subpack in ``impact_subpack/`` and ``ultralytics`` importable). Each workflow is
run as shipped, scaled down for a CPU: the tiny "bright" PAL model (its artifacts are the white
squares of the test image), 1 sampling step, 256 px working sizes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from comfy_host import COMFY, comfyui, get, queue, submit, wait
from conftest import FAR_B, FAR_WIDTH, ROOT, SQUARES, square_mask, squares_image, two_squares
from pal4vst.testing import bright_checkpoint

SD15, SD15_INPAINT = os.environ.get("PAL4VST_TEST_SD15"), os.environ.get("PAL4VST_TEST_SD15_INPAINT")
IMPACT, CROP_AND_STITCH = os.environ.get("IMPACT_PACK_DIR"), os.environ.get("CROPANDSTITCH_DIR")
pytestmark = pytest.mark.skipif(not (COMFY and SD15 and SD15_INPAINT),
                                reason="set COMFYUI_DIR, PAL4VST_TEST_SD15 and PAL4VST_TEST_SD15_INPAINT to run")
needs_impact = pytest.mark.skipif(not IMPACT, reason="set IMPACT_PACK_DIR to an Impact Pack checkout to run")
needs_cas = pytest.mark.skipif(not CROP_AND_STITCH, reason="set CROPANDSTITCH_DIR to an Inpaint-CropAndStitch checkout")

PAINTED = ((30, 30, 80, 90), (160, 200, 220, 290))  # (y0, x0, y1, x1) painted in the mask editor
SCALE = {"steps": 1, "work_size": 256, "guide_size": 256, "max_size": 256, "iterations": 2,
         "output_target_width": 256, "output_target_height": 256}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_packs")
    nodes_dir = base / "custom_nodes"
    nodes_dir.mkdir()
    for folder in (IMPACT, CROP_AND_STITCH):
        if folder:
            (nodes_dir / Path(folder).name).symlink_to(Path(folder).resolve(), target_is_directory=True)
    (base / "models" / "checkpoints").mkdir(parents=True)
    for ckpt in (SD15, SD15_INPAINT):
        (base / "models" / "checkpoints" / Path(ckpt).name).symlink_to(Path(ckpt).resolve())
    bright_checkpoint(base / "models" / "pal4vst" / "bright.safetensors")
    (base / "input").mkdir()
    Image.fromarray(squares_image()).save(base / "input" / "example.png")
    Image.fromarray(two_squares(w=FAR_WIDTH, b=FAR_B)).save(base / "input" / "far.png")
    rgba = np.dstack([squares_image(), np.full((256, 320), 255, np.uint8)])
    for y0, x0, y1, x1 in PAINTED:
        rgba[y0:y1, x0:x1, 3] = 0  # what the mask editor saves: transparent = masked
    Image.fromarray(rgba, "RGBA").save(base / "input" / "masked.png")
    with comfyui(base) as (url, log):
        yield url, base, log


def workflow(name: str, path: Path | None = None, **inputs) -> dict:
    """A shipped API workflow (or the one at ``path``), scaled for the test (``inputs``:
    ``{class_type: {input: value}}``)."""
    prompt = json.loads((path or ROOT / "example_workflows" / "api" / f"{name}.json").read_text())
    ckpts = {"sd-v1-5-inpainting.ckpt": Path(SD15_INPAINT).name, "v1-5-pruned-emaonly.safetensors": Path(SD15).name}
    for node in prompt.values():
        ins, cls = node["inputs"], node["class_type"]
        if cls == "PALLoadModel":
            ins.update(model="bright.safetensors", device="cpu", dtype="fp32")
        if cls == "CheckpointLoaderSimple":
            ins["ckpt_name"] = ckpts[ins["ckpt_name"]]
        if cls == "InpaintCropImproved":
            ins["device_mode"] = "cpu (compatible)"
        ins.update({k: v for k, v in SCALE.items() if k in ins and not isinstance(ins[k], list)})
        ins.update(inputs.get(cls, {}))
    return prompt


def run_workflow(comfy, prompt: dict) -> dict:
    url, _, log = comfy
    entry = queue(url, prompt)
    assert entry["status"]["status_str"] == "success", (json.dumps(entry["status"])[:3000], log.read_text()[-3000:])
    return entry["outputs"]


def images_of(comfy, outputs: dict, prompt: dict, class_type: str, shows: tuple[str, int] | None = None
              ) -> list[np.ndarray]:
    """The pictures saved or previewed (output or temp folder) by the nodes of ``class_type``; with
    ``shows=(class_type, slot)`` only by the one whose images come from that node's output."""
    _, base, _ = comfy
    ids = [k for k, v in prompt.items() if v["class_type"] == class_type]
    if shows is not None:
        ids = [k for k in ids if (prompt[prompt[k]["inputs"]["images"][0]]["class_type"],
                                  prompt[k]["inputs"]["images"][1]) == shows]
    assert ids, (class_type, shows)
    found = []
    for i in ids:
        for img in outputs[i]["images"]:
            path = base / img["type"] / img.get("subfolder", "") / img["filename"]
            found.append(np.asarray(Image.open(path).convert("RGB")))
    assert found, class_type
    return found


def near(mask: np.ndarray, margin: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)


def changed(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    assert after.shape == before.shape  # sizes are kept
    return (after.astype(int) != before.astype(int)).any(axis=2)


def repairs_near_the_squares(comfy, name: str, margin: int) -> tuple[dict, dict]:
    """Run workflow ``name``: its saved image keeps its size and changes, but only within
    ``margin`` pixels of the squares PAL marks. Returns the prompt and its outputs."""
    prompt = workflow(name)
    outputs = run_workflow(comfy, prompt)
    diff = changed(images_of(comfy, outputs, prompt, "SaveImage")[0], squares_image())
    assert diff.any() and not (diff & ~near(square_mask(), margin)).any()
    return prompt, outputs


def test_zoom_in_refine_sd15(comfy):
    """Workflow 03: PAL Detect -> Zoom Crop -> VAE Encode (for Inpainting) -> KSampler -> Composite."""
    repairs_near_the_squares(comfy, "03_zoom_in_refine_sd15", 24)


@needs_impact
def test_pal_segs_into_impacts_detailer(comfy):
    """Workflow 05: PAL Detect (SEGS) -> Impact's Detailer (SEGS)."""
    repairs_near_the_squares(comfy, "05_pal_segs_into_impact_detailer", 48)


@needs_impact
def test_pal_as_the_detector_of_facedetailer(comfy):
    """Workflow 06: PAL Detector Provider -> Impact's FaceDetailer."""
    prompt, outputs = repairs_near_the_squares(comfy, "06_pal_detector_in_facedetailer", 48)
    mask = images_of(comfy, outputs, prompt, "PreviewImage", ("MaskToImage", 0))[0][..., 0] > 127
    truth = square_mask()
    assert (mask & truth).sum() / (mask | truth).sum() > 0.5


@needs_impact
def test_impacts_detector_nodes_take_pal(comfy):
    """"SEGM Detector (SEGS)", "BBOX Detector (SEGS)", "Simple Detector (SEGS)" and the combined
    SEGM detector with PAL as their detector; Impact's own SEGS to MASK reads PAL's SEGS."""
    source = {"image": ["1", 0]}
    det = {"segm_detector": ["3", 1]}
    detectors = {
        "SegmDetectorSEGS": {**det, **source, "threshold": 0.5, "dilation": 0, "crop_factor": 1.5, "drop_size": 10,
                             "labels": "all"},
        "BboxDetectorSEGS": {"bbox_detector": ["3", 0], **source, "threshold": 0.5, "dilation": 0, "crop_factor": 1.5,
                             "drop_size": 10, "labels": "artifact"},
        "ImpactSimpleDetectorSEGS": {"bbox_detector": ["3", 0], **source, "bbox_threshold": 0.5, "bbox_dilation": 0,
                                     "crop_factor": 1.5, "drop_size": 10, "sub_threshold": 0.5, "sub_dilation": 0,
                                     "sub_bbox_expansion": 0, "sam_mask_hint_threshold": 0.7},
    }
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
              "2": {"class_type": "PALLoadModel", "inputs": {"model": "bright.safetensors", "device": "cpu",
                                                              "dtype": "fp32"}},
              "3": {"class_type": "PALDetectorProvider", "inputs": {"pal_model": ["2", 0], "mode": "whole"}},
              "4": {"class_type": "SegmDetectorCombined_v2", "inputs": {**det, **source, "threshold": 0.5,
                                                                         "dilation": 0}}}
    masks = {"4": ("4", 0)}
    for n, (cls, inputs) in enumerate(detectors.items(), start=10):
        prompt[str(n)] = {"class_type": cls, "inputs": inputs}
        prompt[str(n + 10)] = {"class_type": "SegsToCombinedMask", "inputs": {"segs": [str(n), 0]}}
        masks[cls] = (str(n + 10), 0)
    for name, (node, slot) in masks.items():
        prompt[f"img_{node}"] = {"class_type": "MaskToImage", "inputs": {"mask": [node, slot]}}
        prompt[f"save_{node}"] = {"class_type": "SaveImage", "inputs": {"images": [f"img_{node}", 0],
                                                                        "filename_prefix": f"impact_{node}"}}
    outputs = run_workflow(comfy, prompt)
    truth = square_mask()
    assert len(masks) == 4
    for name, (node, _) in masks.items():
        saved = outputs[f"save_{node}"]["images"][0]
        mask = np.asarray(Image.open(comfy[1] / "output" / saved["filename"]).convert("L")) > 127
        assert (mask & truth).sum() / (mask | truth).sum() > 0.7, name


SAVED_07 = ROOT / "tests" / "fixtures" / "workflows" / "07_saved_before_verification.api.json"


@pytest.mark.parametrize("saved", [None, SAVED_07], ids=["shipped", "saved before verification"])
def test_pal_detailer_repairs_inside_its_mask_only(comfy, saved):
    """Workflow 07: PAL Detailer with the SD1.5 inpainting model (concat conditioning), and the
    same graph with the plain SD1.5 model (latent noise mask); also 07 as saved before the
    verification inputs existed (it must still be accepted and run)."""
    for ckpt in (Path(SD15_INPAINT).name, Path(SD15).name):
        prompt = workflow("07_pal_detailer_until_clean", saved, CheckpointLoaderSimple={"ckpt_name": ckpt})
        outputs = run_workflow(comfy, prompt)
        out = images_of(comfy, outputs, prompt, "SaveImage")[0]
        mask = images_of(comfy, outputs, prompt, "PreviewImage", ("MaskToImage", 0))[0][..., 0] > 127
        crops_before = images_of(comfy, outputs, prompt, "PreviewImage", ("PALDetailer", 4))
        crops_after = images_of(comfy, outputs, prompt, "PreviewImage", ("PALDetailer", 5))
        diff = changed(out, squares_image())
        assert not (diff & ~mask).any(), ckpt  # nothing outside the repaired mask changed
        assert len(crops_before) == len(crops_after) >= 1 and crops_before[0].shape == (256, 256, 3)
        detailer = next(k for k, v in prompt.items() if v["class_type"] == "PALDetailer")
        text = outputs[detailer]["text"][0]
        assert text.startswith("#0: PAR 0.1") and "->" in text
        # random weights paint noise, which the detector may or may not find better than the square
        if " kept #" in text:
            assert mask.any() and diff.sum() > 0.5 * (diff.any() and square_mask()[mask].sum())
        else:
            assert "reverted" in text and not mask.any() and not diff.any(), text
        print(ckpt, text.replace("\n", " | "))


def test_verified_best_of_candidates(comfy):
    """Workflow 10 with 2 candidates per region, on two squares far apart (two regions): the
    report has every region; nothing outside the kept regions changes; a reverted region keeps its
    pixels bit for bit. min_gain 1 reverts every region (the image comes back unchanged);
    verify off keeps every region."""
    src = two_squares(w=FAR_WIDTH, b=FAR_B)
    runs = {"default": {}, "all reverted": {"min_gain": 1.0}, "verify off": {"verify": False}}
    seen = {}
    for label, extra in runs.items():
        prompt = workflow("10_pal_detailer_best_of_4_verified", LoadImage={"image": "far.png"},
                          PALDetailer={"candidates": 2, "iterations": 1, **extra})
        outputs = run_workflow(comfy, prompt)
        out = images_of(comfy, outputs, prompt, "SaveImage")[0]
        mask = images_of(comfy, outputs, prompt, "PreviewImage", ("MaskToImage", 0))[0][..., 0] > 127
        shown = next(k for k, v in prompt.items() if v["class_type"] == "PreviewAny")
        report = json.loads(outputs[shown]["text"][0])[0]
        regions = report["report"]
        assert len(regions) == report["judged"] == 2, (label, regions)
        assert report["kept"] == sum(r["accepted"] for r in regions), label
        diff = changed(out, src)
        assert not (diff & ~mask).any(), label  # nothing outside the kept regions' mask changed
        for r in regions:
            assert len(r["scores"]) == len(r["seeds"]) == 2 and r["seeds"][1] == r["seeds"][0] + 1
            x0, y0, x1, y1 = r["bbox"]
            if not r["accepted"]:
                assert not diff[y0:y1, x0:x1].any() and not mask[y0:y1, x0:x1].any(), (label, r)
            else:
                assert min(r["scores"]) == r["scores"][r["chosen"]] and mask[y0:y1, x0:x1].any(), (label, r)
        seen[label] = [r["accepted"] for r in regions]
        print(label, [(round(r["score_before"], 3), r["scores"], r["accepted"]) for r in regions])
    assert seen["all reverted"] == [False, False] and seen["verify off"] == [True, True]


def test_cancel_stops_the_pal_detailer_between_steps(comfy):
    """Cancel (POST /interrupt) while the Detailer samples: it stops within about one step."""
    import time
    import urllib.request

    url = comfy[0]
    prompt = workflow("07_pal_detailer_until_clean", PALDetailer={"steps": 40})
    pid = submit(url, prompt)
    deadline = time.time() + 300
    while time.time() < deadline and not get(f"{url}/queue")["queue_running"]:
        time.sleep(0.2)
    time.sleep(25)  # checkpoint loaded, detection done, sampling under way
    t0 = time.time()
    urllib.request.urlopen(urllib.request.Request(f"{url}/interrupt", data=b"", method="POST"), timeout=30)
    entry = wait(url, pid, 300)
    stopped_after = time.time() - t0
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert entry["status"]["status_str"] == "error" and "execution_interrupted" in kinds, kinds
    assert stopped_after < 30, stopped_after  # one 256 px SD1.5 step takes a few seconds here
    print(f"stopped {stopped_after:.1f} s after Cancel")


def test_any_mask_multi_region_inpaint(comfy):
    """Workflow 08: the mask editor's mask (two regions) -> Zoom Crop -> one batch sampled ->
    Composite: both regions repainted, nothing else."""
    prompt = workflow("08_any_mask_multi_region_inpaint", LoadImage={"image": "masked.png"})
    out = images_of(comfy, run_workflow(comfy, prompt), prompt, "SaveImage")[0]
    painted = np.zeros((256, 320), bool)
    for y0, x0, y1, x1 in PAINTED:
        painted[y0:y1, x0:x1] = True
    diff = changed(out, squares_image())
    for y0, x0, y1, x1 in PAINTED:
        assert diff[y0:y1, x0:x1].mean() > 0.5
    assert not (diff & ~near(painted, 5)).any()  # Zoom Crop's grow is 4


@needs_cas
def test_pal_mask_drives_inpaint_crop_and_stitch(comfy):
    """Workflow 09: PAL Detect's mask -> Inpaint Crop -> sampler -> Inpaint Stitch."""
    prompt = workflow("09_pal_mask_into_inpaint_crop_and_stitch")
    out = images_of(comfy, run_workflow(comfy, prompt), prompt, "SaveImage")[0]
    diff = changed(out, squares_image())
    assert len(SQUARES) == 2
    for y0, x0, y1, x1 in SQUARES:  # PAL's mask reached Inpaint Crop: the squares were repainted
        assert diff[y0:y1, x0:x1].mean() > 0.9
    # Away from the squares, only CropAndStitch's own stitch seam changes: its blend reaches the
    # top and bottom rows of the image (3a57816), whatever mask it is given.
    assert not (diff[16:-16] & ~near(square_mask(), 48)[16:-16]).any()
