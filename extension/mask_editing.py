"""PAL's mask as something an artist can edit in the webui, and back, free of gradio.

* gradio 4 (Forge): an ``ImageEditor`` whose background is the image and whose one layer is PAL's
  mask in magenta; the artist paints on it (add) and erases from it (remove). The mask is every
  pixel some layer covers.
* gradio 3.41 (AUTOMATIC1111 1.10) has no layers: two sketch pads over the overlay, one to paint
  what PAL missed and one to paint what it marked wrongly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pal4vst.render import ARTIFACT_COLOUR

LAYER_ALPHA = 160  # PAL's marks, see-through enough to check them against the image
SHOWN = 512  # a smaller image is shown enlarged in the editor (its layers are read back at its own size)


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return np.asarray(value)
    if isinstance(value, str):
        with Image.open(value) as im:
            return np.asarray(im.convert("RGBA"))
    return np.asarray(value)


def _at_size(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A painted plane (``HxW``) at ``size`` ``(W, H)``: the editor may hand it back at the size shown."""
    w, h = size
    if plane.shape == (h, w):
        return plane
    return np.asarray(Image.fromarray(plane.astype(np.uint8)).resize((w, h), Image.NEAREST))


def editor_value(image: Image.Image, mask: np.ndarray) -> dict[str, Any]:
    """An ``ImageEditor`` value: ``image`` as the background, ``mask`` as one magenta layer; an image
    smaller than :data:`SHOWN` is enlarged (pixel for pixel) so that it can be painted on."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = (*ARTIFACT_COLOUR, LAYER_ALPHA)
    background, painted = image.convert("RGB"), Image.fromarray(layer, "RGBA")
    scale = SHOWN // max(image.size)
    if scale > 1:
        size = (image.width * scale, image.height * scale)
        background, painted = background.resize(size, Image.NEAREST), painted.resize(size, Image.NEAREST)
    return {"background": background, "layers": [painted], "composite": None}


def mask_from_editor(value: dict[str, Any] | None, size: tuple[int, int]) -> np.ndarray:
    """The artist's mask (bool ``HxW`` for ``size`` ``(W, H)``) from an ``ImageEditor`` value: every
    pixel a layer covers. An editor with no layer left means nothing is broken."""
    w, h = size
    out = np.zeros((h, w), bool)
    for layer in (value or {}).get("layers") or []:
        arr = _array(layer)
        if arr is None:
            continue
        alpha = arr[..., 3] if arr.ndim == 3 and arr.shape[2] == 4 else (arr.max(axis=-1) if arr.ndim == 3 else arr)
        out |= _at_size(alpha, size) > 0
    return out


def _strokes(value: Any, size: tuple[int, int]) -> np.ndarray:
    """The painted pixels of a gradio 3 sketch pad's value (``{"image", "mask"}``) at ``size``."""
    mask = _array(value.get("mask")) if isinstance(value, dict) else None
    if mask is None:
        return np.zeros((size[1], size[0]), bool)
    grey = mask[..., :3].max(axis=-1) if mask.ndim == 3 else mask
    return _at_size(grey, size) > 127


def mask_from_sketches(pal_mask: np.ndarray, added: Any, removed: Any) -> np.ndarray:
    """gradio 3: PAL's mask with what was painted on the "missed" pad added and what was painted on
    the "wrongly marked" pad removed."""
    h, w = pal_mask.shape
    return (pal_mask.astype(bool) | _strokes(added, (w, h))) & ~_strokes(removed, (w, h))
