"""IoU as MMSegmentation's IoUMetric computes it: a confusion matrix summed over the images."""

from __future__ import annotations

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


@torch.inference_mode()
def confusion(model: torch.nn.Module, samples, size: int, device: torch.device, dtype: torch.dtype | None = None,
              ignore_value: int | None = None, ignore_index: int = 255) -> Confusion:
    """The confusion matrix of ``model`` over ``samples`` with the release's test pipeline
    (resize to ``size``, whole image, logits resized back to each label's size)."""
    from .data import EvalDataset

    was_training = model.training
    model.eval()
    conf = Confusion(2, ignore_index)
    for x, y in EvalDataset(samples, size, ignore_value, ignore_index):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x[None].to(device))
        up = torch.nn.functional.interpolate(logits.float(), size=y.shape, mode="bilinear", align_corners=False)
        conf.update(up.argmax(1)[0].cpu(), y)
    model.train(was_training)
    return conf
