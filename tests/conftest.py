"""Shared fixtures: tiny random checkpoints written to real files, synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pal4vst.checkpoint import load_checkpoint
from pal4vst.testing import random_checkpoint

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_pth(tmp_path_factory) -> Path:
    """A tiny model in MMSegmentation's checkpoint layout."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth", "tiny", seed=0, artifact_bias=0.0)


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory) -> Path:
    """The same kind of model in our safetensors format (input size 64)."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", "tiny", seed=0)


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
