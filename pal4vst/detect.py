"""Artifact detection at each image's own resolution.

Preprocessing is the release's (MMSegmentation's test pipeline): RGB, resize to 512x512 ignoring
the aspect ratio (bilinear, as ``cv2.INTER_LINEAR`` on uint8), normalise with ImageNet mean/std,
whole-image inference; the logits are resized bilinearly to 512 inside the model and then to the
original size before the softmax, as MMSegmentation's ``postprocess_result`` does.

With two classes, softmax(class 1) = sigmoid(l1 - l0), and bilinear resizing is linear, so only
the logit difference is resized: one full-resolution float map instead of two.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .device import pick_device, pick_dtype
from .images import ImageLike, array_to_rgb_uint8, to_rgb_uint8
from .model.checkpoint import LoadedModel, load_checkpoint
from .masks import Region, components, par
from .settings import DetectOptions
from .tiling import blend_tiles

log = logging.getLogger(__name__)

Input = Union[ImageLike, torch.Tensor]


@dataclass
class Detection:
    """One image's result: ``prob`` float32 ``HxW`` in [0, 1], ``mask`` bool ``HxW``, and PAR."""

    prob: np.ndarray
    mask: np.ndarray

    @property
    def par(self) -> float:
        """Perceptual Artifacts Ratio: artifact pixels / image pixels."""
        return par(self.mask)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.mask.shape[1], self.mask.shape[0]

    def regions(self, fill_holes: bool = False, min_area: int = 1) -> list[Region]:
        """The 8-connected marked areas, largest first (ties by position); with ``fill_holes``,
        holes a region encloses belong to it. The one answer to "which regions were found"."""
        return components(self.mask, 0, fill_holes, min_area)


class Detects(Protocol):
    """What the repair and the hosts need of a detector: called on one image it answers a
    :class:`Detection`, on a list a list of them; ``batch`` is how many images one forward pass
    takes (work handed over in chunks of it fits). :class:`Detector` and :class:`Reader` are both."""

    batch: int

    def __call__(self, images: Input | Sequence[Input]) -> Detection | list[Detection]: ...


