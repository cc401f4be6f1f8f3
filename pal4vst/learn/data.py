"""Datasets: the released layout, or a flat folder of a few images labelled in any editor.

* released: ``images/{train,val,test}/NAME.jpg`` with ``labels/{train,val,test}/NAME.png``
  (artifact = non-zero; an optional ``label_ignore`` value marks pixels to ignore);
* flat: ``NAME.png`` + ``NAME_mask.png`` side by side (a mask as people draw them, read by
  :func:`pal4vst.mask_files.read_mask_file`: white = broken), or an RGBA image whose transparent
  pixels are the artifact (what ComfyUI's mask editor saves: its MASK is ``1 - alpha``).

The dataset is checked before training starts; problems are reported together, not mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ..images import IMAGE_SUFFIXES, pil_to_rgb
from ..mask_files import MaskFileError, read_mask_file
from .errors import LearnError

MASK_SUFFIX = "_mask"


@dataclass
class Sample:
    image: Path
    label: Path | None  # None: the label is the image's alpha channel
    task: str = ""
    drawn: bool = False  # the label is a drawn mask (flat layout), not a file of class indices


@dataclass
class DataReport:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # those errors that leave an image with no usable mask
    notes: list[str] = field(default_factory=list)  # how a mask was read, where the user should know

    def raise_if_errors(self, what: str) -> None:
        if self.errors:
            head = "\n  ".join(self.errors[:20])
            more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise LearnError(f"{what}: {len(self.errors)} problem(s) in the dataset:\n  {head}{more}")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def discover(root: str | Path, split: str = "train") -> DataReport:
    """Find and check the samples of ``split`` (released layout) or of a flat folder."""
    root = Path(root)
    report = DataReport()
    if not root.is_dir():
        report.errors.append(f"{root} is not a folder")
        return report
    img_dir, lab_dir = root / "images" / split, root / "labels" / split
    if (root / "images").is_dir():
        if not img_dir.is_dir():
            report.errors.append(f"{img_dir} is missing")
            return report
        labels = {p.stem: p for p in _images(lab_dir)} if lab_dir.is_dir() else {}
        for img in _images(img_dir):
            lab = labels.pop(img.stem, None)
            if lab is None:
                report.errors.append(f"{img.name}: no label {lab_dir / (img.stem + '.png')}")
            else:
                report.samples.append(Sample(img, lab, root.name))
        for stem in labels:
            report.errors.append(f"label {labels[stem].name} has no image in {img_dir}")
    else:
        files = _images(root)
        masks = {p.stem[: -len(MASK_SUFFIX)]: p for p in files if p.stem.endswith(MASK_SUFFIX)}
        for img in files:
            if img.stem.endswith(MASK_SUFFIX):
                continue
            lab = masks.pop(img.stem, None)
            if lab is None:
                with Image.open(img) as im:
                    has_alpha = im.mode in ("RGBA", "LA") or "transparency" in im.info
                if not has_alpha:
                    report.unlabelled.append(f"{img.name}: no {img.stem}{MASK_SUFFIX}.png and no alpha channel to use "
                                             "as mask")
                    report.errors.append(report.unlabelled[-1])
                    continue
            report.samples.append(Sample(img, lab, root.name, drawn=lab is not None))
        for stem, lab in masks.items():
            report.errors.append(f"mask {lab.name} has no image {stem}.*")
    for s in list(report.samples):
        _check(s, report)
    if not report.samples and not report.errors:
        report.errors.append(f"no images found in {img_dir if (root / 'images').is_dir() else root}")
    return report


def _check(sample: Sample, report: DataReport) -> None:
    try:
        with Image.open(sample.image) as im:
            size = im.size
        if sample.label is not None:
            with Image.open(sample.label) as lb:
                if lb.size != size:
                    report.errors.append(f"{sample.image.name}: image {size[0]}x{size[1]} but label "
                                         f"{lb.size[0]}x{lb.size[1]}")
                    return
        if sample.drawn:  # read once: its marks and the note on how it was read
            read = read_mask_file(sample.label)
            if read.note:
                report.notes.append(read.note)
            label = read.marked
        else:
            label = load_label(sample)
    except MaskFileError as e:  # never taken as "nothing is broken"
        report.unlabelled.append(f"{sample.image.name}: its mask {e}")
        report.errors.append(report.unlabelled[-1])
        report.samples.remove(sample)
        return
    except OSError as e:
        report.errors.append(f"{sample.image.name}: unreadable ({e})")
        return
    if not label.any():
        report.warnings.append(f"{sample.image.name}: empty label (no artifact pixels; used as a clean example)")


def load_image(sample: Sample) -> np.ndarray:
    with Image.open(sample.image) as im:
        return pil_to_rgb(im)


def load_label(sample: Sample, ignore_value: int | None = None, ignore_index: int = 255) -> np.ndarray:
    """uint8 label: 0 background, 1 artifact. A drawn mask as people draw them
    (:func:`~pal4vst.mask_files.read_mask_file`); a file of class indices: any non-zero pixel,
    ``ignore_index`` where it holds ``ignore_value`` (off by default: 0/255 masks are common and
    255 is then an artifact)."""
    if sample.drawn and sample.label is not None:
        return read_mask_file(sample.label).marked.astype(np.uint8)
    with Image.open(sample.label if sample.label is not None else sample.image) as im:
        if sample.label is None:
            alpha = np.asarray(im.convert("RGBA"))[..., 3]
            return (alpha < 128).astype(np.uint8)
        arr = np.asarray(im.convert("L") if im.mode not in ("L", "P", "I", "I;16") else im)
    if arr.ndim == 3:
        arr = arr[..., 0]
    out = (arr > 0).astype(np.uint8)
    if ignore_value is not None:
        out[arr == ignore_value] = ignore_index
    return out


def to_chw(img: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 -> ``3xHxW`` uint8: what a batch carries; the trainer normalises it on the
    device with the model's own statistics (:meth:`pal4vst.model.segmenter.ModelConfig.normalise`),
    as detection does."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


class TrainAugment:
    """MMSeg's train pipeline: RandomResize (keep ratio), RandomCrop (cat_max_ratio), RandomFlip,
    then padding to the crop size (image 0, label ``ignore_index``)."""

    def __init__(self, crop: int, scale: int, ratio_range: tuple[float, float], cat_max_ratio: float,
                 flip: float, ignore_index: int) -> None:
        self.crop, self.scale, self.ratio_range = crop, scale, ratio_range
        self.cat_max_ratio, self.flip, self.ignore = cat_max_ratio, flip, ignore_index

    def __call__(self, img: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        ratio = rng.uniform(*self.ratio_range)
        target = self.scale * ratio
        h, w = img.shape[:2]
        s = min(target / max(h, w), target / min(h, w))
        nh, nw = max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
        img, label = self._crop(img, label, rng)
        if rng.random() < self.flip:
            img, label = img[:, ::-1], label[:, ::-1]
        ph, pw = self.crop - img.shape[0], self.crop - img.shape[1]
        if ph > 0 or pw > 0:
            img = cv2.copyMakeBorder(np.ascontiguousarray(img), 0, max(ph, 0), 0, max(pw, 0), cv2.BORDER_CONSTANT, value=0)
            label = cv2.copyMakeBorder(np.ascontiguousarray(label), 0, max(ph, 0), 0, max(pw, 0), cv2.BORDER_CONSTANT,
                                       value=self.ignore)
        return img, label

    def _crop(self, img, label, rng):
        h, w = label.shape
        ch, cw = min(self.crop, h), min(self.crop, w)

        def box():
            y = int(rng.integers(0, h - ch + 1))
            x = int(rng.integers(0, w - cw + 1))
            return y, x

        y, x = box()
        if self.cat_max_ratio < 1.0:
            for _ in range(10):
                part = label[y:y + ch, x:x + cw]
                _, cnt = np.unique(part[part != self.ignore], return_counts=True)
                if len(cnt) > 1 and cnt.max() / cnt.sum() < self.cat_max_ratio:
                    break
                y, x = box()
        return img[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]


class StepDataset(torch.utils.data.Dataset):
    """Item ``k`` is the ``k``-th sample drawn by this process from ``start_iter`` on.

    Which image and which augmentation a slot gets is a pure function of (seed, iteration, global
    slot), so a run is reproducible across worker counts, resumes exactly, and a 2-process run
    sees the same samples as a 1-process run with gradient accumulation.
    """

    def __init__(self, samples: list[Sample], augment: TrainAugment, seed: int, start_iter: int, iters: int,
                 slots: list[int], ignore_value: int | None = None, ignore_index: int = 255) -> None:
        self.samples, self.augment, self.seed = samples, augment, seed
        self.start, self.iters, self.slots = start_iter, iters, slots
        self.ignore_value, self.ignore = ignore_value, ignore_index

    def __len__(self) -> int:
        return (self.iters - self.start) * len(self.slots)

    def __getitem__(self, k: int):
        it = self.start + k // len(self.slots)
        slot = self.slots[k % len(self.slots)]
        rng = np.random.default_rng([self.seed, it, slot])
        sample = self.samples[int(rng.integers(len(self.samples)))]
        img, label = self.augment(load_image(sample), load_label(sample, self.ignore_value, self.ignore), rng)
        return to_chw(img), torch.from_numpy(np.ascontiguousarray(label)).long()
