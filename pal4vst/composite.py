"""Paste inpainted zoom crops back, changing nothing outside the repaired regions.

For each crop the composite pastes the inpainter's *change*:

    out = original + alpha * (back(inpainted) - back(sent))

where ``back`` resizes a working-size crop to its box and drops the padding, ``sent`` is the crop
as :func:`pal4vst.crops.zoom_crops` made it, and ``alpha`` is the region's mask, feathered inwards
only. So an untouched crop gives back the original exactly, resampling never blurs what the
inpainter kept, and pixels outside the region masks are bit-identical to the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

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


def _back(crop: np.ndarray, record: CropRecord) -> np.ndarray:
    """A working-size crop resized to its box, padding dropped, as float32."""
    side = record.box[2]
    sq = resize_to(crop.astype(np.float32, copy=False), side)
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
    feather: int = 4,
    colour_match: bool = False,
) -> np.ndarray:
    """Paste the crops of ``records`` whose ``image_index`` matches into a copy of ``image``.

    ``image`` is ``HxWx3`` uint8 or float; ``crops[i]`` belongs to ``records[i]`` and must be
    ``work_size x work_size``. Crops are pasted in record order.
    """
    if len(crops) != len(records):
        raise CompositeError(f"{len(crops)} inpainted crops for {len(records)} crop records; they must match one to one")
    h, w = image.shape[:2]
    out = image.copy()
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
        x0, y0, x1, y1 = rec.inside
        region = rec.region_mask()
        sent = resize_to(extract_square(image, rec.box, rec.pad, rec.pad_mode), s)
        delta = _back(crop[..., : image.shape[2]] if crop.ndim == 3 else crop, rec) - _back(sent, rec)
        if colour_match:
            ring = cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~region
            delta = _match_colour(delta, ring)
        alpha = feather_alpha(region, feather)
        inside = alpha > 0
        if not inside.any():
            continue
        patch = out[y0:y1, x0:x1]
        base = patch[inside].astype(np.float32)
        new = base + alpha[inside][:, None] * delta[inside]
        if np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            new = np.clip(np.rint(new), info.min, info.max)
        patch[inside] = new.astype(image.dtype)
    return out


def composite_batch(images: Sequence[np.ndarray], crops: Sequence[np.ndarray] | np.ndarray, records: Sequence[CropRecord], **kwargs) -> list[np.ndarray]:
    """:func:`composite` for each image of a batch, with the batch's crops in one list."""
    if len(crops) != len(records):
        raise CompositeError(f"{len(crops)} inpainted crops for {len(records)} crop records; they must match one to one")
    bad = [r.image_index for r in records if not 0 <= r.image_index < len(images)]
    if bad:
        raise CompositeError(f"crop records refer to image {bad[0]}, but the batch has {len(images)} images")
    return [composite(img, crops, records, image_index=i, **kwargs) for i, img in enumerate(images)]