def resize_input(image: np.ndarray, size: int) -> np.ndarray:
    """The release's resize of a uint8 RGB image to the model's ``size x size`` input (bilinear,
    ignoring the aspect ratio, as MMSegmentation's test pipeline); scoring's decoding workers
    call it so that the main process receives network-sized images."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


class Detector:
    """Runs a PAL4VST model on images of any size and returns :class:`Detection` objects.

    Args:
        model: a :class:`LoadedModel`, or a path / release name resolved by :mod:`pal4vst.model.weights`.
        options: :class:`DetectOptions`; keyword arguments replace its fields
            (``Detector(model, device="cpu", threshold=0.4)``). Weights stay fp32 and the forward
            pass runs under autocast in the chosen ``dtype``. Placement (model, device, dtype,
            batch) is fixed here; reading (``threshold``, ``mode``) has these as defaults and can
            be given per call: ``det(image, threshold=0.4)``, or bound with :meth:`reading`.
        place: move the module to the device, in its fastest memory layout, in eval mode (the
            default). ``False`` uses it as it is: validation of a model being trained.
    """

    def __init__(self, model: LoadedModel | str | Path, options: DetectOptions | None = None, *,
                 place: bool = True, **overrides) -> None:
        if not isinstance(model, LoadedModel):
            from .model.weights import resolve

            model = load_checkpoint(resolve(model))
        self.options = opts = dataclasses.replace(options or DetectOptions(), **overrides)
        self.loaded = model
        self.device = pick_device(opts.device)
        self.dtype = pick_dtype(opts.dtype, self.device)
        self.size = model.config.input_size
        self.tile_overlap = min(opts.tile_overlap, self.size // 2)
        # channels_last speeds up the head's convolutions in bf16/fp16 and on GPUs (measured:
        # 0.54x vs 0.56x of MMSeg's time in bf16 on CPU) but slows fp32 on CPU (1.08x vs 1.00x).
        self.module = model.module
        if place:
            self.place()
        # else: a model being trained; its device, layout and mode stay the trainer's

    # ---------------------------------------------------------------- public API
    @property
    def batch(self) -> int:
        """Images (or tiles) per forward pass."""
        return self.options.batch

    def place(self) -> Detector:
        """Move the module to the device, in its fastest memory layout, in eval mode (again, after
        a host moved it away to free memory)."""
        # channels_last speeds up the head's convolutions in bf16/fp16 and on GPUs (measured:
        # 0.54x vs 0.56x of MMSeg's time in bf16 on CPU) but slows fp32 on CPU (1.08x vs 1.00x).
        fast = self.dtype != torch.float32 or self.device.type == "cuda"
        fmt = torch.channels_last if fast else torch.contiguous_format
        self.module = self.loaded.module.to(self.device).to(memory_format=fmt).eval()
        return self

    def __call__(self, images: Input | Sequence[Input], *, threshold: float | None = None,
                 mode: str | None = None) -> Detection | list[Detection]:
        """Detect on one image (returns a Detection) or a sequence / BHWC tensor (returns a list);
        ``threshold`` and ``mode`` replace the detector's own for this call."""
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            return self.detect_batch(list(images), threshold=threshold, mode=mode)
        if isinstance(images, (list, tuple)):
            return self.detect_batch(list(images), threshold=threshold, mode=mode)
        return self.detect_batch([images], threshold=threshold, mode=mode)[0]

    def detect_batch(self, images: Sequence[Input], *, threshold: float | None = None,
                     mode: str | None = None) -> list[Detection]:
        """Detect on several images, in forward passes of at most ``options.batch``."""
        read = self._read(threshold, mode)
        results: list[Detection] = []
        step = self.options.batch
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            if read.mode == "tiled":
                results.extend(self._tiled(img, read.threshold) for img in chunk)
            else:
                results.extend(self._whole(chunk, read.threshold))
        return results

    def detect_resized(self, small: torch.Tensor, sizes: Sequence[tuple[int, int]], *,
                       threshold: float | None = None) -> list[Detection]:
        """Detections for images already resized with :func:`resize_input` (``[B, S, S, 3]``
        uint8), at their original ``(height, width)``: what ``det(image)`` gives on the originals."""
        read = self._read(threshold, None)
        x = small.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        diff = self._logit_difference(self._normalise(x))
        return [self._finish(diff[i:i + 1], h, w, read.threshold) for i, (h, w) in enumerate(sizes)]

    def reading(self, *, threshold: float | None = None, mode: str | None = None) -> Reader:
        """This detector with ``threshold`` / ``mode`` bound: what to hand code that calls
        ``detector(image)`` (refine, a host's nodes), without placing the model again."""
        self._read(threshold, mode)  # an out-of-range value is refused now, not at the first image
        return Reader(self, threshold, mode)

    def _read(self, threshold: float | None, mode: str | None) -> DetectOptions:
        if threshold is None and mode is None:
            return self.options
        return dataclasses.replace(self.options, **{k: v for k, v in (("threshold", threshold), ("mode", mode))
                                                    if v is not None})

    def _logit_difference(self, batch: torch.Tensor) -> torch.Tensor:
        """Model output for a normalised ``[B, 3, S, S]`` batch as ``l1 - l0`` (``[B, 1, S, S]``, fp32)."""
        with torch.inference_mode(), self._autocast():
            out = self.module(batch)
        if self.loaded.output == "labels":
            return out.float() * 2.0 - 1.0
        return (out[:, 1:2] - out[:, 0:1]).float()

    # ---------------------------------------------------------------- internals
    def _autocast(self):
        enabled = self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)

    def _as_uint8_or_tensor(self, image: Input) -> np.ndarray | torch.Tensor:
        if isinstance(image, torch.Tensor):
            if image.ndim == 2:
                image = image[..., None]
            if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
                raise ValueError(f"tensor images must be HxWxC (ComfyUI layout); got shape {tuple(image.shape)}")
            return image
        return to_rgb_uint8(image)

    def _resize_normalise(self, image: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
        if isinstance(image, np.ndarray):
            small = resize_input(image, size)
            x = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float()
        else:
            t = image.to(self.device, torch.float32)
            t = t.expand(-1, -1, 3) if t.shape[-1] == 1 else t[..., :3]
            x = t.permute(2, 0, 1)[None].clamp(0, 1) * 255.0
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).round()
        return self._normalise(x)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` RGB 0..255 on the device -> the model's normalised input."""
        return self.loaded.config.normalise(x)

    def _upsample(self, diff: torch.Tensor, height: int, width: int,
                  threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``diff`` ``[1, 1, h, w]`` logit difference -> (difference, mask) at ``height x width``."""
        if self.loaded.output == "labels":
            up = F.interpolate(diff, size=(height, width), mode="nearest")
        else:
            up = F.interpolate(diff, size=(height, width), mode="bilinear", align_corners=False)
        d = up[0, 0]
        return d, (d > 0 if threshold == 0.5 else torch.sigmoid(d) > threshold)

    def _finish(self, diff: torch.Tensor, height: int, width: int, threshold: float) -> Detection:
        """``diff`` ``[1, 1, h, w]`` logit difference -> probability and mask at ``height x width``."""
        d, mask = self._upsample(diff, height, width, threshold)
        prob = torch.sigmoid(d, out=d) if self.loaded.output == "logits" else mask.float()
        return Detection(prob=prob.cpu().numpy(), mask=mask.cpu().numpy())

    def _whole(self, images: Sequence[Input], threshold: float) -> list[Detection]:
        prepared = [self._as_uint8_or_tensor(im) for im in images]
        batch = torch.cat([self._resize_normalise(im, self.size) for im in prepared])
        diff = self._logit_difference(batch)
        return [self._finish(diff[i:i + 1], im.shape[0], im.shape[1], threshold) for i, im in enumerate(prepared)]

    def _tiled(self, image: Input, threshold: float) -> Detection:
        img = self._as_uint8_or_tensor(image)
        if isinstance(img, torch.Tensor):
            img = array_to_rgb_uint8(img.cpu().numpy())
        h, w = img.shape[:2]
        s = self.size
        if min(h, w) < s:  # too small to tile: the whole-image path is the release's behaviour
            return self._whole([img], threshold)[0]
        def run(tiles: list[np.ndarray]) -> torch.Tensor:
            return self._logit_difference(torch.cat([self._resize_normalise(t, s) for t in tiles]))

        diff = blend_tiles(img, s, self.tile_overlap, self.options.batch, device=self.device, run=run)
        return self._finish(diff[None, None], h, w, threshold)


class Reader:
    """A :class:`Detector` with its reading (threshold, mode) bound: call it like the detector."""

    def __init__(self, detector: Detector, threshold: float | None, mode: str | None) -> None:
        self.detector, self.threshold, self.mode = detector, threshold, mode

    @property
    def batch(self) -> int:
        return self.detector.batch

    def __call__(self, images: Input | Sequence[Input]) -> Detection | list[Detection]:
        return self.detector(images, threshold=self.threshold, mode=self.mode)


def detect(images: Input | Iterable[Input], model: LoadedModel | str | Path, **kwargs) -> Detection | list[Detection]:
    """One-shot helper: ``detect(image, "unified")``. Builds a :class:`Detector` each call."""
    return Detector(model, **kwargs)(images)
