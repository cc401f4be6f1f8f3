"""Paste inpainted zoom crops back, changing nothing outside the repaired regions.

For each crop the composite pastes the inpainter's *change*:

    out = original + alpha * (back(inpainted) - back(sent))

where ``back`` resizes a working-size crop to its box and drops the padding, ``sent`` is the crop
as :func:`pal4vst.zoom.crops.zoom_crops` made it, and ``alpha`` is the region's mask, feathered inwards
only. So an untouched crop gives back the original exactly, resampling never blurs what the
inpainter kept, and pixels outside the region masks are bit-identical to the input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ..settings import PasteOptions
from ..threads import map_threads
from .crops import CropRecord, extract_square, resize_to


class CompositeError(ValueError):
    """Crops and records that do not belong together."""


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """float32 alpha: 1 inside ``mask``, fading to 0 over ``feather`` pixels towards its edge,
    and exactly 0 outside it."""
    m = mask.astype(np.uint8)
    if feather <= 0:
        return m.astype(np.float32)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1]
    return np.minimum(dist / float(feather), 1.0).astype(np.float32)


def _to_box(crop: np.ndarray, record: CropRecord) -> np.ndarray:
    """A working-size float32 crop resized to its box, padding dropped."""
    side = record.box[2]
    sq = resize_to(crop, side)
    l, t, r, b = record.pad
    return sq[t:side - b, l:side - r]


def _match_colour(delta: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Remove the mean change on a ring just outside the region (where the inpainter should have
    kept the image), so a global colour shift of the patch leaves no seam."""
    if ring.any():
        delta = delta - delta[ring].mean(axis=0)
    return delta


def composite(
    image: np.ndarray,
    crops: Sequence[np.ndarray] | np.ndarray,
    records: Sequence[CropRecord],
    *,
    image_index: int = 0,
    paste: PasteOptions = PasteOptions(),
    originals: Sequence[np.ndarray] | np.ndarray | None = None,
) -> np.ndarray:
    """Paste the crops of ``records`` whose ``image_index`` matches into a copy of ``image``.

    ``image`` is ``HxWx3`` uint8 or float; ``crops[i]`` belongs to ``records[i]`` and must be
    ``work_size x work_size``. Crops are pasted in record order. ``originals`` are the crops as
    :func:`~pal4vst.zoom.crops.zoom_crops` made them, when at hand (saves recomputing them).
    """
    if len(crops) != len(records):
        raise CompositeError(f"{len(crops)} inpainted crops for {len(records)} crop records; they must match one to one")
    h, w = image.shape[:2]
    todo = []
    for i, (crop, rec) in enumerate(zip(crops, records)):
        if rec.image_index != image_index:
            continue
        if tuple(rec.image_size) != (w, h):
            raise CompositeError(f"crop {i} was made from a {rec.image_size[0]}x{rec.image_size[1]} image, "
                                 f"this image is {w}x{h}")
        s = rec.work_size
        if crop.shape[:2] != (s, s):
            raise CompositeError(f"crop {i} is {crop.shape[1]}x{crop.shape[0]}, its record expects {s}x{s} "
                                 "(the inpainter must return the crop at the size it was given)")
        todo.append(i)

    def change(i: int):
        return _change(image, crops[i], records[i], None if originals is None else originals[i], paste)

    # The per-region work (resizes, distance transforms) runs on all cores; the blending follows
    # in record order, so overlapping regions compose exactly as one after another.
    changes = map_threads(change, todo)
    out = image.copy()
    for ch in changes:
        if ch is not None:
            _blend(out, *ch)
    return out


def _change(image: np.ndarray, crop: np.ndarray, rec: CropRecord, sent: np.ndarray | None, paste: PasteOptions):
    """``(bbox, alpha, delta)`` of one crop over its region's bounding box, or None."""
    x0, y0, _, _ = rec.inside
    bx0, by0, bx1, by1 = rec.bbox  # the region itself: only these pixels can change
    full_region = rec.region_mask()
    rows, cols = slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0)
    region = full_region[rows, cols]
    if not region.any():
        return None
    if sent is None:
        sent = resize_to(extract_square(image, rec.box, rec.pad, rec.pad_mode), rec.work_size)
    patch = np.ascontiguousarray(crop[..., : image.shape[2]] if crop.ndim == 3 else crop)
    # Resizing is linear, so back(patch) - back(sent) = back(patch - sent): one resize, and an
    # untouched crop gives exactly zero.
    if patch.dtype == sent.dtype:
        diff = cv2.subtract(patch, np.ascontiguousarray(sent), dtype=cv2.CV_32F)
    else:
        diff = patch.astype(np.float32) - sent.astype(np.float32)
    delta = _to_box(diff, rec)
    if delta.ndim == 2:
        delta = delta[..., None]
    if paste.colour_match:
        ring = cv2.dilate(full_region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~full_region
        delta = _match_colour(delta, ring)
    return rec.bbox, feather_alpha(region, paste.feather)[..., None], delta[rows, cols]


def _blend(out: np.ndarray, bbox: tuple[int, int, int, int], alpha: np.ndarray, delta: np.ndarray) -> None:
    bx0, by0, bx1, by1 = bbox
    window = out[by0:by1, bx0:bx1]
    new = window.astype(np.float32)
    new += alpha * delta
    if np.issubdtype(out.dtype, np.integer):
        info = np.iinfo(out.dtype)
        np.rint(new, out=new)
        np.clip(new, info.min, info.max, out=new)
    np.copyto(window, new.astype(out.dtype), where=alpha > 0)


def composite_batch(images: Sequence[np.ndarray], crops: Sequence[np.ndarray] | np.ndarray,
                    records: Sequence[CropRecord], on_image: Callable[[int], None] | None = None, **kwargs) -> list[np.ndarray]:
    """:func:`composite` for each image of a batch, with the batch's crops in one list;
    ``on_image(i)`` is called after image ``i`` (progress, or a host's interruption check)."""
    if len(crops) != len(records):
        raise CompositeError(f"{len(crops)} inpainted crops for {len(records)} crop records; they must match one to one")
    bad = [r.image_index for r in records if not 0 <= r.image_index < len(images)]
    if bad:
        raise CompositeError(f"crop records refer to image {bad[0]}, but the batch has {len(images)} images")
    out = []
    for i, img in enumerate(images):
        out.append(composite(img, crops, records, image_index=i, **kwargs))
        if on_image is not None:
            on_image(i)
    return out
