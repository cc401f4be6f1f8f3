"""Teach a PAL model a generator it has never seen, from a few examples, with an honest
before/after: what every host's Fine-tune runs (ComfyUI's node, the webui's tab) and
``python -m training.finetune``.

1. The examples are read and checked (:func:`pal4vst.learn.examples.read_set`).
2. Part of them is **held out** (``TeachOptions.held_out``, examples with artifacts and clean ones
   in proportion; a dataset's own ``val`` split when it has one). They are never trained on and
   never used to choose anything: they only judge, once before and once after.
3. The base model is fine-tuned on the rest, with the recipe's choice of what learns
   (:mod:`pal4vst.learn.adapt`). Every ``check_every`` steps the weights are scored on the
   *training* examples and the best so far is kept; Stop (``should_stop``) ends the run between
   two steps with that best.
4. Artifact IoU of base and fine-tuned model on the held-out examples; the model is written
   (atomically, never over an existing file or under a release's name) with the record in its
   metadata and in a JSON beside it. A fine-tuned model that is not better says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..device import pick_device
from ..distributed import World
from ..files import atomic_write
from ..detect import Detector
from ..model.checkpoint import CheckpointError, file_sha256, load_checkpoint, save_safetensors
from ..model.lora import folded_state_dict
from ..model.weights import RELEASES, resolve
from ..settings import TeachOptions
from .config import RECIPES as TRAIN_RECIPES
from .config import TrainConfig
from .data import Sample, load_label
from .examples import MIN_EXAMPLES, ExampleError, ExampleSet, read_set
from .metrics import Confusion, confusion, live_detector

#: What each recipe sets on top of the fine-tune recipe (``pal4vst.learn.config.RECIPES``),
#: chosen by ``benchmarks/bench_finetune.py`` (the README's table).
RECIPES: dict[str, dict[str, Any]] = {
    "default": dict(tune="all", iters=300, batch=2, warmup_iters=30, poly_end=0, drop_path=0.0, freeze_bn=True,
                    anchor=100.0, size=1.0),
    "quick": dict(tune="all", iters=100, batch=2, warmup_iters=10, poly_end=0, drop_path=0.0, freeze_bn=True,
                  anchor=100.0, size=0.75),
}
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
        return self.report["better"]

    @property
    def steps(self) -> int:
        return self.report["steps"]

    def summary(self) -> str:
        """The record as people read it (:func:`format_report`)."""
        return format_report(self.report)


def split(examples: ExampleSet, share: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """``(learn from, held out)``: a dataset's own ``val`` split, else about ``share`` of the
    examples, with artifacts and clean ones in proportion (at least one with artifacts on each
    side), chosen by a hash of their names and ``seed`` (the same set splits the same way)."""
    if examples.held_out:
        return examples.samples, examples.held_out
    samples = examples.samples
    marked = [s for s in samples if load_label(s).any()]
    if len(samples) < MIN_EXAMPLES or len(marked) < 2:
        raise ExampleError(
            f"{examples.path.name} has {len(samples)} example(s), {len(marked)} of them marking something: teaching "
            f"needs at least {MIN_EXAMPLES}, at least two of them with artifacts (one to learn from, one to judge by). "
            "About ten is what the paper used: add more (PAL Save Example in ComfyUI, Add to set in the webui).")
    order = lambda s: hashlib.sha1(f"{seed}:{s.image.name}".encode()).hexdigest()  # noqa: E731
    clean = sorted((s for s in samples if s not in marked), key=order)
    marked = sorted(marked, key=order)
    k = max(1, round(share * len(samples)))
    k_marked = max(1, min(len(marked) - 1, round(k * len(marked) / len(samples))))
    k_clean = min(len(clean), k - k_marked)
    held = marked[:k_marked] + clean[:k_clean]
    return [s for s in samples if s not in held], held


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


def _config(base: Path, model_size: int, options: TeachOptions, tune: str | None, overrides: dict[str, Any],
            run: Path, device: str) -> TrainConfig:
    recipe = dict(RECIPES[options.recipe])
    size = max(32, int(round(model_size * recipe.pop("size") / 32)) * 32)
    values = {**TRAIN_RECIPES["finetune"], **recipe, "crop": size, "scale": size, "init": str(base), "out": str(run),
              "seed": options.seed, "workers": 0, "device": device}
    if options.steps:
        values["iters"] = options.steps
    if options.lr:
        values["lr"] = options.lr
    if tune:
        values["tune"] = tune
    values.update(overrides)
    values["warmup_iters"] = min(values["warmup_iters"], max(1, values["iters"] // 10))
    return TrainConfig.from_dict(values)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights as a saved model holds them (adapters folded), copied to the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in folded_state_dict(model).items()}


def _score(detector, samples: list[Sample]) -> tuple[Confusion, list[dict[str, Any]]]:
    """Pooled confusion over ``samples`` and each one's IoU (None for a clean one) and marked share."""
    total, each = Confusion(), []
    for s in samples:
        c = confusion(detector, [s])
        total.matrix += c.matrix
        iou = c.artifact_iou
        each.append({"example": s.image.name, "iou": None if math.isnan(iou) else round(iou, 6),
                     "marked": round(float(c.matrix[:, 1].sum() / max(1, c.matrix.sum())), 6)})
    return total, each


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
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    base_name: str = "",
) -> TeachResult:
    """Fine-tune ``base`` (a release name or a file) on the examples in ``examples`` and write
    the result to ``out`` (see the module). ``tune`` and ``overrides`` (TrainConfig fields) replace
    the recipe's; ``on_step(step, steps, loss)`` follows the run; ``should_stop()`` is asked
    before every step. Raises :class:`~pal4vst.learn.examples.ExampleError` on a set that cannot
    teach (before anything is trained or written). Gradients are on for the run whatever the
    caller's mode (ComfyUI runs its nodes under ``torch.inference_mode``)."""
    with torch.inference_mode(False), torch.enable_grad():
        return _teach(base, examples, out, options, device, tune, overrides, overwrite, on_step, should_stop,
                      base_name)


