"""Teach a PAL model a generator it has never seen, from a few examples, with a verdict every
example backs: what every host's Fine-tune runs (ComfyUI's node, the webui's tab), ``pal4vst
teach`` and ``python -m training.finetune``.

1. The examples are read and checked (:func:`pal4vst.learn.examples.read_set`).
2. **Folds judge the recipe on this set** (:mod:`pal4vst.learn.verdict`): the examples are dealt
   into ``k`` folds; for each, a model learns from the other folds and judges that one. Every
   example is judged once, by a model that never learned from it, before (the base) and after.
   A dataset in the released layout is judged by its own ``val`` split instead (one training).
3. The verdict: pooled artifact IoU before and after over all judged examples, a bootstrap
   interval of the gain, how many examples got better or worse: **better**, **worse** or **not
   shown better**.
4. The model the user gets then learns from every example (``k + 1`` trainings in all). Each
   training scores its weights on its *training* examples every ``steps / CHECKS`` steps and
   keeps the best so far; Stop (``should_stop``) ends the run between two steps with that best.
5. The model is written (atomically, never over an existing file or under a release's name) with
   the record in its metadata and in a JSON beside it. Hosts pass it on only when it is better.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..device import pick_device
from ..distributed import World
from ..files import atomic_write
from ..detect import Detector
from ..model.checkpoint import CheckpointError, LoadedModel, file_sha256, load_checkpoint, save_safetensors
from ..model.weights import RELEASES, resolve
from ..settings import TeachOptions
from . import verdict as V
from .config import TrainConfig, model_lr
from .data import Sample
from .examples import ExampleError, ExampleSet, check_teachable, read_set
from .metrics import confusion, live_detector
from .recipes import RECIPES, TEACH, teach_recipe

CHECKS = 6  # scorings of the training examples over a run (the best so far is kept)


@dataclass
class TeachResult:
    """The written model and its record (also in the JSON beside it and in its metadata)."""

    path: Path
    report: dict[str, Any]

    @property
    def iou_before(self) -> float:
        return self.report["iou_before"]

    @property
    def iou_after(self) -> float:
        return self.report["iou_after"]

    @property
    def better(self) -> bool:
        """Only when the verdict is "better": what hosts pass on."""
        return self.report["better"]

    @property
    def steps(self) -> int:
        return self.report["steps"]

    def summary(self) -> str:
        """The record as people read it (:func:`format_report`)."""
        return format_report(self.report)


@dataclass(frozen=True)
class Fold:
    """One training of a teach run: what it learns from, and what it judges (nothing for the final one)."""

    learn_from: list[Sample]
    judged: list[Sample]


def plan(examples: ExampleSet, share: float, seed: int = 0) -> tuple[list[Fold], bool]:
    """The trainings of a teach run and whether a final one on every example follows: ``k``
    folds judging the set (:func:`pal4vst.learn.verdict.fold_count`), or a dataset's own ``val``
    split judging one model that learned from the rest (no final training)."""
    if examples.held_out:
        return [Fold(examples.samples, examples.held_out)], False
    samples = examples.samples
    marked = check_teachable(examples)
    k = V.fold_count(sum(marked), share)
    fold = V.deal([s.image.name for s in samples], marked, k, seed)
    folds = [Fold([s for s, f in zip(samples, fold) if f != i], [s for s, f in zip(samples, fold) if f == i])
             for i in range(k)]
    return folds, True


def target(out: str | Path, overwrite: bool = False) -> Path:
    """The file to write: never under a release's name (it would stand in for the release), and,
    unless ``overwrite``, never over an existing file (``name_2.safetensors`` and so on)."""
    out = Path(out)
    if out.suffix.lower() != ".safetensors":
        out = out.with_name(out.name + ".safetensors")
    if out.stem.lower() in RELEASES:
        raise ExampleError(f"{out.stem!r} is the name of a released model: a file of that name would be loaded in its "
                           "place; choose another name")
    if overwrite:
        return out
    n, free = 1, out
    while free.exists() or free.with_suffix(".json").exists():
        n += 1
        free = out.with_name(f"{out.stem}_{n}{out.suffix}")
    return free


def _config(base: Path, model: LoadedModel, options: TeachOptions, tune: str | None, overrides: dict[str, Any],
            device: str) -> TrainConfig:
    recipe = TEACH[options.recipe][1]
    size = max(32, int(round(model.config.input_size * recipe / 32)) * 32)
    values = {**RECIPES["finetune"], **teach_recipe(options.recipe), "crop": size, "scale": size, "init": str(base),
              "out": "", "seed": options.seed, "workers": 0, "device": device, "lr": model_lr(model.config)}
    if options.steps:
        values["iters"] = options.steps
    if options.lr:
        values["lr"] = options.lr
    if tune:
        values["tune"] = tune
    values.update(overrides)
    values["warmup_iters"] = min(values["warmup_iters"], max(1, values["iters"] // 10))
    return TrainConfig.from_dict(values)


@dataclass
class Fit:
    """One training's outcome: the best weights by score on its own examples, and how it went."""

    weights: dict[str, torch.Tensor]
    config: Any  # the trained model's ModelConfig
    best_step: int
    done: int
    stopped: bool
    checks: list[list]  # [step, artifact IoU on its training examples)
    loss: float
    learned: list[str]  # the examples it was trained on, by name


