"""Image input and output: every common mode to RGB uint8, EXIF orientation, atomic saves."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .files import atomic_write

log = logging.getLogger("pal4vst")

# Generated images are routinely larger than Pillow's decompression-bomb default (89 Mpx).
MAX_PIXELS = int(os.environ.get("PAL4VST_MAX_PIXELS", 400_000_000))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

ImageLike = Union[Image.Image, np.ndarray, str, Path]


class ImageError(ValueError):
    """An input that cannot be used as an image; the message says what is wrong with it."""


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """An ``HxWx3`` uint8 RGB array from any Pillow mode; 16-bit and float data are rescaled."""
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img)
        if arr.dtype == np.float32 or img.mode == "F":
            scaled = np.clip(arr, 0.0, 1.0) * 255.0 if float(arr.max(initial=0)) <= 1.0 else np.clip(arr, 0, 255)
        else:
            top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
            scaled = arr.astype(np.float32) * (255.0 / top)
        gray = np.round(scaled).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if img.mode in ("P", "PA") else img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``HxWx3`` uint8 RGB, honouring EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{path}: {w}x{h} is over the {MAX_PIXELS:,} pixel limit (set PAL4VST_MAX_PIXELS to raise it)")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                log.warning("%s: an animation of %d frames: its first frame is used", path, frames)
            img.load()
            return pil_to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{path}: damaged or truncated image ({e})") from None


def to_rgb_uint8(image: ImageLike) -> np.ndarray:
    """Accept a path, a PIL image or a numpy array (HxW, HxWx1/3/4; uint8, uint16 or float 0..1)."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return array_to_rgb_uint8(image)
    raise ImageError(f"unsupported image type {type(image).__name__}; pass a path, PIL image, numpy array or tensor")


def array_to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"expected an HxW or HxWxC image array with C in 1, 3, 4; got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return np.round(arr.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError("image array contains NaN or infinity")
        return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {arr.dtype}")


def left_out(folder: Path, exclude: Iterable[str | Path]) -> Callable[[Path], bool]:
    """Whether a file found in ``folder`` is one of ``exclude`` or lies under one of them: what a
    command wrote (its output folder, parts, thumbnails), so that its next run does not take it
    as input. An excluded folder that is ``folder`` itself, or holds it, leaves nothing out."""
    roots = {Path(e).resolve() for e in exclude}
    base = folder.resolve()
    roots = {r for r in roots if r != base and r not in base.parents}
    if not roots:
        return lambda f: False
    return lambda f: (r := f.resolve()) in roots or any(parent in roots for parent in r.parents)


def list_images(inputs: list[str | Path], *, recursive: bool = True,
                exclude: Iterable[str | Path] = ()) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into image files (sorted); also return the non-image files skipped.
    Files found in folders that are or lie under ``exclude`` are left out (:func:`left_out`);
    a file named as an input is always kept."""
    images: list[Path] = []
    skipped: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            outside = left_out(p, exclude)
            files = sorted(f for f in (p.rglob("*") if recursive else p.iterdir()) if f.is_file() and not outside(f))
            for f in files:
                (images if f.suffix.lower() in IMAGE_SUFFIXES else skipped).append(f)
        else:
            images.append(p)
    return images, skipped


def save_image(arr: np.ndarray, path: str | Path, **params) -> Path:
    """Save a uint8/uint16 array atomically; the format comes from the suffix."""
    path = Path(path)
    img = Image.fromarray(np.ascontiguousarray(arr))
    fmt = Image.registered_extensions().get(path.suffix.lower())
    atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **params))
    return path
