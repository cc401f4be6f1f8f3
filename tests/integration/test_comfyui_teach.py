"""Teach PAL in a real ComfyUI (issue #22), through the shipped workflows 11 and 12: PAL's mask
written for the mask editor, corrected through ComfyUI's own mask upload (what the mask editor's
Save does), saved into a set, a fine-tune judged by folds on every example, the new model listed by PAL
Load Model without a restart and used to detect; Cancel keeps the best model so far.

Skipped unless ``COMFYUI_DIR`` names a ComfyUI checkout (see comfy_host.py). The known answer is
conftest's ``taught``: a tiny base that knows the "noise" kind is taught the "solid" kind.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, artifact_iou
from comfy_host import COMFY, comfyui, get, run, submit, wait

pytestmark = pytest.mark.skipif(not COMFY, reason="set COMFYUI_DIR to a ComfyUI checkout to run")
WORKFLOWS = ROOT / "example_workflows" / "api"


def _workflow(name: str, **widgets) -> dict:
    """An API workflow with widget values replaced by class: ``{"LoadImage": {"image": ...}}``."""
    prompt = json.loads((WORKFLOWS / f"{name}.json").read_text())
    for node in prompt.values():
        node["inputs"].update(widgets.get(node["class_type"], {}))
    return prompt


def _upload_mask(url: str, original: str, truth: np.ndarray) -> str:
    """What the mask editor's Save sends: the painted mask as the alpha of an image (painted =
    transparent), to /upload/mask against the original; returns Load Image's value for the result."""
    buf = io.BytesIO()
    Image.fromarray(np.dstack([np.zeros((*truth.shape, 3), np.uint8),
                               np.where(truth, 0, 255).astype(np.uint8)]), "RGBA").save(buf, format="PNG")
    boundary = uuid.uuid4().hex
    fields = {"type": "input", "subfolder": "clipspace",
              "original_ref": json.dumps({"filename": original, "type": "input", "subfolder": ""})}
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                    for k, v in fields.items())
    name = f"clipspace-mask-{uuid.uuid4().hex[:8]}.png"
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
             "Content-Type: image/png\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{url}/upload/mask", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
    return f"{answer['subfolder']}/{answer['name']} [input]"