def _fit(loaded: LoadedModel, samples: list[Sample], cfg: TrainConfig, dev: torch.device,
         on_step: Callable[[int, float], None], should_stop: Callable[[], bool] | None) -> Fit:
    """Fine-tune ``loaded`` on ``samples`` as ``cfg`` says, keeping the best weights so far."""
    from .engine import Trainer, sample_batches, split_batch

    world = World()
    micro, accum = split_batch(cfg, world)
    trainer = Trainer(cfg, world, dev, accum, init=loaded, keep_best=True)
    batches = sample_batches(cfg, samples, 0, world, micro, accum, dev)
    check_every = max(1, cfg.iters // CHECKS)
    checks, loss, stopped = [], float("nan"), False
    for it in range(cfg.iters):
        if should_stop is not None and should_stop():
            stopped = True
            break
        loss = float(trainer.step(batches, it)[0])
        on_step(trainer.done, loss)
        if trainer.done % check_every == 0 or trainer.done == cfg.iters:
            checks.append([trainer.done, round(trainer.validate(samples).artifact_iou, 6)])
    if trainer.best_weights is None or (stopped and trainer.best.iter < trainer.done):
        checks.append([trainer.done, round(trainer.validate(samples).artifact_iou, 6)])  # the latest may be best
    return Fit(trainer.best_weights, trainer.model.config, trainer.best.iter, trainer.done, stopped, checks, loss,
               [s.image.name for s in samples])


def _model(fit: Fit, input_size: int, dev: torch.device) -> torch.nn.Module:
    from ..model.segmenter import PALSegmenter

    model = PALSegmenter(dataclasses.replace(fit.config, drop_path=0.0, input_size=input_size))
    model.load_state_dict(fit.weights)
    return model.eval().to(dev)


def _row(detector, sample: Sample) -> dict[str, Any]:
    """One example as a detector sees it: its artifact (tp, fp, fn) and pixel count."""
    m = confusion(detector, [sample]).matrix
    return {"counts": V.counts(m), "pixels": int(m.sum())}


def _pooled(rows: dict[str, dict[str, Any]], names: list[str]) -> float:
    return round(float(V.pooled_iou(np.stack([rows[n]["counts"] for n in names]))), 6)


def _iou(c: np.ndarray) -> float | None:
    return None if c[0] + c[2] == 0 else round(float(V.pooled_iou(c[None])), 6)


class _Progress:
    """Steps counted over every training of the run, for a host's one progress bar."""

    def __init__(self, on_step: Callable[..., None] | None, trainings: int, steps: int) -> None:
        self.on_step, self.trainings, self.steps = on_step, trainings, steps

    def start(self, index: int, stage: str) -> Callable[[int, float], None]:
        """The ``on_step(done, loss)`` of training ``index`` (0-based), shown as ``stage``."""
        def step(done: int, loss: float) -> None:
            if self.on_step is not None:
                self.on_step(index * self.steps + done, self.trainings * self.steps, loss, stage)
        return step


def teach(
    base: str | Path,
    examples: str | Path,
    out: str | Path,
    options: TeachOptions = TeachOptions(),
    *,
    device: str = "auto",
    tune: str | None = None,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
    on_step: Callable[[int, int, float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    base_name: str = "",
) -> TeachResult:
    """Fine-tune ``base`` (a release name or a file) on the examples in ``examples``, judge it,
    and write the result to ``out`` (see the module). ``tune`` and ``overrides`` (TrainConfig
    fields) replace the recipe's; ``on_step(step, steps, loss, stage)`` follows the run over all
    its trainings (``stage``: "fold 2 of 3", "final"); ``should_stop()`` is asked before every
    step. Raises :class:`~pal4vst.learn.examples.ExampleError` on a set that cannot teach (before
    anything is trained or written). Gradients are on for the run whatever the caller's mode
    (ComfyUI runs its nodes under ``torch.inference_mode``)."""
    with torch.inference_mode(False), torch.enable_grad():
        return _teach(base, examples, out, options, device, tune, overrides, overwrite, on_step, should_stop,
                      base_name)


@dataclass
class _Judged:
    """What the folds left: each judged example's row after, its fold, each fold's record, and
    the training whose model is written (the final one, or the fold a Stop ended)."""

    after: dict[str, dict[str, Any]]
    fold_of: dict[str, int]
    records: list[dict[str, Any]]
    kept: Fit
    stopped_in: int | None  # the fold a Stop ended (its model is the one written)


def _cross_fit(loaded: LoadedModel, folds: list[Fold], final: bool, exset: ExampleSet, cfg: TrainConfig,
               dev: torch.device, progress: _Progress, should_stop, before: dict[str, dict[str, Any]]) -> _Judged:
    """Train and judge each fold, then (unless a fold was stopped, or a dataset's own split
    judges) the final model on every example."""
    size = loaded.config.input_size
    after: dict[str, dict[str, Any]] = {}
    fold_of: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    for i, fold in enumerate(folds):
        fit = _fit(loaded, fold.learn_from, cfg, dev, progress.start(i, f"fold {i + 1} of {len(folds)}" if final
                                                                     else "training"), should_stop)
        model = _model(fit, size, dev)
        judge = live_detector(model, size, dev, None)
        names = [s.image.name for s in fold.judged]
        for s in fold.judged:
            after[s.image.name], fold_of[s.image.name] = _row(judge, s), i + 1
        records.append({"fold": i + 1, "learned_from": fit.learned, "judged": names,
                        "iou_before": _pooled(before, names), "iou_after": _pooled(after, names),
                        "steps": fit.best_step, "steps_run": fit.done, "checks": fit.checks})
        del model, judge
        if fit.stopped or not final:
            return _Judged(after, fold_of, records, fit, i if fit.stopped and final else None)
    kept = _fit(loaded, exset.samples, cfg, dev, progress.start(len(folds), "final"), should_stop)
    return _Judged(after, fold_of, records, kept, None)


def _judge(before: dict[str, dict[str, Any]], j: _Judged, folds: list[Fold], final: bool, exset: ExampleSet,
           cfg: TrainConfig, base: str, seed: int) -> tuple[V.Verdict, list[str], str, str]:
    """``(verdict, judged example names, headline, caveat)`` for the model that is written."""
    judged = [n for n in before if n in j.after and (j.stopped_in is None or j.fold_of[n] == j.stopped_in + 1)]
    verdict = V.judge(np.stack([before[n]["counts"] for n in judged]), np.stack([j.after[n]["counts"] for n in judged]),
                      np.array([before[n]["pixels"] for n in judged]), seed)
    caveat = ""
    if j.stopped_in is not None:
        caveat = (f"Stopped in fold {j.stopped_in + 1} of {len(folds)}: this model learned from "
                  f"{len(j.kept.learned)} of the {len(exset.samples)} examples and is judged on the {len(judged)} it did not learn from.")
    elif j.kept.stopped and final:
        if verdict.better:  # the folds judged full runs: a stopped final training is not what they judged
            verdict = dataclasses.replace(verdict, kind=V.NOT_SHOWN, more_examples=None)
        caveat = (f"Stopped at step {j.kept.done} of {cfg.iters} of the final training: the folds judged full runs, "
                  "not this one; run again without stopping to use it.")
    elif final:
        caveat = (f"The {len(folds)} folds judged the recipe on this set; this model then learned from all "
                  f"{len(exset.samples)} examples.")
    headline = verdict.headline(base)
    if not verdict.better:
        headline += " This model was saved for inspection only."
    return verdict, judged, headline, caveat


def _teach(base, examples, out, options, device, tune, overrides, overwrite, on_step, should_stop,
           base_name) -> TeachResult:
    t0 = time.perf_counter()
    base_path = resolve(str(base))
    path = target(out, overwrite)
    exset = read_set(examples)
    folds, final = plan(exset, options.held_out, options.seed)
    loaded = load_checkpoint(base_path, with_aux=True)
    if loaded.output != "logits":
        raise CheckpointError(f"{base_path.name} cannot be taught: it is a TorchScript graph whose weights do not map "
                              "onto the model; teach the release's .pth (or a converted .safetensors) instead")
    dev = pick_device(device)
    base_size, base_sha = loaded.config.input_size, loaded.sha256
    base_detector = Detector(loaded, device=str(dev), dtype="fp32")  # "before" is the base as it detects
    before = {s.image.name: _row(base_detector, s) for f in folds for s in f.judged}
    del base_detector
    loaded.module.cpu()  # each training puts its own copy on the device
    trainings = len(folds) + final
    cfg = _config(base_path, loaded, options, tune, overrides or {}, str(dev))
    j = _cross_fit(loaded, folds, final, exset, cfg, dev, _Progress(on_step, trainings, cfg.iters), should_stop,
                   before)
    del loaded
    name = base_name or (str(base) if str(base) in RELEASES else Path(base_path).name)
    verdict, judged, headline, caveat = _judge(before, j, folds, final, exset, cfg, name, options.seed)
    kept = j.kept
    report = {
        "model": path.name, "base": name, "base_sha256": base_sha or file_sha256(base_path),
        "examples": str(exset.path), "example_set": exset.path.name, "examples_sha256": exset.sha256(),
        "learned_from": j.kept.learned, "held_out": judged,
        "skipped": exset.skipped, "notes": exset.notes, "recipe": options.recipe, "tune": cfg.tune, "lr": cfg.lr,
        "steps": kept.best_step, "steps_run": kept.done, "steps_planned": cfg.iters, "checks": kept.checks,
        "stopped_early": kept.stopped, "last_loss": round(kept.loss, 6) if kept.done else None,
        "trainings": trainings, "trainings_run": len(j.records) + (final and j.stopped_in is None),
        "steps_total": trainings * cfg.iters, "folds": j.records,
        **verdict.as_dict(), "better": verdict.better, "verdict": headline, "caveat": caveat,
        "per_example": [_example_row(n, j.fold_of[n], before[n], j.after[n]) for n in judged],
        "train_size": cfg.crop, "device": str(dev), "seconds": round(time.perf_counter() - t0, 1),
        "pal4vst_version": __version__,
    }
    _write(_model(kept, base_size, torch.device("cpu")), path, report)
    del kept, j
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return TeachResult(path, report)


def _example_row(name: str, fold: int, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One judged example in the record: IoU before and after (None for a clean one), share marked."""
    def marked(row):
        return round(int(row["counts"][:2].sum()) / max(1, row["pixels"]), 6)

    return {"example": name, "fold": fold, "iou_before": _iou(before["counts"]), "iou_after": _iou(after["counts"]),
            "marked_before": marked(before), "marked_after": marked(after)}


def _write(model: torch.nn.Module, path: Path, report: dict[str, Any]) -> None:
    """The model with its record in its metadata, and the record beside it (both atomic)."""
    meta = {"teach_" + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in report.items()
            if k in ("base", "base_sha256", "example_set", "examples_sha256", "steps", "iou_before", "iou_after",
                     "better", "verdict_kind", "gain_low", "gain_high", "recipe", "tune", "lr")}
    save_safetensors(model, path, source_sha256=report["base_sha256"], source_name=report["base"],
                     extra={**meta, "teach_report": json.dumps(report)})
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(report, indent=2)))


def format_report(report: dict[str, Any]) -> str:
    """The record as people read it: the verdict first, how sure it is, then each judged example."""
    r = report
    lines = [r["verdict"],
             f"{r['improved']} example(s) better, {r['worsened']} worse, {r['unchanged']} unchanged of {r['judged']} "
             f"judged; a gain counts from {r['min_gain']:+.2f} with the interval above zero.",
             r["caveat"],
             f"{r['recipe']} recipe ({r['tune']}, lr {r['lr']:g}): {r['trainings_run']} of {r['trainings']} trainings "
             f"of {r['steps_planned']} steps, this model's best at step {r['steps']}; {r['seconds']:.0f} s on "
             f"{r['device']}; {r['base']} -> {r['model']}"]
    for e in r["per_example"]:
        fold = f" (fold {e['fold']})"
        if e["iou_before"] is None:
            lines.append(f"  {e['example']}{fold}: clean; marked {e['marked_before']:.1%} -> {e['marked_after']:.1%}")
        else:
            lines.append(f"  {e['example']}{fold}: IoU {e['iou_before']:.3f} -> {e['iou_after']:.3f}")
    lines += [f"  skipped: {line}" for line in r["skipped"]]
    lines += [f"  note: {line}" for line in r.get("notes", [])]
    return "\n".join(line for line in lines if line)


def read_report(path: str | Path) -> dict[str, Any] | None:
    """The teaching record a model file carries in its metadata, or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            text = (f.metadata() or {}).get("teach_report")
    except Exception:  # noqa: BLE001 - not a safetensors file, or no record: no report
        return None
    return json.loads(text) if text else None


