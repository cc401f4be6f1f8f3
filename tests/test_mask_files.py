"""Masks read as people draw them (issue #27, item 3): one reader for every kind of mask file,
each written here the way an editor writes it, checked against the marks the test drew."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pal4vst.mask_files import MaskFileError, read_mask_file


def _grey(marks: np.ndarray, on: int = 255, off: int = 0) -> np.ndarray:
    return np.where(marks, on, off).astype(np.uint8)


def test_white_on_black(tmp_path, marks):
    Image.fromarray(_grey(marks)).save(tmp_path / "m.png")
    read = read_mask_file(tmp_path / "m.png")
    assert np.array_equal(read.marked, marks) and not read.note


def test_a_palette_mask_is_read_by_its_colours(tmp_path, marks):
    """Index 0 is white here: read by index, the labels would be inverted."""
    im = Image.fromarray(np.where(marks, 0, 1).astype(np.uint8), mode="P")
    im.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
    im.save(tmp_path / "m.png")
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_marks_only_in_the_alpha_channel(tmp_path, marks):
    """Strokes painted on a transparent layer: black everywhere, opaque where painted."""
    rgba = np.zeros((*marks.shape, 4), np.uint8)
    rgba[..., 3] = _grey(marks)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_white_strokes_on_a_transparent_layer(tmp_path, marks):
    rgba = np.zeros((*marks.shape, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = _grey(marks)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_a_jpeg_mask_is_read_half_way_with_a_note(tmp_path, marks):
    Image.fromarray(_grey(marks)).save(tmp_path / "m_mask.jpg", quality=70)
    raw = np.asarray(Image.open(tmp_path / "m_mask.jpg"))
    assert ((raw > 0) & ~marks).any()  # JPEG left non-zero noise off the marks: "non-zero" would mark it
    read = read_mask_file(tmp_path / "m_mask.jpg")
    assert np.array_equal(read.marked, marks)
    assert "m_mask.jpg" in read.note and "JPEG" in read.note


def test_a_16_bit_mask(tmp_path, marks):
    Image.fromarray(np.where(marks, 65535, 0).astype(np.uint16)).save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode.startswith("I")
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_an_rgb_mask_with_coloured_strokes(tmp_path, marks):
    rgb = np.zeros((*marks.shape, 3), np.uint8)
    rgb[marks] = (255, 0, 255)  # magenta, as PAL draws it
    Image.fromarray(rgb).save(tmp_path / "m.png")
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_a_zero_one_mask(tmp_path, marks):
    Image.fromarray(marks.astype(np.uint8)).save(tmp_path / "m.png")  # saved from an array without scaling
    assert np.array_equal(read_mask_file(tmp_path / "m.png").marked, marks)


def test_a_file_that_is_no_mask_is_named(tmp_path):
    photo = np.random.default_rng(0).integers(40, 220, (40, 56, 3)).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo_mask.png")
    with pytest.raises(MaskFileError, match="photo_mask.png: not a mask"):
        read_mask_file(tmp_path / "photo_mask.png")
    (tmp_path / "broken_mask.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(MaskFileError, match="broken_mask.png: cannot be read"):
        read_mask_file(tmp_path / "broken_mask.png")


def test_an_example_set_reads_each_kind_and_skips_what_is_no_mask(tmp_path, marks):
    """Through the set reader teaching uses: every kind gives the drawn marks; a photo saved as a
    mask is skipped and named, never taken as a clean example; the JPEG is noted."""
    from pal4vst.learn.data import load_label
    from pal4vst.learn.examples import read_set

    folder = tmp_path / "set"
    folder.mkdir()
    image = np.full((*marks.shape, 3), 90, np.uint8)
    kinds = {
        "white": lambda p: Image.fromarray(_grey(marks)).save(p),
        "alpha": lambda p: Image.fromarray(np.dstack([np.zeros((*marks.shape, 3), np.uint8), _grey(marks)]),
                                           "RGBA").save(p),
        "sixteen": lambda p: Image.fromarray(np.where(marks, 65535, 0).astype(np.uint16)).save(p),
    }
    for name, write in kinds.items():
        Image.fromarray(image).save(folder / f"{name}.png")
        write(folder / f"{name}_mask.png")
    Image.fromarray(image).save(folder / "jpeg.png")
    Image.fromarray(_grey(marks)).save(folder / "jpeg_mask.jpg", quality=70)
    Image.fromarray(image).save(folder / "photo.png")
    Image.fromarray(np.random.default_rng(1).integers(40, 220, (*marks.shape, 3)).astype(np.uint8)).save(
        folder / "photo_mask.png")
    exset = read_set(folder)
    names = sorted(s.image.stem for s in exset.samples)
    assert names == ["alpha", "jpeg", "sixteen", "white"]
    for s in exset.samples:
        assert np.array_equal(load_label(s).astype(bool), marks), s.image.name
    assert len(exset.skipped) == 1 and "photo_mask.png: not a mask" in exset.skipped[0]
    assert len(exset.notes) == 1 and "jpeg_mask.jpg" in exset.notes[0]
