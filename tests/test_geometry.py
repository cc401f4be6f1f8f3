"""Regions, zoom crops and the composite: property tests (hypothesis) and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import disc_dilate
from pal4vst.zoom.composite import CompositeError, PasteOptions, composite, composite_batch, feather_alpha
from pal4vst.masks import binarize, count_components, fill_holes, grow_mask
from pal4vst.settings import RegionOptions
from pal4vst.zoom.crops import CropOptions, CropRecord, records_from_json, records_to_json, rle_decode, rle_encode, zoom_crops
from pal4vst.zoom.regions import find_regions
from pal4vst.zoom.squares import square_inside

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def image_and_mask(draw, max_side=120):
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    r = np.random.default_rng(seed)
    img = r.integers(0, 256, (h, w, 3), dtype=np.uint8)
    kind = draw(st.sampled_from(["blobs", "pixel", "edges", "full", "empty"]))
    mask = np.zeros((h, w), bool)
    if kind == "blobs":
        for _ in range(draw(st.integers(1, 5))):
            y, x = r.integers(0, h), r.integers(0, w)
            mask[y:y + r.integers(1, max(2, h // 2)), x:x + r.integers(1, max(2, w // 2))] = True
    elif kind == "pixel":
        mask[r.integers(0, h), r.integers(0, w)] = True
    elif kind == "edges":
        mask[0, :] = True
        mask[:, -1] = True
        mask[-1, 0] = True
    elif kind == "full":
        mask[:] = True
    return img, mask


@st.composite
def region_options(draw):
    return RegionOptions(
        grow=draw(st.integers(-3, 12)), min_area=draw(st.sampled_from([0, 1, 5, 30])), max_regions=draw(st.integers(0, 4)),
        merge=draw(st.booleans()), context=draw(st.sampled_from([1.0, 1.5, 2.0])), min_size=draw(st.sampled_from([8, 32, 64])),
        fill_holes=draw(st.booleans()),
    )


def must_find(mask: np.ndarray, ropts: RegionOptions) -> bool:
    """True where at least one region is certain: marks, no shrinking, every component kept."""
    return bool(mask.any()) and ropts.grow >= 0 and ropts.min_area <= 1


@SETTINGS
@given(image_and_mask(), region_options(), st.sampled_from([16, 64, 136]))
def test_identity_inpaint_returns_the_original_exactly(data, ropts, work):
    img, mask = data
    zc = zoom_crops([img], [mask], ropts, CropOptions(work_size=work))
    assert len(zc) > 0 or not must_find(mask, ropts)
    out = composite(img, zc.images, zc.records, paste=PasteOptions(feather=3))
    assert np.array_equal(out, img)


@SETTINGS
@given(image_and_mask(), region_options(), st.integers(0, 6), st.booleans())
def test_changes_stay_inside_the_repair_mask(data, ropts, feather, colour_match):
    img, mask = data
    zc = zoom_crops([img], [mask], ropts, CropOptions(work_size=32))
    assert len(zc) > 0 or not must_find(mask, ropts)
    painted = 255 - zc.images  # an inpainter that changes everything it is given
    paste = PasteOptions(feather=feather, colour_match=colour_match)
    out = composite(img, painted, zc.records, paste=paste)
    assert np.array_equal(out, composite(img, painted, zc.records, paste=paste, originals=zc.images))
    outside = zc.repair_masks[0] == 0
    assert np.array_equal(out[outside], img[outside])
    if not ropts.fill_holes:  # the repair mask itself is no bigger than the marks grown by `grow`
        allowed = disc_dilate(mask, max(ropts.grow, 0) + 1)
        assert not (zc.repair_masks[0].astype(bool) & ~allowed).any()
        assert np.array_equal(out[~allowed], img[~allowed])
    if len(zc) and feather == 0 and not colour_match:
        inside = zc.repair_masks[0] == 1
        assert (out[inside] != img[inside]).any()


@SETTINGS
@given(image_and_mask(), region_options())
def test_boxes_are_square_big_enough_and_inside_the_padded_image(data, ropts):
    img, mask = data
    h, w = img.shape[:2]
    zc = zoom_crops([img], [mask], ropts, CropOptions(work_size=64))
    grown, regions = find_regions(mask, ropts)
    assert len(zc) == len(regions) and (len(regions) > 0 or not must_find(mask, ropts))
    if ropts.max_regions:
        assert len(regions) <= ropts.max_regions
    union = np.zeros_like(grown)
    for rec, region in zip(zc.records, regions):
        x0, y0, side = rec.box
        l, t, r, b = rec.pad
        assert side >= ropts.min_size
        assert side >= np.ceil(ropts.context * region.longest_side) - 1e-9
        assert x0 + l >= 0 and y0 + t >= 0 and x0 + side - r <= w and y0 + side - b <= h
        assert x0 == -l or l == 0 and x0 >= 0
        bx0, by0, bx1, by1 = region.bbox
        assert x0 <= bx0 and y0 <= by0 and bx1 <= x0 + side and by1 <= y0 + side  # the region is inside
        ix0, iy0, ix1, iy1 = rec.inside
        union[iy0:iy1, ix0:ix1] |= rec.region_mask().astype(np.uint8)
    assert np.array_equal(union, grown)  # the records' masks are exactly the repair mask
    assert records_from_json(records_to_json(zc.records)) == zc.records  # wherever the regions lie
    assert zc.images.shape == (len(regions), 64, 64, 3) and zc.masks.shape == (len(regions), 64, 64)


def test_empty_mask_gives_no_crops_and_composite_is_a_no_op():
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    zc = zoom_crops([img], [np.zeros((50, 70), bool)])
    assert len(zc) == 0 and zc.images.shape == (0, 512, 512, 3)
    assert np.array_equal(composite(img, zc.images, zc.records), img)


def test_full_mask_single_region_padded():
    img = np.random.default_rng(0).integers(0, 256, (40, 100, 3), dtype=np.uint8)
    zc = zoom_crops([img], [np.ones((40, 100), bool)], RegionOptions(grow=0), CropOptions(work_size=64))
    assert len(zc) == 1
    rec = zc.records[0]
    assert rec.box[2] == 150 and rec.pad[1] + rec.pad[3] == 110 and rec.pad[0] == rec.pad[2] == 25


@pytest.mark.parametrize("shape", [(1, 1), (8000, 300), (300, 8000), (7, 3)])
def test_extreme_image_shapes(shape):
    h, w = shape
    img = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 2, w // 2] = True
    mask[0, 0] = True
    zc = zoom_crops([img], [mask], RegionOptions(grow=2, min_area=0), CropOptions(work_size=64))
    assert len(zc) >= 1
    assert np.array_equal(composite(img, zc.images, zc.records), img)
    out = composite(img, 255 - zc.images, zc.records, paste=PasteOptions(feather=0))
    outside = zc.repair_masks[0] == 0
    assert np.array_equal(out[outside], img[outside])


def test_float_images_are_bit_exact_too():
    img = np.random.default_rng(2).random((60, 60, 3)).astype(np.float32)
    mask = np.zeros((60, 60), bool)
    mask[20:30, 25:40] = True
    zc = zoom_crops([img], [mask], RegionOptions(), CropOptions(work_size=64))
    assert zc.images.dtype == np.float32
    assert np.array_equal(composite(img, zc.images, zc.records), img)


def test_regions_order_merge_and_cap():
    m = np.zeros((200, 200), bool)
    m[10:20, 10:20] = True      # small, top-left
    m[100:150, 100:160] = True  # large
    m[24:30, 24:30] = True      # near the small one: crops overlap
    _, merged = find_regions(m, RegionOptions(grow=0, min_area=0, merge=True))
    assert len(merged) == 2 and merged[0].area == 50 * 60
    _, split = find_regions(m, RegionOptions(grow=0, min_area=0, merge=False))
    assert len(split) == 3 and [r.area for r in split] == [3000, 100, 36]
    _, capped = find_regions(m, RegionOptions(grow=0, min_area=0, merge=False, max_regions=1))
    assert len(capped) == 1 and capped[0].area == 3000
    _, no_specks = find_regions(m, RegionOptions(grow=0, min_area=50, merge=False))
    assert [r.area for r in no_specks] == [3000, 100]


def test_grow_shrink_fill_threshold():
    m = np.zeros((50, 50), np.uint8)
    m[20:30, 20:30] = 1
    assert grow_mask(m, 3).sum() > m.sum() > grow_mask(m, -2).sum() > 0
    ring = np.zeros((50, 50), np.uint8)
    ring[10:40, 10:40] = 1
    ring[15:35, 15:35] = 0
    filled = find_regions(ring, RegionOptions(grow=0, fill_holes=True, min_area=0))[0]
    assert filled[25, 25] == 1 and np.array_equal(filled, fill_holes(ring))
    prob = np.zeros((50, 50), np.float32)
    prob[5:10, 5:10] = 0.7
    assert binarize(prob, 0.5).sum() == 25 and binarize(prob, 0.8).sum() == 0
    pct = find_regions(m, RegionOptions(grow=0, grow_percent=10.0, fill_holes=False, min_area=0))[0]
    assert pct.sum() == grow_mask(m, 5).sum()
    assert count_components(m) == 1 and count_components(np.zeros((3, 3))) == 0


def test_records_serialise_and_mismatches_are_errors():
    img = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[10:20, 10:20] = True
    zc = zoom_crops([img], [mask], RegionOptions(), CropOptions(work_size=32))
    recs = records_from_json(records_to_json(zc.records))
    assert recs == zc.records and json.loads(records_to_json(zc.records))[0]["box"]
    with pytest.raises(CompositeError, match="must match one to one"):
        composite(img, zc.images[:0], zc.records)
    with pytest.raises(CompositeError, match="expects 32x32"):
        composite(img, np.zeros((1, 40, 40, 3), np.uint8), zc.records)
    with pytest.raises(CompositeError, match="was made from a 64x64 image"):
        composite(img[:50], zc.images, zc.records)
    with pytest.raises(CompositeError, match="refer to image"):
        composite_batch([], zc.images, zc.records)


def test_batches_keep_their_own_regions():
    r = np.random.default_rng(4)
    imgs = [r.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    masks = [np.zeros((40, 60), bool) for _ in range(3)]
    masks[0][5:10, 5:10] = True
    masks[2][20:30, 30:50] = True
    zc = zoom_crops(imgs, masks, RegionOptions(), CropOptions(work_size=32))
    assert [rec.image_index for rec in zc.records] == [0, 2]
    outs = composite_batch(imgs, 255 - zc.images, zc.records, paste=PasteOptions(feather=0))
    assert np.array_equal(outs[1], imgs[1])
    assert not np.array_equal(outs[0], imgs[0]) and not np.array_equal(outs[2], imgs[2])


def test_rle_roundtrip_and_feather():
    r = np.random.default_rng(5)
    for shape in [(1, 1), (5, 7), (30, 2)]:
        m = r.random(shape) > 0.5
        assert np.array_equal(rle_decode(rle_encode(m), shape), m)
    with pytest.raises(ValueError, match="crop mask encodes 4 pixels, the record's box has 9"):
        rle_decode(rle_encode(np.ones((2, 2), bool)), (3, 3))
    m = np.zeros((21, 21), bool)
    m[5:16, 5:16] = True
    a = feather_alpha(m, 4)
    assert a[~m].max() == 0.0 and a[10, 10] == 1.0 and 0 < a[5, 10] < 1


def test_square_box_is_centred_and_shifted_inside():
    # inside: a 20x30 region centred at (50, 65): side ceil(1.5 x 30) = 45, corner floor(50 - 22.5), floor(65 - 22.5)
    assert square_inside((40, 50, 60, 80), (200, 200), 1.5, 20) == ((27, 42, 45), (0, 0, 0, 0))
    # odd centre: region (41..60) x (50..81), centre (50.5, 65.5), side ceil(1.5 x 31) = 47 -> floor(27.0), floor(42.0)
    assert square_inside((41, 50, 60, 81), (200, 200), 1.5, 20) == ((27, 42, 47), (0, 0, 0, 0))
    # at the edges: shifted inside, no padding
    assert square_inside((90, 90, 100, 100), (100, 100), 1.5, 20) == ((80, 80, 20), (0, 0, 0, 0))
    assert square_inside((0, 0, 10, 10), (100, 100), 1.5, 20) == ((0, 0, 20), (0, 0, 0, 0))
    # an image narrower than the square: centred on the image, padded on both sides of that axis only
    assert square_inside((2, 40, 18, 60), (20, 100), 1.5, 20) == ((-5, 35, 30), (5, 0, 5, 0))


def test_crop_record_rejects_bad_work_size():
    with pytest.raises(ValueError, match="multiple of 8"):
        CropOptions(work_size=500)
    assert isinstance(CropRecord.from_dict(CropRecord(0, (1, 1), (0, 0, 8), (0, 0, 7, 7), 8, 1.0, (0, 0, 1, 1), "").to_dict()), CropRecord)


def test_colour_match_cancels_a_uniform_shift_of_the_repaint():
    """An inpainter that brightens the whole crop by 40 (a colour shift, nothing repainted): the
    plain paste adds 40 inside the region; colour_match removes the mean change measured on a ring
    just outside the region, so the region keeps its values. Outside, nothing changes either way."""
    img = np.full((120, 160, 3), 100, np.uint8)
    img[:, ::2] = 90  # some texture
    mask = np.zeros((120, 160), bool)
    mask[40:70, 60:100] = True
    ropts, copts = RegionOptions(grow=0, fill_holes=False), CropOptions(work_size=64)
    zc = zoom_crops([img], [mask], ropts, copts)
    assert len(zc) == 1
    shifted = np.clip(zc.images.astype(int) + 40, 0, 255).astype(np.uint8)
    plain = composite(img, shifted, zc.records, paste=PasteOptions(feather=0), originals=zc.images)
    matched = composite(img, shifted, zc.records, paste=PasteOptions(feather=0, colour_match=True),
                        originals=zc.images)
    inside = mask
    for out in (plain, matched):
        assert np.array_equal(out[~inside], img[~inside])
    assert abs(float(plain[inside].astype(int).mean() - img[inside].mean()) - 40) < 2
    assert abs(float(matched[inside].astype(int).mean() - img[inside].mean())) < 2
