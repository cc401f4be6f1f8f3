"""Shared fixtures: tiny random checkpoints written to real files, synthetic images."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.testing import bright_checkpoint, random_checkpoint

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


PYTEST_OWN = {".pytest_cache", ".hypothesis", "__pycache__"}  # what pytest and hypothesis keep in the checkout


def _leftovers() -> tuple[set[Path], set[Path]]:
    import tempfile

    return set(ROOT.iterdir()), set(Path(tempfile.gettempdir()).glob("pal4vst_*"))


@pytest.fixture(scope="session", autouse=True)
def writes_stay_in_pytests_folders():
    """Tests write only under pytest's temporary folders: nothing new in the checkout, no
    ``pal4vst_*`` folder beside them in the system's temporary folder."""
    root, tmp = _leftovers()
    yield
    new_root, new_tmp = (now - before for now, before in zip(_leftovers(), (root, tmp)))
    assert not {p for p in new_root if p.name not in PYTEST_OWN} and not new_tmp, (new_root, new_tmp)


@pytest.fixture(scope="session")
def tiny_pth(tmp_path_factory) -> Path:
    """A tiny model in MMSegmentation's checkpoint layout."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", "tiny", seed=0, artifact_bias=0.0)


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory) -> Path:
    """The same kind of model in our safetensors format (input size 64)."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", "tiny", seed=0)


@pytest.fixture(scope="session")
def bright_st(tmp_path_factory) -> Path:
    """A tiny model whose artifacts are exactly the image's bright areas (see ``mark_bright``)."""
    return bright_checkpoint(tmp_path_factory.mktemp("ckpt") / "bright.safetensors")


SQUARES = ((40, 60, 100, 130), (150, 200, 230, 290))  # (y0, x0, y1, x1) of the white squares


def squares_image(h: int = 256, w: int = 320, squares=SQUARES) -> np.ndarray:
    """A dark image with white squares: the bright model's regions, at known places."""
    img = np.full((h, w, 3), 30, np.uint8)
    for y0, x0, y1, x1 in squares:
        img[y0:y1, x0:x1] = 230
    return img


A, B = SQUARES  # B is the larger square
A_LEVEL, B_LEVEL = 230, 250  # both bright (artifacts for the bright model); inpainters tell them apart


FAR_B = (150, 350, 230, 440)  # B moved right, on a 480 px wide image: the squares' crops no longer overlap
FAR_WIDTH = 480


def two_squares(h: int = 256, w: int = 320, b: tuple[int, int, int, int] = B) -> np.ndarray:
    """A dark image with square A at ``A_LEVEL`` and square ``b`` at ``B_LEVEL``.
    ``two_squares(w=FAR_WIDTH, b=FAR_B)``: two regions even where hosts merge neighbouring crops."""
    img = np.full((h, w, 3), 30, np.uint8)
    img[A[0]:A[2], A[1]:A[3]] = A_LEVEL
    img[b[0]:b[2], b[1]:b[3]] = B_LEVEL
    return img


def centre_level(crop: np.ndarray) -> float:
    """The 0..255 grey level at the centre of a crop (uint8 or float)."""
    s = crop.shape[0] // 2
    return float(crop[s, s].mean() * (255 if crop.dtype != np.uint8 else 1))


class KnownCandidates:
    """A candidate inpainter whose candidates are known: in square A's crop candidate 1 paints
    the mask dark, every other candidate (all of B's) leaves the crop as it was. ``calls`` holds
    the seeds each call was handed (``[crops, candidates]``). Tests hand ``refine`` the base seed
    :attr:`SEED`; with K up to the detector's batch (4) a call is handed every candidate."""

    SEED = 100

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def candidates(self, images, masks, seeds):
        seeds = np.asarray(seeds)
        self.calls.append(seeds.copy())
        count = seeds.shape[1]
        out = np.repeat(np.asarray(images)[None], count, axis=0)
        dark = 25 if out.dtype == np.uint8 else 25 / 255
        for i, crop in enumerate(images):
            if count > 1 and abs(centre_level(crop) - A_LEVEL) < 5:
                out[1, i][masks[i]] = dark
        return out

    def __call__(self, images, masks):
        return self.candidates(images, masks, np.zeros((len(images), 1), int))[0]


def disc_dilate(mask: np.ndarray, r: float) -> np.ndarray:
    """``mask`` grown by a disc of radius ``r`` (plain numpy, independent of the code's grow):
    what a repair may change at most, for tests of "nothing outside the mask changes"."""
    k = int(np.ceil(r))
    padded = np.pad(np.asarray(mask).astype(bool), k)
    out = np.zeros(np.shape(mask), bool)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            if dy * dy + dx * dx <= r * r:
                out |= padded[k + dy:k + dy + out.shape[0], k + dx:k + dx + out.shape[1]]
    return out


