"""Zoom crops: a square patch around each region, padded where it leaves the image, resized to the
inpainter's working size, and a JSON-serialisable record that is all the composite needs."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from ..settings import CropOptions, RegionOptions
from ..render import mask_to_uint8
from ..threads import map_threads
from ..masks import Region
from .regions import find_regions
from .squares import square_inside

PAD_MODES = {"reflect": cv2.BORDER_REFLECT_101, "edge": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


@dataclass
class CropRecord:
    """Where a crop came from and how it was made.

    ``box`` is ``(x0, y0, side)`` in image pixels and may reach outside the image: ``pad``
    ``(left, top, right, bottom)`` is the part filled by padding. ``work_size`` is the side of the
    crop image handed to the inpainter; ``scale = work_size / side``. ``bbox`` ``(x0, y0, x1, y1)``
    (exclusive end) bounds the region itself. ``mask_rle`` is the region's mask inside the image
    part of the box, run-length encoded, so the composite is exact. ``members``: how many marked
    areas were merged into this region (1: none).
    """

    image_index: int
    image_size: tuple[int, int]
    box: tuple[int, int, int]
    pad: tuple[int, int, int, int]
    work_size: int
    scale: float
    bbox: tuple[int, int, int, int]
    mask_rle: str
    pad_mode: str = "reflect"
    members: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CropRecord:
        tuples = ("image_size", "box", "pad", "bbox")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in d.items()})

    @property
    def inside(self) -> tuple[int, int, int, int]:
        """The image-coordinate rectangle ``(x0, y0, x1, y1)`` covered by the crop."""
        x0, y0, side = self.box
        w, h = self.image_size
        return max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)

    def region_mask(self) -> np.ndarray:
        """The region's mask (bool) over :attr:`inside`."""
        x0, y0, x1, y1 = self.inside
        return rle_decode(self.mask_rle, (y1 - y0, x1 - x0))


def records_to_json(records: list[CropRecord]) -> str:
    return json.dumps([r.to_dict() for r in records])


def records_from_json(text: str) -> list[CropRecord]:
    return [CropRecord.from_dict(d) for d in json.loads(text)]


def rle_encode(mask: np.ndarray) -> str:
    """Run lengths of a bool mask (row-major, starting with a 0-run), as base64 uint32."""
    flat = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    if flat.size == 0:
        return ""
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).astype(np.uint32)
    if flat[0]:
        runs = np.concatenate(([0], runs)).astype(np.uint32)
    return base64.b64encode(runs.tobytes()).decode("ascii")


def rle_decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    runs = np.frombuffer(base64.b64decode(text), dtype=np.uint32) if text else np.zeros(0, np.uint32)
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs.astype(np.int64))
    if flat.size != shape[0] * shape[1]:
        raise ValueError(f"crop mask encodes {flat.size} pixels, the record's box has {shape[0] * shape[1]}")
    return flat.reshape(shape)


def resize_to(img: np.ndarray, size: int | tuple[int, int], lanczos: bool = False) -> np.ndarray:
    """Area interpolation when shrinking, bicubic (or Lanczos) when enlarging."""
    w, h = (size, size) if isinstance(size, int) else size
    if (img.shape[1], img.shape[0]) == (w, h):
        return img.copy()
    shrinking = w * h < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrinking else (cv2.INTER_LANCZOS4 if lanczos else cv2.INTER_CUBIC)
    return cv2.resize(img, (w, h), interpolation=interp)


def extract_square(image: np.ndarray, box: tuple[int, int, int], pad: tuple[int, int, int, int], pad_mode: str) -> np.ndarray:
    """The ``side x side`` square at ``box`` of ``image`` (HxW or HxWxC), padded outside the image.
    Without padding this is a view of ``image``."""
    x0, y0, side = box
    h, w = image.shape[:2]
    part = image[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    if not any(pad):
        return part
    l, t, r, b = pad
    border = PAD_MODES[pad_mode]
    if border == cv2.BORDER_REFLECT_101 and (max(t, b) >= part.shape[0] or max(l, r) >= part.shape[1]):
        border = cv2.BORDER_REPLICATE  # reflection needs more pixels than the image has
    return cv2.copyMakeBorder(part, t, b, l, r, border, value=0)


@dataclass
class ZoomCrops:
    """Crops of one or more images: ``images`` ``[N, S, S, 3]``, ``masks`` ``[N, S, S]`` bool, and
    per source image the repair mask (uint8 0/1: the union of its regions, nothing else changes)."""

    images: np.ndarray
    masks: np.ndarray
    records: list[CropRecord]
    repair_masks: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.records)


def crop_region(image: np.ndarray, region: Region, image_index: int, ropts: RegionOptions, copts: CropOptions) -> tuple[np.ndarray, np.ndarray, CropRecord]:
    """One zoom crop: the working-size image, its binary mask and its record."""
    h, w = image.shape[:2]
    box, pad = square_inside(region.bbox, (w, h), ropts.context, ropts.min_size)
    x0, y0, side = box
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    bx0, by0, bx1, by1 = region.bbox
    window = np.zeros((iy1 - iy0, ix1 - ix0), bool)
    window[by0 - iy0:by1 - iy0, bx0 - ix0:bx1 - ix0] = region.mask
    crop = resize_to(extract_square(image, box, pad, copts.pad_mode), copts.work_size, copts.lanczos)
    mask_sq = np.zeros((side, side), np.uint8)
    mask_sq[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = window
    mask_work = cv2.resize(mask_to_uint8(mask_sq), (copts.work_size, copts.work_size),
                           interpolation=cv2.INTER_AREA if side > copts.work_size else cv2.INTER_LINEAR) > 0
    record = CropRecord(image_index, (w, h), box, pad, copts.work_size, copts.work_size / side, region.bbox,
                        rle_encode(window), copts.pad_mode, region.members)
    return crop, mask_work, record


def zoom_crops(
    images: list[np.ndarray], masks: list[np.ndarray], ropts: RegionOptions = RegionOptions(),
    copts: CropOptions = CropOptions(), on_image: Callable[[int], None] | None = None,
) -> ZoomCrops:
    """Regions of each mask and their zoom crops, all images' crops in one batch (image order,
    then region order); an image without artifacts contributes no crop. ``on_image(i)`` is
    called before image ``i`` (progress, or a host's interruption check)."""
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    crops, cmasks, records, repair = [], [], [], []
    for i, (img, mask) in enumerate(zip(images, masks)):
        if on_image is not None:
            on_image(i)
        if mask.shape[:2] != img.shape[:2]:
            raise ValueError(f"image {i} is {img.shape[1]}x{img.shape[0]} but its mask is {mask.shape[1]}x{mask.shape[0]}")
        grown, regions = find_regions(mask, ropts)
        repair.append(grown)
        made = map_threads(lambda region, img=img, i=i: crop_region(img, region, i, ropts, copts), regions)
        for c, m, r in made:
            crops.append(c)
            cmasks.append(m)
            records.append(r)
    s = copts.work_size
    if not records:
        dtype = images[0].dtype if images else np.uint8
        return ZoomCrops(np.zeros((0, s, s, 3), dtype), np.zeros((0, s, s), bool), [], repair)
    return ZoomCrops(np.stack(crops), np.stack(cmasks), records, repair)
