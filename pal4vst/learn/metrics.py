"""IoU as MMSegmentation's IoUMetric computes it: a confusion matrix summed over the images."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


class Confusion:
    def __init__(self, num_classes: int = 2, ignore_index: int = 255) -> None:
        self.n, self.ignore = num_classes, ignore_index
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        keep = label != self.ignore
        idx = label[keep].long() * self.n + pred[keep].long()
        self.matrix += torch.bincount(idx.flatten().cpu(), minlength=self.n * self.n).view(self.n, self.n).numpy()

    def iou(self) -> np.ndarray:
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / np.maximum(union, 1), np.nan)

    @property
    def artifact_iou(self) -> float:
        return float(self.iou()[1])

    @property
    def miou(self) -> float:
        return float(np.nanmean(self.iou()))


def confusion(detector, samples, ignore_value: int | None = None, ignore_index: int = 255) -> Confusion:
    """The confusion matrix over ``samples`` of a :class:`pal4vst.detect.Detector`'s masks: the
    release's test pipeline (resize to the model's size, whole image, the model's own mean/std,
    logits or a TorchScript's labels brought back to each label's size), as detection runs it."""
    from .data import load_image, load_label

    conf = Confusion(2, ignore_index)
    for sample in samples:
        mask = detector(load_image(sample)).mask
        conf.update(torch.from_numpy(mask.astype(np.int64)), torch.from_numpy(load_label(sample, ignore_value,
                                                                                            ignore_index)))
    return conf


def live_detector(model: torch.nn.Module, size: int, device: torch.device, dtype: torch.dtype | None):
    """A Detector over a model being trained (left where and as it is; the caller sets eval mode)."""
    from ..detect import Detector
    from ..model.checkpoint import LoadedModel

    config = dataclasses.replace(model.config, input_size=size)
    loaded = LoadedModel(model, config, "logits", "training", "live", "")
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    return Detector(loaded, device=str(device), dtype=name, place=False)
