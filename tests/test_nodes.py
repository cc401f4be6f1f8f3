"""ComfyUI nodes called directly with ComfyUI's tensor layouts (no ComfyUI needed)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, disc_dilate, squares_image, synthetic_image

sys.path.insert(0, str(ROOT))
import nodes  # noqa: E402  (the pack's nodes/ package)
from nodes.model_node import PALLoadModel  # noqa: E402
from nodes.zoom_node import PALComposite, PALZoomCrop  # noqa: E402


@pytest.fixture
def pal_model(tiny_st, monkeypatch):
    monkeypatch.setenv("PAL4VST_MODELS", str(tiny_st.parent))
    return PALLoadModel().load(tiny_st.name, "cpu", "fp32")[0]


ZOOM = dict(context=1.5, work_size=64, min_size=32, max_regions=0, grow=4, min_area=0, feather=2)


def _batch(*shapes):
    return torch.from_numpy(np.stack([synthetic_image(h, w, i) for i, (h, w) in enumerate(shapes)]).astype(np.float32) / 255)


def test_every_node_is_registered_with_a_display_name():
    assert set(nodes.NODE_CLASS_MAPPINGS) == set(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        assert "required" in spec and hasattr(cls, cls.FUNCTION)
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        assert cls.CATEGORY == "image/PAL4VST"
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS["PALDetect"] == "PAL Detect"


def test_loader_lists_releases_and_files(tiny_st, monkeypatch):
    monkeypatch.setenv("PAL4VST_MODELS", str(tiny_st.parent))
    choices = PALLoadModel.INPUT_TYPES()["required"]["model"][0]
    assert choices[:3] == ["unified", "stylegan2", "portrait_shadow_removal"] and tiny_st.name in choices


def test_detect_outputs(pal_model):
    node = nodes.NODE_CLASS_MAPPINGS["PALDetect"]()
    images = _batch((64, 96), (64, 96))
    out = node.detect(pal_model, images, threshold=0.5, grow=0, min_area=0, mode="whole")
    mask, prob, overlay, pars = out["result"]
    assert mask.shape == prob.shape == (2, 64, 96) and overlay.shape == (2, 64, 96, 3)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    assert len(pars) == 2 and pars[0] == pytest.approx(mask[0].mean().item())
    assert out["ui"]["par"] == pars and "PAR" in out["ui"]["text"][0]
    grown = node.detect(pal_model, images, threshold=0.5, grow=4, min_area=0, mode="whole")["result"][0]
    assert mask.sum() > 0 and grown.sum() > mask.sum()


def test_score_picks_the_best(bright_st, monkeypatch):
    monkeypatch.setenv("PAL4VST_MODELS", str(bright_st.parent))
    pal_model = PALLoadModel().load(bright_st.name, "cpu", "fp32")[0]
    node = nodes.NODE_CLASS_MAPPINGS["PALScore"]()
    big, small = ((20, 20, 100, 110),), ((40, 40, 70, 70),)
    arrays = [squares_image(128, 128, big), squares_image(128, 128, ()), squares_image(128, 128, small)]
    images = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255)
    pars, best, ordered, indices, summary = node.score(pal_model, images, threshold=0.5)["result"]
    assert indices == [1, 2, 0] and pars[1] == 0.0 < pars[2] < pars[0]  # clean, small, big
    assert torch.equal(best[0], images[1]) and torch.equal(ordered[2], images[0])
    assert summary.startswith("1. image 1")


def test_zoom_crop_inpaint_composite_roundtrip():
    images = _batch((80, 120), (80, 120))
    masks = torch.zeros(2, 80, 120)
    masks[0, 10:30, 20:40] = 1
    masks[1, 50:70, 90:110] = 1
    masks[1, 5:8, 5:8] = 1
    crops, cmasks, state = PALZoomCrop().crop(images, masks, **ZOOM)
    assert crops.shape[1:] == (64, 64, 3) and cmasks.shape[0] == crops.shape[0] == len(state.records)
    assert {r.image_index for r in state.records} == {0, 1}
    same = PALComposite().composite(images, crops, state)[0]
    assert torch.equal(same, images)  # identity "inpaint" gives the original, bit for bit
    changed = PALComposite().composite(images, 1.0 - crops, state)[0]
    for i in range(2):  # only within the masks grown by `grow` (4), computed here
        allowed = torch.from_numpy(disc_dilate(masks[i].numpy() > 0, 4 + 1))
        assert torch.equal(changed[i][~allowed], images[i][~allowed])
        assert not torch.equal(changed[i], images[i])


def test_no_artifacts_passes_through_without_empty_tensors():
    images = _batch((50, 70))
    crops, cmasks, state = PALZoomCrop().crop(images, torch.zeros(1, 50, 70), **ZOOM)
    assert crops.shape == (1, 64, 64, 3) and cmasks.shape == (1, 64, 64) and cmasks.sum() == 0
    assert state.placeholder
    assert torch.equal(PALComposite().composite(images, crops * 0.3, state)[0], images)


def test_composite_refuses_mismatched_crops():
    images = _batch((60, 60))
    masks = torch.zeros(1, 60, 60)
    masks[0, 20:30, 20:30] = 1
    crops, _, state = PALZoomCrop().crop(images, masks, **{**ZOOM, "grow": 0, "feather": 0})
    with pytest.raises(ValueError, match="inpainted crops"):
        PALComposite().composite(images, torch.cat([crops, crops]), state)
    with pytest.raises(ValueError, match="expects 64x64"):
        PALComposite().composite(images, torch.zeros(1, 72, 72, 3), state)


def test_pack_entry_point_never_raises(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("pal4vst_pack", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pal4vst_pack", module)
    spec.loader.exec_module(module)
    assert set(module.NODE_CLASS_MAPPINGS) == set(nodes.NODE_CLASS_MAPPINGS)
    assert module.WEB_DIRECTORY == "./web" and (ROOT / "web" / "pal4vst.js").is_file()


def test_every_checkpoint_a_workflow_asks_for_is_documented():
    """A newcomer must learn from the README which file each example workflow loads and where to
    get it (workflow 03 once asked SD1.5 users for SD2's inpainting file)."""
    import json

    readme = (ROOT / "README.md").read_text()
    files = sorted((ROOT / "example_workflows").rglob("*.json"))
    assert len(files) >= 8
    names = set()
    for f in files:
        data = json.loads(f.read_text())
        nodes_ = data["nodes"] if "nodes" in data else [{"type": v["class_type"], **v} for v in data.values()]
        for n in nodes_:
            if n["type"] == "CheckpointLoaderSimple":
                names.add(n["widgets_values"][0] if "widgets_values" in n else n["inputs"]["ckpt_name"])
    assert names and all(f"`{name}`" in readme for name in names), names