def _teach(base, examples, out, options, device, tune, overrides, overwrite, on_step, should_stop,
           base_name) -> TeachResult:
    from ..model.segmenter import PALSegmenter
    from .engine import Trainer, sample_batches, split_batch

    t0 = time.perf_counter()
    base_path = resolve(str(base))
    path = target(out, overwrite)
    exset = read_set(examples)
    learn_from, held = split(exset, options.held_out, options.seed)
    loaded = load_checkpoint(base_path, with_aux=True)
    if loaded.output != "logits":
        raise CheckpointError(f"{base_path.name} cannot be taught: it is a TorchScript graph whose weights do not map "
                              "onto the model; teach the release's .pth (or a converted .safetensors) instead")
    dev = pick_device(device)
    world = World()
    with tempfile.TemporaryDirectory(prefix="pal4vst_teach_") as run:
        cfg = _config(base_path, loaded.config.input_size, options, tune, overrides or {}, Path(run), str(dev))
        before, before_each = _score(Detector(loaded, device=str(dev), dtype="fp32"), held)  # as it detects
        base_size, base_sha = loaded.config.input_size, loaded.sha256
        micro, accum = split_batch(cfg, world)
        loaded.module.cpu()  # off the device before the trainer puts its copy there
        trainer = Trainer(cfg, world, dev, accum, init=loaded)  # from this read, not another one
        del loaded  # the trainer has its own copy; this one would stay in memory through the run
        batches = sample_batches(cfg, learn_from, 0, world, micro, accum, dev)
        check_every = max(1, cfg.iters // CHECKS)
        best_score, best_state, best_step, done, loss = -1.0, None, 0, 0, float("nan")
        stopped = False

        def keep_if_best(score: float, model: torch.nn.Module) -> None:  # the first scoring, then a better one
            nonlocal best_score, best_step, best_state
            if best_state is None or score > best_score:
                best_score, best_step, best_state = score, done, _snapshot(model)

        for it in range(cfg.iters):
            if should_stop is not None and should_stop():
                stopped = True
                break
            loss = float(trainer.step(batches, it)[0])
            done = it + 1
            if on_step is not None:
                on_step(done, cfg.iters, loss)
            if done % check_every == 0 or done == cfg.iters:
                keep_if_best(trainer.validate(learn_from).artifact_iou, trainer.model)
        if best_state is None or (stopped and best_step < done):  # stopped between checks: the latest may be best
            keep_if_best(trainer.validate(learn_from).artifact_iou if done else -1.0, trainer.model)
        model = PALSegmenter(dataclasses.replace(trainer.model.config, drop_path=0.0, input_size=base_size))
        del trainer, batches
        model.load_state_dict(best_state)
        model.eval().to(dev)
        after, after_each = _score(live_detector(model, model.config.input_size, dev, None), held)
    better = after.artifact_iou > before.artifact_iou
    name = base_name or (str(base) if str(base) in RELEASES else Path(base_path).name)
    verdict = ("Better on the held-out examples." if better else
               f"NOT better on the held-out examples: keep using {name} (this model was saved for inspection only).")
    report = {
        "model": path.name, "base": name, "base_sha256": base_sha or file_sha256(base_path),
        "examples": str(exset.path), "example_set": exset.path.name, "examples_sha256": exset.sha256(),
        "learned_from": [s.image.name for s in learn_from], "held_out": [s.image.name for s in held],
        "skipped": exset.skipped, "notes": exset.notes, "recipe": options.recipe, "tune": cfg.tune, "steps": best_step, "steps_run": done,
        "steps_planned": cfg.iters, "stopped_early": stopped, "last_loss": round(loss, 6) if done else None,
        "iou_before": round(before.artifact_iou, 6) if not math.isnan(before.artifact_iou) else 0.0,
        "iou_after": round(after.artifact_iou, 6) if not math.isnan(after.artifact_iou) else 0.0,
        "better": better, "verdict": verdict,
        "per_example": [{"example": b["example"], "iou_before": b["iou"], "iou_after": a["iou"],
                         "marked_before": b["marked"], "marked_after": a["marked"]}
                        for b, a in zip(before_each, after_each)],
        "train_size": cfg.crop, "device": str(dev), "seconds": round(time.perf_counter() - t0, 1),
        "pal4vst_version": __version__,
    }
    meta = {"teach_" + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in report.items()
            if k in ("base", "base_sha256", "example_set", "examples_sha256", "steps", "iou_before", "iou_after",
                     "better", "recipe", "tune")}
    save_safetensors(model.cpu(), path, source_sha256=report["base_sha256"], source_name=name,
                     extra={**meta, "teach_report": json.dumps(report)})
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(report, indent=2)))
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return TeachResult(path, report)


