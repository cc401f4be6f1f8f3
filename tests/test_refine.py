"""The core repair loop: verified per-region repair, exact pasting on float images (ComfyUI's),
pass bookkeeping and stopping rules. Expected values are computed here, from the squares' known
places, never read back from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import A, A_LEVEL, B, B_LEVEL, SQUARES, KnownCandidates, disc_dilate, square_mask, squares_image, two_squares  # noqa: F401
from pal4vst.detect import Detector
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.settings import PasteOptions, RefineOptions, RegionOptions, RepairOptions
from pal4vst.zoom.composite import composite
from pal4vst.zoom.crops import zoom_crops
from pal4vst.zoom.inpaint import OpenCVInpainter
from pal4vst.zoom.refine import refine

@pytest.fixture(scope="module")
def detector(bright_st):
    return Detector(load_checkpoint(bright_st), device="cpu", dtype="fp32")


class CountingDetector:
    """The real detector, recording how many images each call was given."""

    def __init__(self, inner: Detector) -> None:
        self.inner, self.calls = inner, []
        self.batch = inner.batch

    def __call__(self, images):
        self.calls.append(len(images) if isinstance(images, list) else 1)
        return self.inner(images)


SEPARATE = RegionOptions(merge=False)  # the squares' crops overlap: unmerged, each is a region
GROW = RegionOptions().grow


near = disc_dilate


def marked(detector, img, square) -> np.ndarray:
    """The detector's mask of ``square`` alone (the input refine starts from)."""
    y0, x0, y1, x1 = square
    window = np.zeros(img.shape[:2], bool)
    window[max(0, y0 - 20):y1 + 20, max(0, x0 - 20):x1 + 20] = True
    return detector(img).mask & window


