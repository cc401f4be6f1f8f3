"""The core repair loop: exact on float images (ComfyUI's), pass bookkeeping, stopping rules."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SQUARES, square_mask, squares_image
from pal4vst.detect import Detector
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.settings import RefineOptions, RegionOptions
from pal4vst.zoom.inpaint import OpenCVInpainter
from pal4vst.zoom.refine import refine


@pytest.fixture(scope="module")
def detector(bright_st):
    return Detector(load_checkpoint(bright_st), device="cpu", dtype="fp32")


def darken(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """An inpainter that paints the masked pixels dark: the bright model then finds nothing."""
    out = images.copy()
    out[masks] = 0.1 if images.dtype != np.uint8 else 25
    return out


def test_float_images_change_only_inside_the_repaired_mask(detector):
    img = squares_image().astype(np.float32) / 255.0
    res = refine(img, detector, OpenCVInpainter(), RegionOptions(merge=False))
    mask = res.repaired.astype(bool)
    assert res.image.dtype == np.float32 and res.passes == 1 and mask.any()
    assert np.array_equal(res.image[~mask], img[~mask])  # bit for bit, in float
    assert (res.image[square_mask()] != img[square_mask()]).any()
    assert len(res.painted) == len(res.crops) == 1
    assert res.painted[0].shape == res.crops[0].images.shape == (len(SQUARES), 512, 512, 3)
    assert res.painted[0].dtype == np.float32


def test_passes_stop_at_the_target_par(detector):
    img = squares_image()
    res = refine(img, detector, darken, passes=RefineOptions(iterations=3, target_par=0.01))
    assert res.par_before > 0.1 and res.par_after <= 0.01 and res.passes == 1  # clean after one pass


def test_a_later_pass_that_does_not_lower_the_par_is_discarded(detector):
    img = squares_image()
    res = refine(img, detector, lambda images, masks: images, passes=RefineOptions(iterations=3))
    assert res.passes == 1 and res.pars == [res.par_before, res.par_before]  # the second pass was dropped
    assert np.array_equal(res.image, img)


def test_clean_images_are_left_alone(detector):
    img = squares_image(squares=())
    res = refine(img, detector, darken, passes=RefineOptions(iterations=3))
    assert res.par_before == 0.0 and res.passes == 0 and res.image is img and not res.repaired.any()
    res = refine(squares_image(), detector, darken, passes=RefineOptions(min_par=0.5))
    assert res.passes == 0 and res.par_before > 0.1
