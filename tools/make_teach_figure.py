"""Draw docs/teach.jpg: teaching PAL a generator it never saw, drawn by the real code.

A small base model (the tiny preset) learns one synthetic artifact kind ("noise"); an artist's
ten examples of another kind ("solid": flat saturated patches the base does not mark) teach it
with :func:`pal4vst.learn.teach.teach`, the job every host runs. Each row is an unseen image of
the new kind (the model written learned from all ten examples): the base model's mask, the
taught model's, and its label. Then one image of the old kind: still found.

    python tools/make_teach_figure.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pal4vst.detect import Detector  # noqa: E402
from pal4vst.learn.teach import teach  # noqa: E402
from pal4vst.model.checkpoint import load_checkpoint  # noqa: E402
from pal4vst.render import mask_to_uint8  # noqa: E402
from pal4vst.settings import TeachOptions  # noqa: E402
from tools.figures import save_grid, tile  # noqa: E402
from pal4vst.testing import teaching_scenario  # noqa: E402


def main() -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        known = teaching_scenario(tmp, val=4)
        base, old, examples = known["base"], known["old"], known["examples"]
        res = teach(base, examples, tmp / "taught.safetensors", TeachOptions(), device="cpu")
        before = Detector(load_checkpoint(base), device="cpu", dtype="fp32")
        after = Detector(load_checkpoint(res.path), device="cpu", dtype="fp32")
        def white(mask: np.ndarray) -> np.ndarray:
            return np.repeat(mask_to_uint8(mask)[..., None], 3, axis=2)

        def iou(mask: np.ndarray, truth: np.ndarray) -> float:
            union = (mask | truth).sum()
            return float((mask & truth).sum() / union) if union else 0.0

        rows = []  # unseen images of the new kind: the model written learned from every example
        for path in sorted((known["new"] / "images" / "val").glob("*.png"))[:3]:
            img = np.asarray(Image.open(path).convert("RGB"))
            truth = np.asarray(Image.open(known["new"] / "labels" / "val" / path.name)) > 0
            b, a = before(img).mask, after(img).mask
            rows.append([tile("an unseen image of the new kind", img, 220, 15),
                         tile(f"base model: IoU {iou(b, truth):.2f}", white(b), 220, 15),
                         tile(f"taught: IoU {iou(a, truth):.2f}", white(a), 220, 15),
                         tile("its label", white(truth), 220, 15)])
        img = np.asarray(Image.open(next((old / "images" / "val").glob("*.png"))).convert("RGB"))
        truth = np.asarray(Image.open(next((old / "labels" / "val").glob("*.png")))) > 0
        rows.append([tile("the kind the base knew", img, 220, 15), tile("base model", white(before(img).mask), 220, 15),
                     tile("taught: still found", white(after(img).mask), 220, 15),
                     tile("its label", white(truth), 220, 15)])
        dest = ROOT / "docs" / "teach.jpg"
        out = save_grid(rows, dest, quality=88, fit=(960, 10_000))
        print(dest, out.size)
        print(res.summary())


if __name__ == "__main__":
    main()
