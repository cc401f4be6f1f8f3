"""A real ComfyUI with this pack in custom_nodes: nodes listed, example workflow and a zoom-in graph run.

Skipped unless ``COMFYUI_DIR`` names a ComfyUI checkout whose requirements are installed in
``COMFYUI_PYTHON`` (default: this Python). Starts ``main.py --cpu`` on 127.0.0.1 with a temporary
base directory holding this pack, a tiny random model and a test image.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from comfy_host import COMFY, comfyui, get, queue, run
from conftest import ROOT, synthetic_image
from pal4vst.testing import random_checkpoint

pytestmark = pytest.mark.skipif(not COMFY, reason="set COMFYUI_DIR to a ComfyUI checkout to run")
NODES = ["PALLoadModel", "PALDetect", "PALScore", "PALZoomCrop", "PALComposite", "PALDetailer", "PALDetectSEGS",
         "PALDetectorProvider"]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    random_checkpoint(base / "models" / "pal4vst" / "tiny.safetensors", "tiny", artifact_bias=0.5)
    (base / "input").mkdir()
    Image.fromarray(synthetic_image(192, 256, 5)).save(base / "input" / "example.png")
    with comfyui(base) as (url, _):
        yield url, base


def test_object_info_lists_every_node(comfy):
    url, _ = comfy
    info = get(f"{url}/object_info")
    for name in NODES:
        assert name in info, name
    assert "tiny.safetensors" in info["PALLoadModel"]["input"]["required"]["model"][0]
    assert "/extensions/pal4vst/pal4vst.js" in get(f"{url}/extensions")


def test_example_workflow_detect_and_score(comfy):
    url, base = comfy
    prompt = json.loads((ROOT / "example_workflows" / "api" / "01_detect_and_score.json").read_text())
    for node in prompt.values():
        if node["class_type"] == "PALLoadModel":
            node["inputs"].update(model="tiny.safetensors", device="cpu")
    outputs = run(url, prompt)
    detect_id = next(k for k, v in prompt.items() if v["class_type"] == "PALDetect")
    par = outputs[detect_id]["par"][0]
    assert 0.0 < par < 1.0
    assert sum(len(o.get("images", [])) for o in outputs.values()) == 3


def test_zoom_crop_stand_in_sampler_composite(comfy):
    """Zoom Crop -> ImageInvert (standing in for the sampler) -> Composite -> SaveImage."""
    url, base = comfy
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "2": {"class_type": "PALLoadModel", "inputs": {"model": "tiny.safetensors", "device": "cpu", "dtype": "fp32"}},
        "3": {"class_type": "PALDetect", "inputs": {"pal_model": ["2", 0], "image": ["1", 0], "threshold": 0.5,
                                                     "grow": 0, "min_area": 0, "mode": "whole"}},
        "4": {"class_type": "PALZoomCrop", "inputs": {"image": ["1", 0], "mask": ["3", 0], "context": 1.5,
                                                       "work_size": 128, "min_size": 32, "max_regions": 0, "grow": 4,
                                                       "min_area": 0, "feather": 0}},
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["4", 0]}},
        "6": {"class_type": "PALComposite", "inputs": {"image": ["1", 0], "inpainted": ["5", 0], "pal_crops": ["4", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "pal_it"}},
        "8": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "pal_it_mask"}},
    }
    outputs = run(url, prompt)
    saved = base / "output" / outputs["7"]["images"][0]["filename"]
    mask_png = base / "output" / outputs["9"]["images"][0]["filename"]
    src = np.asarray(Image.open(base / "input" / "example.png").convert("RGB"))
    out = np.asarray(Image.open(saved).convert("RGB"))
    mask = np.asarray(Image.open(mask_png).convert("L")) > 127
    assert out.shape == src.shape
    assert mask.any(), "the biased tiny model should mark something"
    changed = (out != src).any(axis=2)
    assert changed.any()
    # Grown by 4 px: everything that changed lies within 6 px of the detected mask.
    import cv2

    near = cv2.dilate(mask.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert not (changed & ~near).any()


NO_OPENCV = """import sys


class _NoOpenCV:  # this Python, as if OpenCV were not installed (ComfyUI itself needs none)
    def find_spec(self, name, path=None, target=None):
        if name == "cv2" or name.startswith("cv2."):
            raise ModuleNotFoundError("No module named 'cv2'", name="cv2")
        return None


sys.meta_path.insert(0, _NoOpenCV())
"""


def test_without_opencv_start_up_and_nodes_name_the_fix(tmp_path):
    """A hand install (pip install -r requirements.txt) has no OpenCV: one line at start-up names
    it with the command, and the workflow's first node fails with that line, not an import error."""
    hide = tmp_path / "hide_opencv"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(NO_OPENCV)
    base = tmp_path / "base"
    random_checkpoint(base / "models" / "pal4vst" / "tiny.safetensors", "tiny")
    (base / "input").mkdir()
    Image.fromarray(synthetic_image(64, 64, 1)).save(base / "input" / "example.png")
    with comfyui(base, {"PYTHONPATH": str(hide)}) as (url, log_path):
        lines = [x for x in log_path.read_text().splitlines() if "PAL4VST" in x]
        assert len(lines) == 1, lines
        assert "opencv-python-headless (import cv2)" in lines[0] and "-m pip install opencv-python-headless" in lines[0]
        assert "PALDetect" in get(f"{url}/object_info")  # the nodes are there: workflows open
        prompt = json.loads((ROOT / "example_workflows" / "api" / "01_detect_and_score.json").read_text())
        for node in prompt.values():
            if node["class_type"] == "PALLoadModel":
                node["inputs"].update(model="tiny.safetensors", device="cpu")
        entry = queue(url, prompt)
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert entry["status"]["status_str"] == "error" and len(errors) == 1
    assert errors[0]["exception_type"].endswith("MissingRequirement")
    assert "-m pip install opencv-python-headless" in errors[0]["exception_message"]