def test_teach_in_a_real_comfyui(taught, tmp_path):
    base = tmp_path / "base"
    (base / "models" / "pal4vst").mkdir(parents=True)
    (base / "input").mkdir(parents=True)
    shutil.copy(taught["base"], base / "models" / "pal4vst" / "noise_base.safetensors")
    pairs = sorted(taught["examples"].glob("example_*_mask.png"))
    for pair in pairs:
        shutil.copy(pair.with_name(pair.name.replace("_mask", "")), base / "input")
    new_image = next((taught["new"] / "images" / "val").glob("*.png"))
    shutil.copy(new_image, base / "input" / "new_kind.png")
    with comfyui(base) as (url, log):
        # workflow 11, step 1 then (after the mask editor) step 2, for each example
        for pair in pairs:
            name = pair.name.replace("_mask", "")
            out = run(url, _workflow("11_teach_detect_correct_save", LoadImage={"image": name},
                                     PALLoadModel={"model": "noise_base.safetensors"}))
            edit = next(o for o in out.values() if "images" in o and o["images"][0]["type"] == "input")
            written = edit["images"][0]["filename"]
            alpha = np.asarray(Image.open(base / "input" / written).getchannel("A"))
            assert alpha.shape == (96, 96) and set(np.unique(alpha)) <= {0, 255}  # PAL's mask, ready to correct
            corrected = _upload_mask(url, written, np.asarray(Image.open(pair)) > 0)
            out = run(url, {"1": {"class_type": "LoadImage", "inputs": {"image": corrected}},
                            "2": {"class_type": "PALSaveExample", "inputs": {
                                "image": ["1", 0], "mask": ["1", 1], "set_name": "my gen", "name": "example"}}})
            said = out["2"]["text"][0]
        assert f"my gen: {len(pairs)} examples" in said
        saved = base / "models" / "pal4vst" / "examples" / "my gen"
        for mine, truth in zip(sorted(saved.glob("*_mask.png")), pairs):
            assert np.array_equal(np.asarray(Image.open(mine)) > 0, np.asarray(Image.open(truth)) > 0)
        # workflow 12: fine-tune (at the tiny model's own learning rate), detect with the result
        fine = get(f"{url}/object_info/PALFineTune")["PALFineTune"]["input"]["required"]["example_set"][0]
        assert "my gen" in fine  # the set is listed without a restart
        prompt = _workflow("12_teach_finetune_and_use", PALLoadModel={"model": "noise_base.safetensors"},
                           PALFineTune={"example_set": "my gen", "model_name": "taught"},
                           LoadImage={"image": "new_kind.png"})
        t0 = time.time()
        out = run(url, prompt)
        seconds = time.time() - t0
        ft = next(k for k, v in prompt.items() if v["class_type"] == "PALFineTune")
        detect = next(k for k, v in prompt.items() if v["class_type"] == "PALDetect")
        text = out[ft]["text"][0]
        assert text.startswith("Better: artifact IoU") and "taught.safetensors" in text and "95% interval" in text
        assert "this model then learned from all" in text
        model = base / "models" / "pal4vst" / "taught.safetensors"
        report = json.loads(model.with_suffix(".json").read_text())
        assert report["better"] and report["iou_after"] > report["iou_before"] + 0.25
        assert out[detect]["par"][0] > 0  # the fine-tuned model marks the new kind
        loader = get(f"{url}/object_info/PALLoadModel")["PALLoadModel"]["input"]["required"]["model"][0]
        assert "taught.safetensors" in loader  # PAL Load Model lists it, no restart
        out = run(url, {"1": {"class_type": "PALLoadModel", "inputs": {"model": "taught.safetensors", "device": "cpu",
                                                                       "dtype": "fp32"}},
                        "2": {"class_type": "LoadImage", "inputs": {"image": "new_kind.png"}},
                        "3": {"class_type": "PALDetect", "inputs": {"pal_model": ["1", 0], "image": ["2", 0],
                                                                    "threshold": 0.5, "grow": 0, "min_area": 0,
                                                                    "mode": "whole"}},
                        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 2]}}})
        assert out["3"]["par"][0] > 0
        # Cancel: a long fine-tune interrupted keeps the best model so far
        long = _workflow("12_teach_finetune_and_use", PALLoadModel={"model": "noise_base.safetensors"},
                         PALFineTune={"example_set": "my gen", "model_name": "stopped", "steps": 20000},
                         LoadImage={"image": "new_kind.png"})
        pid = submit(url, long)
        threading.Timer(8.0, lambda: urllib.request.urlopen(
            urllib.request.Request(f"{url}/interrupt", data=b"", method="POST"), timeout=30)).start()
        entry = wait(url, pid)
        stopped = base / "models" / "pal4vst" / "stopped.safetensors"
        rec = json.loads(stopped.with_suffix(".json").read_text())
        assert rec["stopped_early"] and 0 < rec["steps_run"] < 20000
        assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])
    assert artifact_iou(model, taught["new"]) > artifact_iou(taught["base"], taught["new"]) + 0.25
    print(f"fine-tune in ComfyUI: {seconds:.1f} s, IoU {report['iou_before']:.3f} -> {report['iou_after']:.3f}; "
          f"stopped at step {rec['steps_run']} of 20000")


def _upload_image(url: str, path) -> str:
    """What the upload button of an image input sends (/upload/image); returns the stored name."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\ninput\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{url}/upload/image", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["name"]


def test_mask_files_of_every_kind_through_pal_load_mask(tmp_path):
    """Mask files drawn elsewhere, uploaded as a user does, through PAL Load Mask into PAL Save
    Example in a real ComfyUI: each saved mask is what was drawn."""
    from conftest import drawn_marks, write_mask_kinds

    base, drawn = tmp_path / "base", tmp_path / "drawn"
    (base / "models" / "pal4vst").mkdir(parents=True)
    (base / "input").mkdir(parents=True)
    drawn.mkdir()
    marks = drawn_marks()
    kinds = write_mask_kinds(drawn, marks)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(drawn / "img.png")
    with comfyui(base) as (url, log):
        image = _upload_image(url, drawn / "img.png")
        uploaded = [_upload_image(url, path) for path in kinds.values()]
        spec = get(f"{url}/object_info/PALLoadMask")["PALLoadMask"]["input"]["required"]["image"]
        assert uploaded and set(uploaded) <= set(spec[0]) and spec[1].get("image_upload")
        for name in uploaded:
            out = run(url, {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
                            "2": {"class_type": "PALLoadMask", "inputs": {"image": name}},
                            "3": {"class_type": "PALSaveExample", "inputs": {
                                "image": ["1", 0], "mask": ["2", 0], "set_name": "drawn", "name": "example"}}})
            assert ("note:" in out["2"]["text"][0]) == name.endswith(".jpg")
    saved = sorted((base / "models" / "pal4vst" / "examples" / "drawn").glob("*_mask.png"))
    assert len(saved) == len(kinds)
    for path in saved:
        assert ((np.asarray(Image.open(path)) > 127) != marks).mean() < 0.01, path
