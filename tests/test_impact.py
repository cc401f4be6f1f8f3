"""PAL as Impact Pack SEGS and detectors, checked on the bright model's known regions (Impact
itself is not needed here; tests/integration/test_comfyui.py runs the real Impact nodes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, SQUARES, square_mask, squares_image

sys.path.insert(0, str(ROOT))
from nodes.impact import PALDetectorProvider, PALDetectSEGS, make_crop_region  # noqa: E402
from nodes.model_node import PALLoadModel  # noqa: E402


@pytest.fixture
def pal_model(bright_st, monkeypatch):
    monkeypatch.setenv("PAL4VST_MODELS", str(bright_st.parent))
    return PALLoadModel().load(bright_st.name, "cpu", "fp32")[0]


def _image(squares=SQUARES, h=256, w=320) -> torch.Tensor:
    return torch.from_numpy(squares_image(h, w, squares).astype(np.float32) / 255)[None]


def _segs(pal_model, image, **over):
    """PAL Detect (SEGS) as ComfyUI calls it: every input by name."""
    settings = dict(threshold=0.5, dilation=0, crop_factor=1.5, drop_size=10, mode="whole")
    return PALDetectSEGS().detect(pal_model, image, **{**settings, **over})


def test_segs_are_impacts_layout_one_seg_per_region(pal_model):
    image = _image()
    (shape, segs), = _segs(pal_model, image)
    assert shape == (256, 320) and len(segs) == len(SQUARES)
    for seg in segs:
        x1, y1, x2, y2 = seg.crop_region
        bx1, by1, bx2, by2 = seg.bbox
        assert all(type(v) is int for v in [*seg.crop_region, *seg.bbox])
        assert 0 <= x1 <= bx1 < bx2 <= x2 <= 320 and 0 <= y1 <= by1 < by2 <= y2 <= 256
        assert seg.cropped_mask.dtype == np.float32 and seg.cropped_mask.shape == (y2 - y1, x2 - x1)
        assert set(np.unique(seg.cropped_mask)) == {0.0, 1.0}
        assert torch.equal(seg.cropped_image, image[:, y1:y2, x1:x2, :])
        assert 0.5 < seg.confidence <= 1.0 and seg.label == "artifact" and seg.control_net_wrapper is None
    for sq in SQUARES:  # each white square lies in one SEG's mask
        y0, x0, y1_, x1_ = sq
        hit = [s for s in segs if s.crop_region[0] <= x0 and x1_ <= s.crop_region[2] and s.crop_region[1] <= y0]
        assert len(hit) == 1
        x1, y1, _, _ = hit[0].crop_region
        inside = hit[0].cropped_mask[y0 - y1:y1_ - y1, x0 - x1:x1_ - x1]
        assert inside.mean() > 0.9


def test_crop_factor_dilation_and_drop_size_mean_what_they_mean_in_impact(pal_model):
    image = _image(((100, 140, 140, 180),))  # one 40x40 square in the middle
    (_, [plain]), = _segs(pal_model, image, crop_factor=1.0)
    (_, [wide]), = _segs(pal_model, image, crop_factor=3.0)
    bw, bh = plain.bbox[2] - plain.bbox[0], plain.bbox[3] - plain.bbox[1]
    assert plain.crop_region == plain.bbox  # factor 1: the bbox itself
    cx, cy = (wide.crop_region[0] + wide.crop_region[2]) / 2, (wide.crop_region[1] + wide.crop_region[3]) / 2
    assert abs((wide.crop_region[2] - wide.crop_region[0]) - 3 * bw) <= 1
    assert abs((wide.crop_region[3] - wide.crop_region[1]) - 3 * bh) <= 1
    assert abs(cx - (plain.bbox[0] + plain.bbox[2]) / 2) <= 1 and abs(cy - (plain.bbox[1] + plain.bbox[3]) / 2) <= 1
    (_, [grown]), = _segs(pal_model, image, dilation=9, crop_factor=3.0)
    (_, [shrunk]), = _segs(pal_model, image, dilation=-9, crop_factor=3.0)
    assert grown.crop_region == shrunk.crop_region == wide.crop_region
    # Impact's dilation is a 9x9 square kernel (cv2.dilate / erode): the same as the max / min over
    # every shift of -4..4 in both directions, computed here in numpy
    base = wide.cropped_mask
    assert 0 < base.sum() < base.size
    assert np.array_equal(grown.cropped_mask, _square(base, 4, np.max))
    assert np.array_equal(shrunk.cropped_mask, _square(base, 4, np.min))


def _square(mask: np.ndarray, r: int, pick) -> np.ndarray:
    """Max (dilate) or min (erode) over a (2r+1) square; erosion treats outside as kept (cv2's border)."""
    fill = 0 if pick is np.max else 1
    padded = np.pad(mask, r, constant_values=fill)
    h, w = mask.shape
    return pick(np.stack([padded[dy:dy + h, dx:dx + w] for dy in range(2 * r + 1) for dx in range(2 * r + 1)]),
                axis=0)


def test_drop_size_needs_wider_and_taller(pal_model):
    """A region 80 wide and 40 tall: kept while both sides exceed drop_size, dropped as soon as
    one does not (a rule of 'wider or taller' would keep it at 60)."""
    image = _image(((100, 100, 140, 180),))
    (_, [seg]), = _segs(pal_model, image, crop_factor=1.0, drop_size=1)
    bw, bh = seg.bbox[2] - seg.bbox[0], seg.bbox[3] - seg.bbox[1]
    assert bw > bh + 20
    kept = lambda size: len(_segs(pal_model, image, crop_factor=1.0, drop_size=size)[0][1])  # noqa: E731
    assert kept(bh - 1) == 1 and kept(bh) == 0 and kept((bw + bh) // 2) == 0 and kept(bw) == 0


def test_crop_region_is_shifted_inside_the_image():
    assert make_crop_region(100, 100, [0, 0, 20, 20], 2.0) == [0, 0, 40, 40]
    assert make_crop_region(100, 100, [90, 90, 100, 100], 3.0) == [70, 70, 100, 100]
    assert make_crop_region(50, 100, [10, 10, 40, 20], 3.0) == [0, 0, 50, 30]  # wider than the image: clipped


class Hook:
    """Impact's DETAILER_HOOK protocol: post_crop_region and post_detection."""

    def __init__(self):
        self.calls = []

    def post_crop_region(self, w, h, item_bbox, crop_region):
        self.calls.append((w, h, list(item_bbox)))
        return item_bbox  # crop to the bbox itself

    def post_detection(self, segs):
        self.calls.append("post_detection")
        return segs[0], segs[1][:1]


def test_detector_protocol_calls_the_detailer_hook(pal_model):
    bbox_detector, segm_detector = PALDetectorProvider().provide(pal_model, "whole")
    assert bbox_detector is segm_detector
    hook = Hook()
    bbox_detector.setAux("face")  # FaceDetailer's text hint: accepted, ignored
    shape, segs = bbox_detector.detect(_image(), 0.5, 0, 3.0, 10, detailer_hook=hook)
    assert len(segs) == 1 and hook.calls[-1] == "post_detection"
    assert len([c for c in hook.calls if c != "post_detection"]) == len(SQUARES)
    assert segs[0].crop_region == segs[0].bbox  # the hook's region was used


def test_detect_combined_is_the_detection_mask(pal_model):
    detector, _ = PALDetectorProvider().provide(pal_model, "whole")
    mask = detector.detect_combined(_image(), 0.5, 0)
    assert isinstance(mask, torch.Tensor) and mask.shape == (256, 320) and mask.dtype == torch.float32
    truth = torch.from_numpy(square_mask())
    assert (mask.bool() & truth).sum() / (mask.bool() | truth).sum() > 0.7
    assert detector.detect_combined(_image(), 0.5, 7).sum() > mask.sum()


def test_batches_are_refused_clearly(pal_model):
    with pytest.raises(ValueError, match="one image at a time"):
        _segs(pal_model, torch.cat([_image(), _image()]))
