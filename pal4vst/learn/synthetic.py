"""Synthetic artifacts with known masks: natural-looking textures, locally corrupted.

    python -m training.synthetic OUT --train 200 --val 40 --size 128

Corruptions, one per region: local warp, strong blur, noise, patch shuffle (texture garble),
colour blotch, hard stripes, a flat saturated patch, blur with a colour cast, a checker grid,
a duplicated (shifted) copy of other content. The mask is exactly the corrupted region. Written
in the released layout (images/, labels/) or as an example set (name + name_mask).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pal4vst.render import mask_to_uint8


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth multi-scale colour noise plus a few sharp shapes: a stand-in for photo content."""
    img = np.zeros((size, size, 3), np.float32)
    for scale in (4, 8, 16, 32):
        n = rng.normal(0, 1, (scale, scale, 3)).astype(np.float32)
        img += cv2.resize(n, (size, size), interpolation=cv2.INTER_CUBIC) * (40.0 / np.sqrt(scale))
    img += rng.uniform(60, 190, 3).astype(np.float32)
    img += rng.normal(0, 10, (size, size, 1)).astype(np.float32)  # film grain: fine detail a blur removes
    for _ in range(int(rng.integers(2, 6))):
        colour = rng.uniform(0, 255, 3).tolist()
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        if rng.random() < 0.5:
            cv2.circle(img, c, int(rng.integers(size // 16, size // 5)), colour, -1, cv2.LINE_AA)
        else:
            d = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(img, c, d, colour, int(rng.integers(1, max(2, size // 24))), cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def _blob(size: int, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    c = tuple(int(v) for v in rng.integers(size // 8, size - size // 8, 2))
    axes = tuple(int(v) for v in rng.integers(size // 12, size // 5, 2))
    cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


KINDS = ("warp", "blur", "noise", "shuffle", "blotch", "stripes", "solid", "cast", "checker", "duplicate")


def corrupt(img: np.ndarray, region: np.ndarray, rng: np.random.Generator, kinds: tuple[str, ...] = KINDS) -> np.ndarray:
    size = img.shape[0]
    kind = KINDS.index(kinds[int(rng.integers(len(kinds)))])
    out = img.copy()
    if kind == 0:  # local warp
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        amp, freq = rng.uniform(3, 8), rng.uniform(0.15, 0.4)
        warped = cv2.remap(img, xx + amp * np.sin(yy * freq), yy + amp * np.cos(xx * freq), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    elif kind == 1:  # strong blur
        warped = cv2.GaussianBlur(img, (0, 0), rng.uniform(2.5, 5))
    elif kind == 2:  # noise
        warped = np.clip(img.astype(np.float32) + rng.normal(0, 50, img.shape), 0, 255).astype(np.uint8)
    elif kind == 3:  # patch shuffle
        t = max(2, size // 16)
        warped = img.copy()
        ys, xs = np.nonzero(region)
        y0, y1, x0, x1 = ys.min() // t * t, ys.max() // t * t + t, xs.min() // t * t, xs.max() // t * t + t
        tiles = [(y, x) for y in range(y0, min(y1, size - t + 1), t) for x in range(x0, min(x1, size - t + 1), t)]
        perm = rng.permutation(len(tiles))
        for (y, x), j in zip(tiles, perm):
            sy, sx = tiles[j]
            warped[y:y + t, x:x + t] = img[sy:sy + t, sx:sx + t]
    elif kind == 4:  # colour blotch
        warped = np.clip(img.astype(np.float32) * 0.3 + rng.uniform(0, 255, 3) * 0.7, 0, 255).astype(np.uint8)
    elif kind == 5:  # hard stripes, as a generator's repeated texture
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 9)
        bands = (np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period) > 0)[..., None]
        warped = np.clip(img.astype(np.float32) * 0.4 + bands * 153.0, 0, 255).astype(np.uint8)
    elif kind == 6:  # a flat patch of saturated colour, as a hole the generator filled with nothing
        hue = rng.uniform(0, 180)
        colour = cv2.cvtColor(np.array([[[hue, 255, 255]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        warped = np.broadcast_to(colour, img.shape).astype(np.uint8)
    elif kind == 7:  # blur with a colour cast, as a smeared region that also drifted in colour
        cast = rng.uniform(-60, 60, 3).astype(np.float32)
        warped = np.clip(cv2.GaussianBlur(img, (0, 0), rng.uniform(2, 4)).astype(np.float32) + cast, 0, 255)
        warped = warped.astype(np.uint8)
    elif kind == 8:  # a checker grid, as a generator's tiling pattern
        yy, xx = np.mgrid[0:size, 0:size]
        cell = int(rng.integers(3, 7))
        checker = (((yy // cell) + (xx // cell)) % 2)[..., None].astype(np.float32)
        warped = np.clip(img.astype(np.float32) * 0.5 + checker * 110.0 + 20.0, 0, 255).astype(np.uint8)
    else:  # duplicated structure: the content of elsewhere, shifted in
        dy, dx = (int(v) for v in rng.integers(size // 6, size // 2, 2) * rng.choice([-1, 1], 2))
        warped = np.roll(img, (dy, dx), axis=(0, 1))
    out[region] = warped[region]
    return out


def make_sample(size: int, rng: np.random.Generator, max_regions: int = 3, clean_prob: float = 0.1,
                kinds: tuple[str, ...] = KINDS):
    """``(image uint8 HxWx3, mask uint8 HxW 0/1)``; some samples are clean (empty mask)."""
    img = texture(size, rng)
    mask = np.zeros((size, size), bool)
    if rng.random() >= clean_prob:
        for _ in range(int(rng.integers(1, max_regions + 1))):
            region = _blob(size, rng)
            img = corrupt(img, region, rng, kinds)
            mask |= region
    return img, mask.astype(np.uint8)


def write_dataset(out: str | Path, counts: dict[str, int], size: int = 128, seed: int = 0,
                  kinds: tuple[str, ...] = KINDS) -> Path:
    out = Path(out)
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, mask = make_sample(size, rng, kinds=kinds)
            Image.fromarray(img).save(out / "images" / split / f"{i:05d}.png")
            Image.fromarray(mask_to_uint8(mask)).save(out / "labels" / split / f"{i:05d}.png")
    return out


def write_example_set(out: str | Path, count: int, size: int = 128, seed: int = 0, kinds: tuple[str, ...] = KINDS,
                      clean_prob: float = 0.1) -> Path:
    """An example set as the hosts save one: ``example_NNNNN.png`` + ``example_NNNNN_mask.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, count + 1):
        img, mask = make_sample(size, rng, clean_prob=clean_prob, kinds=kinds)
        Image.fromarray(img).save(out / f"example_{i:05d}.png")
        Image.fromarray(mask_to_uint8(mask)).save(out / f"example_{i:05d}_mask.png")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=40)
    ap.add_argument("--test", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"corruptions to use, from {','.join(KINDS)}")
    a = ap.parse_args()
    counts = {k: v for k, v in (("train", a.train), ("val", a.val), ("test", a.test)) if v}
    print(write_dataset(a.out, counts, a.size, a.seed, tuple(k.strip() for k in a.kinds.split(","))))


if __name__ == "__main__":
    main()