def darken(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """An inpainter that paints the masked pixels dark: the bright model then finds nothing."""
    out = images.copy()
    out[masks] = 0.1 if images.dtype != np.uint8 else 25
    return out


def test_each_region_keeps_its_best_candidate_or_its_own_pixels(detector):
    img = two_squares()
    counting = CountingDetector(detector)
    paint = KnownCandidates()
    res = refine(img, counting, paint, RepairOptions(SEPARATE, passes=RefineOptions(candidates=2, iterations=1)),
                 seed=paint.SEED)
    assert len(res.report) == 2
    by_square = {("A" if r.bbox[0] < 150 else "B"): r for r in res.report}
    assert set(by_square) == {"A", "B"}
    a, b = by_square["A"], by_square["B"]
    assert a.accepted and a.chosen == 1 and a.scores[1] < a.score_before
    assert not b.accepted and min(b.scores) >= b.score_before
    # B is bit-identical to the input, and so is everything not within A's grown mask
    near_a = near(marked(detector, img, A), GROW + 1)
    assert np.array_equal(res.image[~near_a], img[~near_a])
    ay, ax = (A[0] + A[2]) // 2, (A[1] + A[3]) // 2
    assert res.image[ay, ax].max() <= 30  # candidate 1 was pasted inside A
    assert res.par_after < res.par_before
    # the repaired mask is A's region only
    assert res.repaired[ay, ax] and not res.repaired[~near_a].any()
    # the K candidate images go through the detector as one batch: before, [K], then the result
    assert counting.calls == [1, 2, 1] and res.detections == 4
    # seeds: base + k * K + j, k counted over the regions
    for r in res.report:
        assert r.seeds == [100 + r.region * 2, 100 + r.region * 2 + 1]


def test_one_candidate_without_verification_is_the_plain_repaint(detector):
    """K = 1 and verify off: one inpaint of every crop pasted back, as before verification."""
    img = two_squares()
    res = refine(img, detector, darken, RepairOptions(SEPARATE, passes=RefineOptions(verify=False)))
    zc = zoom_crops([img], [detector(img).mask], SEPARATE)
    assert len(zc) == 2
    expected = composite(img, darken(zc.images, zc.masks), zc.records, originals=zc.images)
    assert np.array_equal(res.image, expected)
    assert res.passes == 1 and all(r.accepted for r in res.report) and res.detections == 2


def test_float_images_change_only_near_the_squares(detector):
    img = squares_image().astype(np.float32) / 255.0
    res = refine(img, detector, OpenCVInpainter(), RepairOptions(SEPARATE, passes=RefineOptions(verify=False)))
    allowed = near(detector(img).mask, GROW + 1)  # the marks grown by `grow` (+ the distance's rounding)
    assert res.image.dtype == np.float32 and res.passes == 1
    assert np.array_equal(res.image[~allowed], img[~allowed])  # bit for bit, in float
    assert (res.image[square_mask()] != img[square_mask()]).any()
    assert res.repaired.any() and not res.repaired[~allowed].any() and res.repaired[detector(img).mask].all()
    assert len(res.painted) == len(res.crops) == 1
    assert res.painted[0].shape == res.crops[0].images.shape == (len(SQUARES), 512, 512, 3)
    assert res.painted[0].dtype == np.float32


class OneRegionPerPass:
    """Darkens only the first crop it is given in each call: each pass repairs one region."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images, masks):
        self.calls += 1
        out = images.copy()
        out[0][masks[0]] = 25
        return out


def test_passes_stop_at_the_target_par(detector):
    img = two_squares()
    whole = refine(img, detector, OneRegionPerPass(), RepairOptions(SEPARATE, passes=RefineOptions(iterations=3)))
    assert whole.passes == 2 and whole.par_after == 0.0  # a region each pass, until clean
    one_left = whole.pars[1]
    assert 0 < one_left < whole.par_before
    paint = OneRegionPerPass()
    res = refine(img, detector, paint,
                 RepairOptions(SEPARATE, passes=RefineOptions(iterations=3, target_par=one_left + 1e-4)))
    assert res.passes == 1 and paint.calls == 1 and res.par_after == pytest.approx(one_left)


class HalfDark(OneRegionPerPass):
    """Pass 1 darkens the first crop; pass 2 makes every crop mask bright (PAR goes up)."""

    def __call__(self, images, masks):
        if self.calls == 0:
            return super().__call__(images, masks)
        self.calls += 1
        out = images.copy()
        out[masks] = 255
        return out


def test_unverified_later_pass_that_raises_the_par_is_discarded(detector):
    img = two_squares()
    first = refine(img, detector, HalfDark(), RepairOptions(SEPARATE, passes=RefineOptions(iterations=1, verify=False)))
    paint = HalfDark()
    res = refine(img, detector, paint, RepairOptions(SEPARATE, passes=RefineOptions(iterations=3, verify=False)))
    assert paint.calls == 2 and res.passes == 1
    assert np.array_equal(res.image, first.image) and not np.array_equal(res.image, img)
    assert [r.accepted for r in res.report if r.pass_index == 1] == [False]


def test_verified_pass_that_makes_regions_worse_keeps_them_and_ends(detector):
    img = two_squares()
    paint = HalfDark()
    res = refine(img, detector, paint, RepairOptions(SEPARATE, passes=RefineOptions(iterations=3)))
    assert paint.calls == 2 and res.passes == 1
    p1 = [r for r in res.report if r.pass_index == 1]
    assert p1 and not any(r.accepted for r in p1)
    first = [r for r in res.report if r.pass_index == 0]
    assert [r.accepted for r in first] == [True, False]  # the first crop was darkened, the other unchanged


def test_min_gain_decides_acceptance(detector):
    img = two_squares()

    def half(images, masks):  # darkens the left half of each crop's mask: the score drops, not to zero
        out = images.copy()
        m = masks.copy()
        m[:, :, images.shape[2] // 2:] = False
        out[m] = 25
        return out

    loose = refine(img, detector, half, RepairOptions(SEPARATE, passes=RefineOptions(min_gain=0.0)))
    assert loose.report and all(r.accepted for r in loose.report)
    gains = [r.score_before - r.scores[0] for r in loose.report]
    assert all(0.05 < g < 0.95 for g in gains)
    cut = (min(gains) + max(gains)) / 2 if max(gains) - min(gains) > 0.02 else max(gains) + 0.01
    strict = refine(img, detector, half, RepairOptions(SEPARATE, passes=RefineOptions(min_gain=cut)))
    assert [r.accepted for r in strict.report] == [g > cut for g in gains]
    kept = [r for r in strict.report if not r.accepted]
    assert kept
    for r in kept:  # a reverted region keeps its pixels
        x0, y0, x1, y1 = r.bbox
        assert np.array_equal(strict.image[y0:y1, x0:x1], img[y0:y1, x0:x1])


def test_seeds_continue_over_passes_and_from_first_crop(detector):
    img = two_squares()
    paint = KnownCandidates()
    res = refine(img, detector, paint, RepairOptions(SEPARATE, passes=RefineOptions(candidates=3, iterations=2)),
                 seed=paint.SEED, first_crop=5)
    first = [[100 + 15 + j for j in range(3)], [100 + 18 + j for j in range(3)]]  # crops 5 and 6: 100 + k*3 + j
    assert paint.calls and paint.calls[0].tolist() == first
    assert res.next_crop == 5 + sum(len(c) for c in paint.calls)
    ks = [(r.seeds[0] - 100) // 3 for r in res.report]
    assert ks == list(range(5, 5 + len(res.report)))
    assert [r.seeds for r in res.report] == [row.tolist() for c in paint.calls for row in c]  # the seeds it was handed


def test_clean_images_are_left_alone(detector):
    img = squares_image(squares=())
    res = refine(img, detector, darken, RepairOptions(passes=RefineOptions(iterations=3)))
    assert res.par_before == 0.0 and res.passes == 0 and res.image is img and not res.repaired.any()
    res = refine(squares_image(), detector, darken, RepairOptions(passes=RefineOptions(min_par=0.5)))
    assert res.passes == 0 and res.par_before > 0.1 and not res.report


def test_feathered_paste_is_placed_and_oriented(detector):
    """An asymmetric repaint (a left-to-right ramp inside the mask) lands where it was painted,
    not flipped or shifted, and fades in over ``feather`` pixels inside the mask only."""
    img = two_squares()

    def ramp(images, masks):
        out = images.copy()
        s = images.shape[2]
        values = np.linspace(0, 100, s).astype(np.uint8)[None, :].repeat(s, 0)
        for i in range(len(out)):
            out[i][masks[i]] = np.stack([values] * 3, -1)[masks[i]]
        return out

    res = refine(img, detector, ramp, RepairOptions(RegionOptions(grow=0, merge=False), paste=PasteOptions(feather=4),
                                                    passes=RefineOptions(verify=False)))
    every = detector(img).mask
    assert np.array_equal(res.image[~every], img[~every])  # grow 0: only the detector's mask can change
    mask = marked(detector, img, B)
    ys, xs = np.nonzero(mask)
    y = int(np.median(ys))
    cols = np.nonzero(mask[y])[0]
    lo, hi = max(cols[0], B[1]) + 5, min(cols[-1], B[3] - 1) - 5  # inside the square and deeper than the feather
    row = res.image[y, lo:hi, 0].astype(int)
    assert len(row) > 20 and np.all(np.diff(row) >= -1) and row[-1] - row[0] > 20  # rising left to right
    assert row.max() <= 100
    # the first pixel inside the mask (distance 1 of feather 4) moves a quarter of the way only
    assert cols[0] == B[1]  # the mask's left edge is the square's: the image is flat on both sides of it
    edge, inner = int(res.image[y, cols[0], 0]), int(res.image[y, cols[0] + 5, 0])
    assert abs(edge - (B_LEVEL + (inner - B_LEVEL) * 0.25)) <= 6


def test_diffusers_inpainter_follows_the_seed_rule():
    """The diffusers inpainter makes a crop's K candidates in one pipeline call, candidate j of
    crop k with a generator seeded base + k * K + j (a stand-in pipeline records them)."""
    from PIL import Image

    from pal4vst.settings import SamplingOptions
    from pal4vst.zoom.inpaint import DiffusersInpainter

    calls = []

    class Pipe:
        def __call__(self, image, mask_image, generator, num_images_per_prompt, height, width, **kw):
            calls.append(([g.initial_seed() for g in generator], num_images_per_prompt))
            return type("Out", (), {"images": [Image.new("RGB", (width, height), (j * 40, 0, 0))
                                               for j in range(num_images_per_prompt)]})

    from pal4vst.zoom.verify import candidate_seeds

    inp = DiffusersInpainter(sampling=SamplingOptions(seed=10))
    inp._pipe = Pipe()
    crops = np.zeros((2, 32, 32, 3), np.uint8)
    out = inp.candidates(crops, np.ones((2, 32, 32), bool), candidate_seeds(10, 4, 2, 3))
    assert out.shape == (3, 2, 32, 32, 3) and out[2, 1, 0, 0, 0] == 80  # candidate j is the pipeline's j-th image
    assert calls == [([22, 23, 24], 3), ([25, 26, 27], 3)]  # crops 4 and 5: 10 + k*3 + j


class SeededGreys:
    """Candidate seeds decide the grey a crop's mask is painted: dark (a repair the bright model
    accepts), mid grey (better, not clean) or bright (no better), in an order of each crop's own;
    the second crop is only ever painted bright (no candidate is better: it is reverted)."""

    GREYS = (20, 140, 210, 60, 240, 100, 25)
    BRIGHT = (200, 250, 235, 215, 245, 225, 205)

    def candidates(self, images, masks, seeds):
        out = np.repeat(np.asarray(images)[None], seeds.shape[1], axis=0)
        for j in range(seeds.shape[1]):
            for i in range(len(images)):
                s = int(seeds[i, j])
                out[j, i][masks[i]] = (self.BRIGHT if i == 1 else self.GREYS)[(s % 7 + s // 7 * 3) % 7]
        return out


def _all_at_once(img, detector, inpainter, opts: RepairOptions, seed: int):
    """The rule as written before candidates were judged a batch at a time: all K candidate
    images composed and detected together, each region's lowest score (the first among ties)
    kept if below its score before minus min_gain; one pass."""
    from pal4vst.zoom.verify import candidate_seeds, region_scores

    det = detector(img)
    zc = zoom_crops([img], [det.mask], opts.regions, opts.crops)
    k = opts.passes.candidates
    cands = inpainter.candidates(zc.images, zc.masks, candidate_seeds(seed, 0, len(zc), k))
    dets = detector([composite(img, c, zc.records, paste=opts.paste, originals=zc.images) for c in cands])
    scores = np.stack([region_scores(d.prob, zc.records) for d in dets])
    chosen = np.argmin(scores, axis=0)
    accepted = scores[chosen, np.arange(len(zc))] < region_scores(det.prob, zc.records) - opts.passes.min_gain
    kept = [r for r, a in zip(zc.records, accepted) if a]
    painted = cands[chosen, np.arange(len(zc))]
    out = composite(img, painted[accepted], kept, paste=opts.paste, originals=zc.images[accepted]) if kept else img
    return out, chosen.tolist(), accepted.tolist(), scores


@pytest.mark.parametrize("batch", [1, 3, 4, 16])
def test_judging_a_batch_at_a_time_makes_the_same_choices_and_pixels(detector, batch):
    img = squares_image(320, 480, ((30, 30, 90, 100), (150, 200, 230, 290), (40, 360, 120, 440)))
    opts = RepairOptions(SEPARATE, passes=RefineOptions(candidates=7, min_gain=0.01))
    want, chosen, accepted, scores = _all_at_once(img, detector, SeededGreys(), opts, seed=11)
    assert len(chosen) == 3 and accepted.count(True) == 2 and len(set(chosen)) > 1  # a real choice, one reverted
    chunked = CountingDetector(detector)
    chunked.batch = batch
    res = refine(img, chunked, SeededGreys(), opts, seed=11)
    assert [r.chosen for r in res.report] == chosen and [r.accepted for r in res.report] == accepted
    assert np.allclose([r.scores for r in res.report], scores.T)
    assert np.array_equal(res.image, want)
    assert max(chunked.calls) <= batch  # never more than a detector batch of candidate images at once


def test_calls_written_before_repair_options_mean_what_they_meant(detector):
    """The four option objects given apart, and the old names of the counts, still work."""
    img = two_squares()
    old = refine(img, detector, darken, SEPARATE, paste=PasteOptions(feather=2),
                 passes=RefineOptions(verify=False, iterations=2))
    new = refine(img, detector, darken, RepairOptions(SEPARATE, paste=PasteOptions(feather=2),
                                                      passes=RefineOptions(verify=False, iterations=2)))
    assert old.report and np.array_equal(old.image, new.image) and old.pars == new.pars
    assert (old.accepted, old.regions) == (new.kept, new.judged)
