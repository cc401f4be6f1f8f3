"""Is a taught model better? Judged with every example, each by a model that did not learn from it.

Cross-fitting: the examples are dealt into ``k`` folds (those with artifacts and clean ones in
proportion); each fold is judged by a model that learned from the other folds. Every example is
then judged once, before (the base) and after, and the gain is the pooled artifact IoU over all
of them. Its uncertainty is a bootstrap over examples (the set is a sample of the generator's
images: another ten would give another gain). Three verdicts:

- **better**: the interval's lower bound is above zero and the gain is at least :data:`MIN_GAIN`;
- **worse**: the interval's upper bound is below zero;
- **not shown better**: anything else (add examples: :func:`examples_needed` says about how many).

The folds judge the *recipe on this set*; the model the user gets learns from every example.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_GAIN = 0.02  # artifact IoU: a smaller gain is no reason to change models
CONFIDENCE = 0.95  # of the bootstrap interval
BOOTSTRAP = 4000  # resamples
MARKED_PER_FOLD = 3  # examples with artifacts each fold judges, where the set allows
MAX_FOLDS = 10
CHANGE = 0.01  # an example whose IoU (marked share, for a clean one) moves less than this is unchanged

BETTER, WORSE, NOT_SHOWN = "better", "worse", "not shown better"


def fold_count(marked: int, share: float) -> int:
    """``k``: about ``1 / share`` folds, fewer when that would leave a fold fewer than
    :data:`MARKED_PER_FOLD` examples with artifacts to judge by, and at least two."""
    wanted = max(2, min(MAX_FOLDS, round(1 / share)))
    return max(2, min(wanted, marked // MARKED_PER_FOLD, marked))


def deal(names: Sequence[str], marked: Sequence[bool], k: int, seed: int = 0) -> list[int]:
    """The fold of each example: those with artifacts dealt round the folds in an order fixed
    by a hash of their names and ``seed``, then the clean ones, continuing where they stopped
    (so the same set folds the same way, and every fold gets its share of both)."""
    order = sorted(range(len(names)), key=lambda i: (not marked[i], hashlib.sha1(f"{seed}:{names[i]}".encode())
                                                       .hexdigest()))
    fold = [0] * len(names)
    for n, i in enumerate(order):
        fold[i] = n % k
    return fold


def counts(matrix: np.ndarray) -> np.ndarray:
    """``(tp, fp, fn)`` of the artifact class from a 2x2 confusion matrix (rows: truth)."""
    m = np.asarray(matrix)
    return np.array([m[1, 1], m[0, 1], m[1, 0]], np.int64)


def pooled_iou(tfn: np.ndarray) -> np.ndarray:
    """Artifact IoU of ``(..., n, 3)`` (tp, fp, fn) rows summed over the examples (0 where nothing
    is marked or true)."""
    s = np.asarray(tfn, np.float64).sum(-2)
    union = s[..., 0] + s[..., 1] + s[..., 2]
    return np.where(union > 0, s[..., 0] / np.maximum(union, 1), 0.0)


@dataclass(frozen=True)
class Verdict:
    """What the judged examples say about a taught model, with how sure that is."""

    kind: str  # BETTER, WORSE or NOT_SHOWN
    before: float  # pooled artifact IoU of the base
    after: float  # of the taught models (each example by one that did not learn from it)
    low: float  # the gain's interval (CONFIDENCE)
    high: float
    examples: int
    improved: int
    worsened: int
    unchanged: int
    more_examples: int | None  # about how many more examples would show the gain, when that can be said

    @property
    def gain(self) -> float:
        return self.after - self.before

    @property
    def better(self) -> bool:
        return self.kind == BETTER

    def headline(self, base: str) -> str:
        """One line: the verdict and what to do."""
        said = (f"artifact IoU {self.before:.3f} -> {self.after:.3f} on examples it did not learn from (gain "
                f"{self.gain:+.3f}, {CONFIDENCE:.0%} interval {self.low:+.3f} to {self.high:+.3f})")
        if self.kind == BETTER:
            return f"Better: {said}."
        if self.kind == WORSE:
            return f"WORSE: {said}: keep using {base}."
        if self.more_examples:
            add = f"add examples (about {self.more_examples} more would show a gain this size, if it holds)"
        elif self.gain < MIN_GAIN:
            add = (f"the gain is below the minimum of {MIN_GAIN:+.2f}; examples of what the base misses, with careful "
                   "masks, help most")
        else:
            add = "add examples"
        return f"NOT shown better: {said}: keep using {base}; {add}."

    def as_dict(self) -> dict:
        return {"verdict_kind": self.kind, "iou_before": round(self.before, 6), "iou_after": round(self.after, 6),
                "gain": round(self.gain, 6), "gain_low": round(self.low, 6), "gain_high": round(self.high, 6),
                "confidence": CONFIDENCE, "min_gain": MIN_GAIN, "judged": self.examples,
                "improved": self.improved, "worsened": self.worsened, "unchanged": self.unchanged,
                "more_examples": self.more_examples}


def interval(before: np.ndarray, after: np.ndarray, seed: int = 0, reps: int = BOOTSTRAP) -> tuple[float, float]:
    """Percentile bootstrap interval of the pooled IoU gain, resampling examples (their before
    and after rows together)."""
    n = len(before)
    idx = np.random.default_rng(seed).integers(0, n, (reps, n))
    gains = pooled_iou(after[idx]) - pooled_iou(before[idx])
    tail = (1 - CONFIDENCE) / 2
    return float(np.quantile(gains, tail)), float(np.quantile(gains, 1 - tail))


def _change(before: np.ndarray, after: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """+1, -1 or 0 per example: its own IoU up or down by :data:`CHANGE` (for a clean one, the
    share of its pixels marked down or up)."""
    marked = (before[:, 0] + before[:, 2]) > 0
    iou_b, iou_a = pooled_iou(before[:, None]), pooled_iou(after[:, None])
    fp_b, fp_a = before[:, 1] / np.maximum(pixels, 1), after[:, 1] / np.maximum(pixels, 1)
    delta = np.where(marked, iou_a - iou_b, fp_b - fp_a)
    return np.where(delta > CHANGE, 1, np.where(delta < -CHANGE, -1, 0))


def examples_needed(n: int, gain: float, low: float) -> int | None:
    """About how many more examples would bring the interval's lower bound to half the gain, were
    the gain to hold (the half-width shrinks as one over the square root of the count: a rough
    guide, as an interval from few examples is itself rough); None when the gain is too small
    to be worth showing."""
    if gain < MIN_GAIN or low > 0:
        return None
    half = gain - low
    total = math.ceil(n * (2 * half / gain) ** 2)
    return max(1, total - n)


def judge(before: np.ndarray, after: np.ndarray, pixels: np.ndarray, seed: int = 0) -> Verdict:
    """The verdict on ``(n, 3)`` (tp, fp, fn) rows of the same examples before and after, each
    with its pixel count."""
    before, after = np.asarray(before, np.int64), np.asarray(after, np.int64)
    if len(before) == 0:
        raise ValueError("no judged examples")
    b, a = float(pooled_iou(before)), float(pooled_iou(after))
    low, high = interval(before, after, seed)
    change = _change(before, after, np.asarray(pixels))
    if low > 0 and a - b >= MIN_GAIN:
        kind = BETTER
    elif high < 0:
        kind = WORSE
    else:
        kind = NOT_SHOWN
    return Verdict(kind, b, a, low, high, len(before), int((change > 0).sum()), int((change < 0).sum()),
                   int((change == 0).sum()), examples_needed(len(before), a - b, low) if kind == NOT_SHOWN else None)
