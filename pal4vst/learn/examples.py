"""Example sets: what an artist saves while looking at PAL's masks, to teach it their generator.

A set is a folder, ``<models folder>/examples/<set>/``, in the flat layout training reads:
``NAME.png`` (the image) beside ``NAME_mask.png`` (0/255; white = broken). An empty mask is an
example too: "nothing is broken here". Examples are only ever added, never overwritten: a new
one takes the next free number. Every write is atomic, the image before its mask, so an
interrupted save leaves at worst an image without a mask, which reading reports and skips.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..images import save_image
from ..render import mask_to_uint8
from .data import MASK_SUFFIX, DataReport, Sample, discover, load_label

EXAMPLES = "examples"
MIN_EXAMPLES = 4  # at least two to learn from and one to judge by, with artifacts in both
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class ExampleError(ValueError):
    """An example or a set that cannot be used; the message says which file and what to do."""


def check_name(name: str, what: str = "set") -> str:
    """``name`` stripped, when it is a usable file or folder name (letters, digits, space, ``_.-``)."""
    name = (name or "").strip()
    if not _NAME.match(name) or name.startswith(".") or ".." in name:
        raise ExampleError(f"{what} name {name!r} is not usable: use letters, digits, spaces, '_', '-' or '.', at most "
                           "64 characters, not starting with '.'")
    return name


def examples_root(models_dir: str | Path) -> Path:
    """Where the example sets of a models folder live."""
    return Path(models_dir) / EXAMPLES


@dataclass(frozen=True)
class SetInfo:
    """A set on disk: its name, folder, how many examples, and how many of them mark something."""

    name: str
    path: Path
    count: int
    with_artifacts: int

    def describe(self) -> str:
        clean = self.count - self.with_artifacts
        plural = "s" * (self.count != 1)
        return f"{self.name}: {self.count} example{plural} ({self.with_artifacts} with artifacts, {clean} clean)"


def _pairs(folder: Path) -> list[Path]:
    masks = folder.glob(f"*{MASK_SUFFIX}.png")
    return sorted(m for m in masks if m.with_name(m.name[: -len(MASK_SUFFIX) - 4] + ".png").is_file())


def set_info(folder: str | Path) -> SetInfo:
    """Name, size and artifact count of the set in ``folder`` (0 when absent)."""
    folder = Path(folder)
    masks = _pairs(folder) if folder.is_dir() else []
    marked = 0
    for m in masks:
        try:
            marked += bool(load_label(Sample(m, m, drawn=True)).any())
        except (OSError, ValueError):  # counted as unreadable when the set is read
            pass
    return SetInfo(folder.name, folder, len(masks), marked)


def list_sets(root: str | Path) -> list[SetInfo]:
    """Every set under ``root`` (a models folder's ``examples``), by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [set_info(d) for d in sorted(root.iterdir(), key=lambda d: d.name.lower()) if d.is_dir()]


def next_number(folder: Path, name: str) -> int:
    """The next free ``n`` of ``<name>_<n>.png`` files (masks ``<name>_<n>_mask.png`` counted) in ``folder``."""
    numbered = re.compile(rf"{re.escape(name)}_(\d+)(?:{MASK_SUFFIX})?\.png")
    found = (numbered.fullmatch(p.name) for p in folder.glob(f"{name}_*.png"))
    return 1 + max((int(m.group(1)) for m in found if m), default=0)


def save_example(root: str | Path, set_name: str, image: np.ndarray, mask: np.ndarray, name: str = "example") -> Path:
    """Add ``image`` (``HxWx3`` uint8) with ``mask`` (``HxW``, any truthy value is broken; all false
    is a clean example) to the set ``set_name`` under ``root``, as ``<name>_<n>.png`` and
    ``<name>_<n>_mask.png`` with the next free ``n``; returns the image's path."""
    folder = Path(root) / check_name(set_name)
    name = check_name(name, "example")
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ExampleError(f"an example image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    if mask.shape[:2] != image.shape[:2]:
        raise ExampleError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x"
                           f"{image.shape[0]}: connect the mask that belongs to this image")
    folder.mkdir(parents=True, exist_ok=True)
    n = next_number(folder, name)
    target = folder / f"{name}_{n:05d}.png"
    save_image(image, target)
    save_image(mask_to_uint8(mask.astype(bool)), folder / f"{name}_{n:05d}{MASK_SUFFIX}.png")
    return target


@dataclass
class ExampleSet:
    """The examples of a set (or any dataset folder), checked: ``samples`` to learn from and judge
    by, and ``skipped`` lines for what could not be used."""

    path: Path
    samples: list[Sample] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    held_out: list[Sample] = field(default_factory=list)  # a released layout's val split, if any
    notes: list[str] = field(default_factory=list)  # how masks were read (a JPEG mask, say)

    def sha256(self) -> str:
        """One hash of every image and mask (their names and bytes), to tell sets apart in a model's record."""
        h = hashlib.sha256()
        for s in sorted(self.samples + self.held_out, key=lambda s: s.image.name):
            for p in (s.image, s.label):
                if p is not None:
                    h.update(p.name.encode() + b"\0" + p.read_bytes())
        return h.hexdigest()


def read_set(folder: str | Path) -> ExampleSet:
    """The usable examples of ``folder`` (an example set, or a dataset in the released layout whose
    ``val`` split is then the held-out part). A problem with an example (an unreadable file, a
    mask of another size) stops here with a message naming each file; an image left without its
    mask by an interrupted save is skipped and said."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExampleError(f"{folder} is no folder of examples")
    report: DataReport = discover(folder, "train")
    errors = [e for e in report.errors if e not in report.unlabelled]
    if errors:
        raise ExampleError(f"{folder}: {len(errors)} example(s) cannot be used; fix or remove them, nothing was "
                           f"changed:\n  " + "\n  ".join(errors[:20]))
    out = ExampleSet(folder, report.samples, [f"{e} (skipped)" for e in report.unlabelled], notes=report.notes)
    if (folder / "images").is_dir() and (folder / "images" / "val").is_dir():
        val = discover(folder, "val")
        if val.errors:
            raise ExampleError(f"{folder}: the val split cannot be used:\n  " + "\n  ".join(val.errors[:20]))
        out.held_out = val.samples
    return out


def check_teachable(examples: ExampleSet) -> list[bool]:
    """Whether each example marks something; raises :class:`ExampleError` when the set is too
    small to teach and judge (fewer than :data:`MIN_EXAMPLES`, or fewer than two with artifacts)."""
    marked = [bool(load_label(s).any()) for s in examples.samples]
    if len(marked) < MIN_EXAMPLES or sum(marked) < 2:
        raise ExampleError(
            f"{examples.path.name} has {len(marked)} example(s), {sum(marked)} of them marking something: teaching "
            f"needs at least {MIN_EXAMPLES}, at least two of them with artifacts (one to learn from, one to judge by). "
            "About ten is what the paper used: add more (PAL Save Example in ComfyUI, Add to set in the webui, "
            "pal4vst examples add).")
    return marked
