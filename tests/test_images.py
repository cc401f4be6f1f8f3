"""Image input: odd modes, EXIF orientation, broken files, folders with non-images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pal4vst.images import ImageError, list_images, read_image, save_image, to_rgb_uint8

from conftest import synthetic_image


def _save(tmp_path, name, img: Image.Image, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def test_modes_become_rgb_uint8(tmp_path):
    rgb = synthetic_image(20, 30)
    cases = {
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full((20, 30), 128, np.uint8)])),
        "l.png": Image.fromarray(rgb[..., 0]),
        "p.png": Image.fromarray(rgb).convert("P"),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "i16.png": Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)),
        "la.png": Image.fromarray(rgb[..., 0]).convert("LA"),
    }
    for name, img in cases.items():
        out = read_image(_save(tmp_path, name, img))
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8, name
    gray = np.repeat(rgb[..., :1], 3, axis=2)
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)  # the colour, the alpha dropped
    assert np.array_equal(read_image(tmp_path / "l.png"), gray)
    assert np.array_equal(read_image(tmp_path / "la.png"), gray)
    palette = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))  # what the palette holds
    assert np.array_equal(read_image(tmp_path / "p.png"), palette)
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert np.abs(cmyk.astype(int) - rgb).mean() < 12  # back to (lossy) RGB, not raw CMYK bytes
    i16 = read_image(tmp_path / "i16.png")
    assert np.abs(i16.astype(int) - gray).max() <= 1  # 16-bit scaled, not clipped


@pytest.mark.parametrize("orientation,turn", [(3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, -1)),
                                              (8, lambda a: np.rot90(a, 1)), (2, lambda a: a[:, ::-1])])
def test_exif_orientation_is_honoured(tmp_path, orientation, turn):
    """The pixels as a viewer shows them: 3 = upside down, 6 = turned 90 clockwise, 8 = 90
    anticlockwise, 2 = mirrored (EXIF's meanings, applied here with numpy)."""
    arr = synthetic_image(20, 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path, "rot.png", Image.fromarray(arr), exif=exif.tobytes())
    assert np.array_equal(read_image(p), turn(arr))


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "damaged|not an image"),
    (b"definitely not an image", "not an image"),
])
def test_broken_files(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=match):
        read_image(p)


def test_truncated_jpeg(tmp_path):
    p = _save(tmp_path, "full.jpg", Image.fromarray(synthetic_image(200, 200)), quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(p.read_bytes()[:1500])
    with pytest.raises(ImageError, match="damaged or truncated"):
        read_image(cut)


def test_pixel_limit(tmp_path, monkeypatch):
    import pal4vst.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 100)
    p = _save(tmp_path, "big.png", Image.fromarray(synthetic_image(20, 20)))
    with pytest.raises(ImageError, match="pixel limit"):
        read_image(p)


def test_arrays():
    assert to_rgb_uint8(np.zeros((4, 5), np.float32)).shape == (4, 5, 3)
    with pytest.raises(ImageError, match="NaN"):
        to_rgb_uint8(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ImageError, match="shape"):
        to_rgb_uint8(np.zeros((4, 4, 5)))
    with pytest.raises(ImageError, match="unsupported image type"):
        to_rgb_uint8(42)


def test_folders_skip_non_images(tmp_path):
    (tmp_path / "a").mkdir()
    _save(tmp_path / "a", "x.png", Image.fromarray(synthetic_image(8, 8)))
    (tmp_path / "a" / "notes.txt").write_text("hi")
    _save(tmp_path, "y.jpg", Image.fromarray(synthetic_image(8, 8)))
    images, skipped = list_images([tmp_path])
    assert [p.name for p in images] == ["x.png", "y.jpg"]
    assert [p.name for p in skipped] == ["notes.txt"]


def test_save_is_atomic_and_16_bit(tmp_path):
    arr = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    p = save_image(arr, tmp_path / "p.png")
    back = np.asarray(Image.open(p))
    assert np.array_equal(back.astype(np.uint16), arr)
    assert [f.name for f in tmp_path.iterdir()] == ["p.png"]