def format_report(report: dict[str, Any]) -> str:
    """The record as people read it: the verdict first, then each held-out example."""
    r = report
    stop = f", stopped at step {r['steps_run']} of {r['steps_planned']}" if r["stopped_early"] else ""
    lines = [r["verdict"],
             f"artifact IoU on the {len(r['held_out'])} held-out example(s): {r['iou_before']:.3f} ({r['base']}) -> "
             f"{r['iou_after']:.3f} ({r['model']}); learned from {len(r['learned_from'])} example(s) of "
             f"{r['example_set']}, {r['steps']} steps kept ({r['recipe']} recipe, {r['tune']}{stop}), "
             f"{r['seconds']:.0f} s on {r['device']}"]
    for e in r["per_example"]:
        if e["iou_before"] is None:
            lines.append(f"  {e['example']}: clean; marked {e['marked_before']:.1%} -> {e['marked_after']:.1%}")
        else:
            lines.append(f"  {e['example']}: IoU {e['iou_before']:.3f} -> {e['iou_after']:.3f}")
    lines += [f"  skipped: {line}" for line in r["skipped"]]
    lines += [f"  note: {line}" for line in r.get("notes", [])]
    return "\n".join(lines)


def read_report(path: str | Path) -> dict[str, Any] | None:
    """The teaching record a model file carries in its metadata, or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            text = (f.metadata() or {}).get("teach_report")
    except Exception:  # noqa: BLE001 - not a safetensors file, or no record: no report
        return None
    return json.loads(text) if text else None


