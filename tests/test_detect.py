"""Detection: every input layout, each image at its own resolution, PAR, tiling, precision."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pal4vst.detect import Detector
from pal4vst.tiling import tile_starts
from pal4vst.masks import par
from pal4vst.scoring.ranking import rank

from conftest import square_mask, squares_image, synthetic_image
from pal4vst.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def det(tiny_model):
    return Detector(tiny_model, device="cpu", dtype="fp32")


def test_result_is_at_the_images_own_resolution(det):
    for h, w in [(64, 64), (37, 91), (300, 120)]:
        r = det(synthetic_image(h, w))
        assert r.prob.shape == r.mask.shape == (h, w)
        assert r.prob.dtype == np.float32 and r.mask.dtype == np.bool_
        assert 0.0 <= r.prob.min() and r.prob.max() <= 1.0
        assert np.array_equal(r.mask, r.prob > 0.5) or np.mean(r.mask != (r.prob > 0.5)) < 1e-3
        assert r.par == pytest.approx(r.mask.mean())
        assert r.size == (w, h)


def test_random_model_marks_something_but_not_everything(det):
    r = det(synthetic_image(128, 128, seed=1))
    assert 0.0 < r.par < 1.0


def test_preprocessing_is_the_release_pipeline(det, tiny_model):
    """cv2 bilinear resize to the input size, ImageNet normalisation, logits resized back."""
    img = synthetic_image(100, 150)
    s = tiny_model.config.input_size
    x = cv2.resize(img, (s, s), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = (x - np.array(tiny_model.config.mean, np.float32)) / np.array(tiny_model.config.std, np.float32)
    with torch.no_grad():
        logits = tiny_model.module(torch.from_numpy(x).permute(2, 0, 1)[None])
        up = torch.nn.functional.interpolate(logits, size=(100, 150), mode="bilinear", align_corners=False)
        want = torch.softmax(up, 1)[0, 1].numpy()
    got = det(img).prob
    assert np.abs(got - want).max() < 1e-5


def test_all_input_layouts_agree(det):
    img = synthetic_image(48, 80)
    ref = det(img).prob
    layouts = {
        "pil": Image.fromarray(img),
        "float": img.astype(np.float32) / 255.0,
        "uint16": img.astype(np.uint16) * 257,
        "rgba": np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]),
    }
    for name, x in layouts.items():
        assert np.abs(det(x).prob - ref).max() < 1e-4, name
    # ComfyUI IMAGE: [B, H, W, C] float 0..1
    batch = torch.from_numpy(np.stack([img, img[::-1].copy()]).astype(np.float32) / 255.0)
    out = det(batch)
    assert len(out) == 2 and out[0].prob.shape == (48, 80)
    assert np.abs(out[0].prob - ref).max() < 0.02  # torch resize vs cv2 resize of uint8


def test_grayscale_inputs(det):
    gray = synthetic_image(40, 40)[..., 0]
    assert det(gray).prob.shape == (40, 40)
    assert det(Image.fromarray(gray, "L")).prob.shape == (40, 40)


def test_batches_are_split_and_order_kept(tiny_model):
    d = Detector(tiny_model, device="cpu", dtype="fp32", batch=2)
    imgs = [synthetic_image(50 + i, 60, seed=i) for i in range(5)]
    batched = d(imgs)
    single = [d(im) for im in imgs]
    assert len(batched) == len(single) == 5
    for a, b in zip(batched, single):
        assert a.prob.shape == b.prob.shape
        assert np.abs(a.prob - b.prob).max() < 1e-5


def test_one_pixel_image(det):
    r = det(np.full((1, 1, 3), 128, np.uint8))
    assert r.prob.shape == (1, 1)


def test_huge_image_runs_at_fixed_network_size(det):
    big = np.zeros((12000, 12000, 3), np.uint8)
    big[::97] = 255
    r = det(big)
    assert r.mask.shape == (12000, 12000)


def test_tiled_mode(tiny_model):
    d = Detector(tiny_model, device="cpu", dtype="fp32", mode="tiled", tile_overlap=16)
    img = synthetic_image(150, 230)
    r = d(img)
    assert r.prob.shape == (150, 230)
    small = d(synthetic_image(40, 40))  # smaller than a tile: whole-image behaviour
    assert small.prob.shape == (40, 40)


def test_tiled_equals_whole_up_to_the_network_size(tiny_model):
    """The README: on images no larger than the network's input (64 here, 512 for the releases)
    tiled mode is the release's whole-image mode, value for value."""
    whole = Detector(tiny_model, device="cpu", dtype="fp32")
    tiled = Detector(tiny_model, device="cpu", dtype="fp32", mode="tiled", tile_overlap=16)
    size = tiny_model.config.input_size
    for h, w in ((size, size), (40, 50), (20, 200)):  # (20, 200): a side under the tile size
        img = synthetic_image(h, w, seed=h + w)
        a, b = whole(img), tiled(img)
        assert np.allclose(a.prob, b.prob, atol=1e-6) and np.array_equal(a.mask, b.mask), (h, w)