def square_mask(h: int = 256, w: int = 320, squares=SQUARES) -> np.ndarray:
    m = np.zeros((h, w), bool)
    for y0, x0, y1, x1 in squares:
        m[y0:y1, x0:x1] = True
    return m


@pytest.fixture(scope="session")
def tiny_model(tiny_st):
    return load_checkpoint(tiny_st)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful image with a few sharp shapes: something for a network to react to."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([
        127 + 100 * np.sin(xx / max(w, 1) * 6.28 + r.uniform(0, 6)),
        127 + 100 * np.cos(yy / max(h, 1) * 6.28 + r.uniform(0, 6)),
        127 + 60 * np.sin((xx + yy) / max(h + w, 1) * 12.0),
    ], axis=-1)
    img += r.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (only on development machines)")
    return SHARED


EXTENSION = "pal4vst_extension"


def load_extension(fresh: bool = False):
    """The webui extension's package (``extension/``) under the name ``scripts/pal4vst.py`` gives
    it, with its submodules imported; ``fresh`` drops an earlier import (tests that stub the
    webui's modules first)."""
    if fresh:
        for name in [m for m in sys.modules if m == EXTENSION or m.startswith(EXTENSION + ".")]:
            del sys.modules[name]
    if EXTENSION not in sys.modules:
        spec = importlib.util.spec_from_file_location(EXTENSION, ROOT / "extension" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "extension")])
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[EXTENSION] = pkg
        spec.loader.exec_module(pkg)
    pkg = sys.modules[EXTENSION]
    for sub in ("args", "controls", "pipeline", "services", "tab_actions", "api", "ui_config"):
        importlib.import_module(f"{EXTENSION}.{sub}")
    return pkg


# ------------------------------------------------------------------------- teaching (issue #22)

@pytest.fixture(scope="session")
def taught(tmp_path_factory):
    """A known-answer setup for teaching: a tiny base model that knows one artifact kind
    ("noise", learned here from 300 images in 500 steps), ten examples of a kind it has never
    seen ("solid": flat saturated patches), and unseen test images of both kinds."""
    from pal4vst.testing import teaching_scenario

    return teaching_scenario(tmp_path_factory.mktemp("teach"), val=24)


def artifact_iou(model, data) -> float:
    """Artifact IoU of a model file over a dataset's val split, as detection runs it."""
    from pal4vst.detect import Detector
    from pal4vst.learn.data import discover
    from pal4vst.learn.metrics import confusion
    from pal4vst.model.checkpoint import load_checkpoint

    return confusion(Detector(load_checkpoint(model), device="cpu", dtype="fp32"),
                     discover(data, "val").samples).artifact_iou


def write_mask_kinds(folder, marks) -> dict:
    """The same marks saved as each kind of mask file people make (issue #27): palette (index 0
    white), strokes only in the alpha channel, 16-bit, red strokes on black, 0/1 and JPEG."""
    import numpy as np
    from PIL import Image

    grey = np.where(marks, 255, 0).astype(np.uint8)
    files = {}
    pal = Image.fromarray(np.where(marks, 0, 1).astype(np.uint8), mode="P")  # index 0 is white
    pal.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
    files["palette.png"] = pal
    rgba = np.zeros((*marks.shape, 4), np.uint8)
    rgba[..., 3] = grey
    files["alpha.png"] = Image.fromarray(rgba, "RGBA")
    files["sixteen.png"] = Image.fromarray(np.where(marks, 65535, 0).astype(np.uint16))
    rgb = np.zeros((*marks.shape, 3), np.uint8)
    rgb[marks] = (255, 0, 0)
    files["red.png"] = Image.fromarray(rgb)
    files["ones.png"] = Image.fromarray(marks.astype(np.uint8))
    files["jpeg.jpg"] = Image.fromarray(grey)
    for name, im in files.items():
        im.save(folder / name, **({"quality": 80} if name.endswith(".jpg") else {}))
    return {name: folder / name for name in files}


def drawn_marks() -> np.ndarray:
    """What an artist marked on a 56x40 image: a square and a bar (the mask-file tests')."""
    m = np.zeros((40, 56), bool)
    m[5:20, 6:22] = True
    m[28:33, 10:50] = True
    return m


@pytest.fixture
def marks() -> np.ndarray:
    return drawn_marks()
