"""The training loop: one device or DDP under torchrun, gradient accumulation to keep the global
batch, AMP, per-step seeding (data and dropout), atomic checkpoints, exact resume, best-by-IoU.

:func:`train` reads as the run goes: split the batch over processes, check the data, build a
:class:`Trainer` (model, optimiser, schedule), restore it when resuming, then per step: sample,
:meth:`Trainer.step`, log, validate, checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..device import pick_device, pick_dtype
from ..distributed import World
from ..files import atomic_write
from ..model.checkpoint import CheckpointError, LoadedModel, load_checkpoint, load_torch_file, save_safetensors
from ..model.lora import folded_state_dict
from ..model.segmenter import PALSegmenter, preset

from .adapt import prepare
from .config import TrainConfig
from .data import StepDataset, TrainAugment, discover
from .metrics import Confusion, confusion, live_detector
from .optim import build_optimizer, build_scheduler, describe_schedule
from .errors import LearnError

log = logging.getLogger("pal4vst.train")


def init_distributed(device_pref: str) -> tuple[World, torch.device]:
    d = World.from_env()
    cuda = torch.cuda.is_available() and device_pref != "cpu"
    d.init("nccl" if cuda else "gloo")
    device = pick_device(device_pref)
    if device.type == "cuda" and d.size > 1:
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    return d, device


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (``amp`` none, or auto where fp32 is best)."""
    dtype = pick_dtype("fp32" if cfg.amp == "none" else cfg.amp, device)
    return None if dtype == torch.float32 else dtype