def test_tiles_find_small_artifacts_where_they_are(bright_st):
    """Tiled mode at the image's own scale, on the bright model (its artifacts are the bright
    squares): the tiles' blend puts the marks on the squares, more tightly than the 64 px whole
    resize does. A tile placed or blended at the wrong offset would miss them."""
    model = load_checkpoint(bright_st)
    squares = ((20, 30, 44, 54), (100, 200, 124, 236), (200, 60, 230, 84))
    img = squares_image(256, 320, squares)
    truth = square_mask(256, 320, squares)
    tiled = Detector(model, device="cpu", dtype="fp32", mode="tiled", tile_overlap=16)(img).mask
    whole = Detector(model, device="cpu", dtype="fp32")(img).mask

    def iou(m):
        return (m & truth).sum() / (m | truth).sum()

    assert iou(tiled) > 0.8 and iou(tiled) > iou(whole) + 0.1, (iou(tiled), iou(whole))


def test_tile_starts_cover_with_overlap():
    for length, tile, overlap in [(1000, 512, 128), (513, 512, 64), (2048, 512, 128), (512, 512, 0)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        for a, b in zip(starts, starts[1:]):
            assert b - a <= tile - overlap


def test_bf16_stays_close_to_fp32(tiny_model):
    """The fast path's accuracy bound: probability within 0.02, mask IoU >= 0.99 on average."""
    d32 = Detector(tiny_model, device="cpu", dtype="fp32")
    d16 = Detector(tiny_model, device="cpu", dtype="bf16")
    ious, worst = [], 0.0
    for seed in range(4):
        img = synthetic_image(96, 96, seed=seed)
        a, b = d32(img), d16(img)
        assert 0 < a.mask.mean() < 1  # masks with something to agree on
        worst = max(worst, float(np.abs(a.prob - b.prob).max()))
        union = np.logical_or(a.mask, b.mask).sum()
        ious.append(np.logical_and(a.mask, b.mask).sum() / union)
    assert worst < 0.02
    # Random weights leave far more pixels near p = 0.5 than a trained model, so the IoU bound
    # is a little looser here than the 0.99 measured on real weights.
    assert np.mean(ious) >= 0.98


def test_threshold_changes_the_mask(tiny_model):
    lo = Detector(tiny_model, device="cpu", dtype="fp32", threshold=0.2)(synthetic_image(64, 64))
    hi = Detector(tiny_model, device="cpu", dtype="fp32", threshold=0.8)(synthetic_image(64, 64))
    assert hi.mask.any() and lo.mask.sum() > hi.mask.sum()
    assert np.all(lo.mask[hi.mask])


def test_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="mode"):
        Detector(tiny_model, mode="sliding")
    with pytest.raises(ValueError, match="threshold"):
        Detector(tiny_model, threshold=2.0)
    with pytest.raises(ValueError, match="dtype"):
        Detector(tiny_model, dtype="int8")
    with pytest.raises(ValueError, match=r"C in 1, 3, 4; got shape \(5, 5, 2\)"):
        Detector(tiny_model, device="cpu")(np.zeros((5, 5, 2), np.uint8))


def test_par_and_ranking():
    m = np.zeros((10, 10), bool)
    m[:2] = True
    assert par(m) == pytest.approx(0.2)
    assert par(np.zeros((0, 0))) == 0.0
    ranked = rank([0.3, 0.1, 0.1, 0.0])
    assert [r.index for r in ranked] == [3, 1, 2, 0] and ranked[0].rank == 1


def test_reading_is_per_call_placement_is_once(tiny_model):
    """Threshold and mode are read per call (or bound with reading()), with the same result as a
    detector built with them; the module is placed once."""
    from pal4vst.options import OptionError

    img = synthetic_image(70, 90, 5)
    base = Detector(tiny_model, device="cpu", dtype="fp32")
    for t in (0.3, 0.7):
        built = Detector(tiny_model, device="cpu", dtype="fp32", threshold=t)(img)
        assert np.array_equal(base(img, threshold=t).mask, built.mask)
        assert np.array_equal(base.reading(threshold=t)(img).mask, built.mask)
    assert base(img, threshold=0.3).mask.sum() > base(img).mask.sum() > base(img, threshold=0.7).mask.sum()
    assert base.options.threshold == 0.5  # a call's reading does not stick
    tiled = Detector(tiny_model, device="cpu", dtype="fp32", mode="tiled")(synthetic_image(150, 230))
    assert np.array_equal(base(synthetic_image(150, 230), mode="tiled").prob, tiled.prob)
    with pytest.raises(OptionError, match="threshold must be between"):
        base.reading(threshold=1.5)


def test_a_pal_model_keeps_one_detector(tiny_st, monkeypatch):
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT))
    from nodes.model_node import PALLoadModel

    monkeypatch.setenv("PAL4VST_MODELS", str(tiny_st.parent))
    pal_model = PALLoadModel().load(tiny_st.name, "cpu", "fp32")[0]
    a, b = pal_model.detector(threshold=0.3), pal_model.detector(threshold=0.6, mode="tiled")
    assert a.detector is b.detector and (a.threshold, b.threshold, b.mode) == (0.3, 0.6, "tiled")
    pal_model.offload()
    assert pal_model.detector().detector is a.detector  # placed again, not rebuilt