def build(cfg: TrainConfig, init: LoadedModel | None = None) -> PALSegmenter:
    """The model of ``cfg.preset`` (with the aux head) initialised as ``cfg.init`` says (from
    ``init`` when given: that file, already loaded with its aux head)."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()}
    model = PALSegmenter(preset(cfg.preset, **{**overrides, "aux": True, "drop_path": cfg.drop_path,
                                               "input_size": cfg.crop}))
    if cfg.init and not cfg.init.startswith("imagenet:"):
        from ..model.weights import resolve

        src = init or load_checkpoint(resolve(cfg.init), with_aux=True)
        # The architecture is the checkpoint's (fine-tuning keeps it), whatever the preset says.
        model = PALSegmenter(dataclasses.replace(src.config, aux=True, drop_path=cfg.drop_path, input_size=cfg.crop))
        own = model.state_dict()
        sd = {k: v for k, v in src.module.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(sd, strict=False)
        log.info("initialised from %s (%d of %d tensors)", cfg.init, len(sd), len(own))
    elif cfg.init.startswith("imagenet:"):
        from .pretrained import load_imagenet_backbone

        missing, unexpected = load_imagenet_backbone(model, cfg.init.split(":", 1)[1])
        log.info("ImageNet init: %d backbone tensors missing (%s), %d unused", len(missing), missing[:4], len(unexpected))
    return model


def _ignore_value(cfg: TrainConfig) -> int | None:
    return None if cfg.label_ignore < 0 else cfg.label_ignore


def seg_loss(main: torch.Tensor, aux: torch.Tensor | None, label: torch.Tensor, cfg: TrainConfig):
    """MMSeg's CrossEntropyLoss (avg_non_ignore False: mean over all pixels) + aux at ``aux_weight``."""
    def ce(logits):
        up = F.interpolate(logits.float(), size=label.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(up, label, ignore_index=cfg.ignore_index, reduction="none").mean()

    l_main = ce(main)
    l_aux = ce(aux) if aux is not None else torch.zeros((), device=main.device)
    return l_main + cfg.aux_weight * l_aux, l_main.detach(), l_aux.detach()


def split_batch(cfg: TrainConfig, world: World) -> tuple[int, int]:
    """``(micro-batch, accumulation steps)`` that keep the global batch over ``world``'s processes."""
    micro = cfg.micro_batch or max(1, cfg.batch // world.size)
    if cfg.batch % (micro * world.size):
        raise LearnError(f"batch {cfg.batch} is not a multiple of micro-batch {micro} x {world.size} processes")
    return micro, cfg.batch // (micro * world.size)


def load_data(cfg: TrainConfig, world: World) -> tuple[list, list]:
    """The checked training samples and the validation samples (the training ones without a val split)."""
    report = discover(cfg.data, "train")
    report.raise_if_errors(f"training data {cfg.data}")
    val = discover(cfg.data, "val")
    if world.main:
        for w in report.warnings[:10]:
            log.warning("%s", w)
    return report.samples, val.samples if val.samples and not val.errors else report.samples


def sample_batches(cfg: TrainConfig, samples: list, start: int, world: World, micro: int, accum: int,
                   device: torch.device) -> Iterator:
    """The micro-batches this rank draws from iteration ``start`` on: slot ``(rank * accum + a) *
    micro + k`` of each step, so one process with accumulation sees what a DDP run sees."""
    slots = [(world.rank * accum + a) * micro + k for a in range(accum) for k in range(micro)]
    augment = TrainAugment(cfg.crop, cfg.scale, cfg.ratio_range, cfg.cat_max_ratio, cfg.flip, cfg.ignore_index)
    data = StepDataset(samples, augment, cfg.seed, start, cfg.iters, slots, _ignore_value(cfg), cfg.ignore_index)
    return iter(torch.utils.data.DataLoader(data, batch_size=micro, shuffle=False, num_workers=cfg.workers,
                                            pin_memory=device.type == "cuda", drop_last=False))


@dataclasses.dataclass(frozen=True)
class Best:
    """The best validation so far: artifact IoU, mIoU and the iteration (-1: none yet)."""

    artifact_iou: float = -1.0
    miou: float = float("nan")
    iter: int = -1


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run ends with: its last loss, its best validation and its output folder."""

    last_loss: float
    best: Best
    out: str


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights as a saved model holds them (adapters folded), copied to the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in folded_state_dict(model).items()}


class Trainer:
    """The model, optimiser, schedule and AMP scaler of one run, and what happens to them.

    :meth:`validate` keeps the best score so far (``best``) and, with ``keep_best``, a copy of
    those weights (``best_weights``): what a stopped or finished fine-tune hands on."""

    def __init__(self, cfg: TrainConfig, world: World, device: torch.device, accum: int,
                 init: LoadedModel | None = None, keep_best: bool = False) -> None:
        self.cfg, self.world, self.device, self.accum = cfg, world, device, accum
        self.keep_best = keep_best
        self.best_weights: dict[str, torch.Tensor] | None = None
        torch.manual_seed(cfg.seed)
        self.model = build(cfg, init)
        self.learning = prepare(self.model, cfg.tune, cfg.lora_rank)
        self.model.to(device)
        if world.size > 1 and device.type == "cuda":
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.train_mode()
        self.net = (torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[device.index] if device.type == "cuda" else None) if world.size > 1 else self.model)
        self.opt = build_optimizer(self.model, cfg)
        # L2-SP: where the weights that learn started, to pull them back towards (see step)
        self.start = ({id(p): p.detach().clone() for g in self.opt.param_groups for p in g["params"]}
                      if cfg.anchor > 0 else {})
        self.sched = build_scheduler(self.opt, cfg)
        self.dtype = amp_dtype(cfg, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.done = 0
        self.best = Best()

    def train_mode(self) -> None:
        """Training mode; with ``freeze_bn`` the BatchNorm layers keep their running statistics
        (a few images would otherwise pull them away from everything the model learned before)."""
        self.model.train()
        if self.cfg.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    @property
    def lr(self) -> float:
        """The base learning rate of the current step (the head's multiplier taken out)."""
        group = self.opt.param_groups[0]
        return group["lr"] / group.get("lr_mult", 1.0)

    @torch.no_grad()
    def _anchor(self) -> None:
        """Pull every weight that learns back towards its starting value, ``anchor`` x its learning
        rate of the way (decoupled L2-SP): what the base knew is kept unless the examples need
        otherwise. At most all the way: a larger pull (a strong anchor on the heads' x10 rate)
        would overshoot the start and grow each step."""
        for group in self.opt.param_groups:
            pull = min(1.0, group["lr"] * self.cfg.anchor)
            for p in group["params"]:
                p.add_(p - self.start[id(p)], alpha=-pull)

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save`: weights, optimiser, schedule,
        scaler, iteration, best score and the random state."""
        try:
            state = load_torch_file(path)
            if not isinstance(state, dict) or not {"model", "optimizer", "iter"} <= set(state):
                raise CheckpointError(f"{path} is no training state written by training.train")
        except CheckpointError as e:
            raise CheckpointError(f"cannot resume: {str(e).split('; delete it')[0]}. Resume from another state "
                                  "(--resume PATH) or start the run again without --resume.") from None
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state.get("scaler", {}) or self.scaler.state_dict())
        self.done, self.best = int(state["iter"]), Best(**state["best"])
        torch.set_rng_state(state["rng"]["torch"])

    def step(self, batches: Iterator, it: int) -> torch.Tensor:
        """One optimiser step over ``accum`` micro-batches; the mean ``(loss, main, aux)`` over all
        processes. Dropout and drop path are seeded per step and micro-batch slot."""
        totals = torch.zeros(3, device=self.device)
        for a in range(self.accum):
            x, y = next(batches)
            x = self.model.config.normalise(x.to(self.device, non_blocking=True))  # the detector's normalisation
            y = y.to(self.device, non_blocking=True)
            torch.manual_seed(hash((self.cfg.seed, it, self.world.rank * self.accum + a)) % (2**63))
            sync = nullcontext() if (self.world.size == 1 or a == self.accum - 1) else self.net.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                    main, aux = self.net(x, features=True)
                loss, l_main, l_aux = seg_loss(main, aux, y, self.cfg)
                self.scaler.scale(loss / self.accum).backward()
            totals += torch.stack([loss.detach(), l_main, l_aux]) / self.accum
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        if self.start:
            self._anchor()
        self.sched.step()
        self.done = it + 1
        if self.world.size > 1:
            dist.all_reduce(totals)
            totals /= self.world.size
        return totals

    def validate(self, samples: list) -> Confusion:
        """IoU on ``samples``; a new best is kept as ``best``."""
        cfg = self.cfg
        was_training = self.model.training
        self.model.eval()
        try:
            detector = live_detector(self.model, cfg.crop, self.device, self.dtype)
            conf = confusion(detector, samples, _ignore_value(cfg), cfg.ignore_index)
        finally:
            if was_training:
                self.train_mode()
        if conf.artifact_iou > self.best.artifact_iou or (self.keep_best and self.best_weights is None):
            self.best = Best(conf.artifact_iou, conf.miou, self.done)
            if self.keep_best:
                self.best_weights = snapshot(self.model)
        return conf

    def save(self, path: Path) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "iter": self.done,
                 "best": dataclasses.asdict(self.best), "rng": {"torch": torch.get_rng_state()}, "config": json.dumps(self.cfg.to_dict())}
        atomic_write(path, lambda tmp: torch.save(state, tmp))


class RunLog:
    """What a run leaves to read (main process only): ``log.csv`` per step, ``val.csv`` per
    validation, ``config.json``, TensorBoard when installed, and a progress bar."""

    HEADER = ["iter", "loss", "loss_main", "loss_aux", "lr", "seconds"]

    def __init__(self, out: Path, cfg: TrainConfig, start: int, active: bool) -> None:
        self.out, self.cfg, self.active = out, cfg, active
        if not active:
            return
        self.file = self._open(out / "log.csv", start)
        self.csv = csv.writer(self.file)
        if start == 0:
            (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        self.tb = _tensorboard(out)
        from tqdm import tqdm

        self.bar = tqdm(total=cfg.iters, initial=start, unit="it", dynamic_ncols=True, disable=None)
        self.t_last = time.perf_counter()

    @staticmethod
    def _open(path: Path, start: int):
        """The loss log, cut back to ``start`` when resuming (a killed run may have logged past its
        last checkpoint)."""
        rows = []
        if start and path.exists():
            with path.open(newline="") as f:
                rows = [r for r in csv.reader(f) if r and r[0] != "iter" and int(r[0]) <= start]
        f = path.open("w", newline="")
        w = csv.writer(f)
        w.writerow(RunLog.HEADER)
        w.writerows(rows)
        f.flush()
        return f

    def step(self, done: int, totals: torch.Tensor, lr: float) -> None:
        if not self.active:
            return
        now = time.perf_counter()
        loss = float(totals[0])
        self.csv.writerow([done, f"{loss:.6f}", f"{float(totals[1]):.6f}", f"{float(totals[2]):.6f}", f"{lr:.3e}",
                           f"{now - self.t_last:.4f}"])
        self.t_last = now
        if done % self.cfg.log_interval == 0:
            self.file.flush()
            if self.tb:
                self.tb.add_scalar("loss", loss, done)
                self.tb.add_scalar("lr", lr, done)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}")

    def validation(self, done: int, conf: Confusion) -> None:
        path = self.out / "val.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["iter", "artifact_iou", "miou"])
            w.writerow([done, f"{conf.artifact_iou:.6f}", f"{conf.miou:.6f}"])
        if self.tb:
            self.tb.add_scalar("val/artifact_iou", conf.artifact_iou, done)
        log.info("iter %d: artifact IoU %.4f, mIoU %.4f", done, conf.artifact_iou, conf.miou)

    def close(self) -> None:
        if self.active:
            self.file.close()
            self.bar.close()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(out / "tb"))
    except Exception:  # noqa: BLE001 - tensorboard is optional
        return None


def train(cfg: TrainConfig, resume: str | bool = False, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train as ``cfg`` says; returns its :class:`TrainResult` (last loss, best IoU, output folder).

    ``resume``: continue from ``OUT/last.pt`` (True) or the checkpoint given. ``on_step(n)`` is
    called after step ``n`` and its checkpoint (progress reporting, or a test stopping the run).
    """
    world, device = init_distributed(cfg.device)
    out = Path(cfg.out)
    micro, accum = split_batch(cfg, world)
    train_samples, val_samples = load_data(cfg, world)
    out.mkdir(parents=True, exist_ok=True)  # only once the run can start: a refused one leaves no folder
    trainer = Trainer(cfg, world, device, accum)
    if resume:
        path = Path(resume) if isinstance(resume, str) else out / "last.pt"
        if path.is_file():
            trainer.restore(path)
            if world.main:
                log.info("resumed from %s at iteration %d", path, trainer.done)
        elif world.main:
            log.info("no checkpoint at %s: starting from scratch", path)
    if world.main:
        log.info("%s", describe_schedule(cfg))
    batches = sample_batches(cfg, train_samples, trainer.done, world, micro, accum, device)
    runlog = RunLog(out, cfg, trainer.done, world.main)
    loss = float("nan")
    try:
        for it in range(trainer.done, cfg.iters):
            lr = trainer.lr
            totals = trainer.step(batches, it)
            loss, done = float(totals[0]), trainer.done
            runlog.step(done, totals, lr)
            if done % cfg.val_interval == 0 or done == cfg.iters:
                if world.main:
                    before = trainer.best.iter
                    runlog.validation(done, trainer.validate(val_samples))
                    if trainer.best.iter != before:
                        save_safetensors(trainer.model, out / "best.safetensors", source_name=f"iter {done}")
                world.barrier()
            if done % cfg.ckpt_interval == 0 or done == cfg.iters:
                if world.main:
                    trainer.save(out / "last.pt")
                world.barrier()
            if on_step is not None:
                on_step(done)
    finally:
        runlog.close()
    if world.main:
        save_safetensors(trainer.model, out / "last.safetensors", source_name=f"iter {cfg.iters}")
    world.barrier()
    world.close()
    return TrainResult(loss, trainer.best, str(out))
