"""The training loop: one device or DDP under torchrun, gradient accumulation to keep the global
batch, AMP, per-step seeding (data and dropout), atomic checkpoints, exact resume, best-by-IoU."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from pal4vst.model.checkpoint import load_checkpoint, load_torch_file, save_safetensors
from pal4vst.device import pick_device, pick_dtype
from pal4vst.files import atomic_write
from pal4vst.distributed import World
from pal4vst.model.segmenter import PALSegmenter, preset

from .config import TrainConfig
from .data import EvalDataset, StepDataset, TrainAugment, discover
from .metrics import Confusion
from .optim import build_optimizer, build_scheduler, describe_schedule

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


def build(cfg: TrainConfig) -> PALSegmenter:
    """The model of ``cfg.preset`` (with the aux head) initialised as ``cfg.init`` says."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()}
    model = PALSegmenter(preset(cfg.preset, **{**overrides, "aux": True, "drop_path": cfg.drop_path,
                                               "input_size": cfg.crop}))
    if cfg.init and not cfg.init.startswith("imagenet:"):
        from pal4vst.model.weights import resolve

        src = load_checkpoint(resolve(cfg.init), with_aux=True)
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


@torch.inference_mode()
def evaluate(model: torch.nn.Module, samples, cfg: TrainConfig, device: torch.device, dtype) -> Confusion:
    model.eval()
    conf = Confusion(2, cfg.ignore_index)
    for x, y in EvalDataset(samples, cfg.crop, _ignore_value(cfg), cfg.ignore_index):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x[None].to(device))
        up = F.interpolate(logits.float(), size=y.shape, mode="bilinear", align_corners=False)
        conf.update(up.argmax(1)[0].cpu(), y)
    model.train()
    return conf


def _slots(d: World, accum: int, micro: int) -> list[int]:
    # Global slot of each sample this rank draws in one step: rank-major, then micro-batch.
    return [(d.rank * accum + a) * micro + k for a in range(accum) for k in range(micro)]


def train(cfg: TrainConfig, resume: str | bool = False) -> dict:
    """Train as ``cfg`` says; returns a summary (last loss, best IoU, paths)."""
    d, device = init_distributed(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    micro = cfg.micro_batch or max(1, cfg.batch // d.size)
    if cfg.batch % (micro * d.size):
        raise SystemExit(f"batch {cfg.batch} is not a multiple of micro-batch {micro} x {d.size} processes")
    accum = cfg.batch // (micro * d.size)

    report = discover(cfg.data, "train")
    report.raise_if_errors(f"training data {cfg.data}")
    val = discover(cfg.data, "val")
    val_samples = val.samples if val.samples and not val.errors else report.samples
    if d.main:
        for w in report.warnings[:10]:
            log.warning("%s", w)
        log.info("%s", describe_schedule(cfg))

    torch.manual_seed(cfg.seed)
    model = build(cfg).to(device)
    if d.size > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.train()
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if d.size > 1 else model
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    dtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    start, best = 0, {"artifact_iou": -1.0, "iter": -1}
    ckpt_path = out / "last.pt"
    if resume:
        path = Path(resume) if isinstance(resume, str) else ckpt_path
        if path.is_file():
            state = load_torch_file(path)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state.get("scaler", {}) or scaler.state_dict())
            start, best = int(state["iter"]), dict(state["best"])
            torch.set_rng_state(state["rng"]["torch"])
            if d.main:
                log.info("resumed from %s at iteration %d", path, start)
        elif d.main:
            log.info("no checkpoint at %s: starting from scratch", path)

    augment = TrainAugment(cfg.crop, cfg.scale, cfg.ratio_range, cfg.cat_max_ratio, cfg.flip, cfg.ignore_index)
    data = StepDataset(report.samples, augment, cfg.seed, start, cfg.iters, _slots(d, accum, micro),
                       _ignore_value(cfg), cfg.ignore_index)
    loader = torch.utils.data.DataLoader(data, batch_size=micro, shuffle=False, num_workers=cfg.workers,
                                         pin_memory=device.type == "cuda", drop_last=False)
    batches = iter(loader)
    log_file = _open_log(out / "log.csv", start) if d.main else None
    writer = csv.writer(log_file) if log_file else None
    if d.main and start == 0:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    tb = _tensorboard(out) if d.main else None
    stop_at = int(os.environ.get("PAL4VST_TRAIN_STOP_AT", "0"))  # tests: die here like a killed job
    bar = _progress(start, cfg.iters, d.main)
    t_last, loss_val = time.perf_counter(), float("nan")

    for it in range(start, cfg.iters):
        if stop_at and it == stop_at:
            os._exit(17)
        totals = torch.zeros(3, device=device)
        for a in range(accum):
            x, y = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            torch.manual_seed(hash((cfg.seed, it, d.rank * accum + a)) % (2**63))  # dropout, drop path
            sync = nullcontext() if (d.size == 1 or a == accum - 1) else net.no_sync()
            with sync:
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    main, aux = net(x, features=True)
                loss, l_main, l_aux = seg_loss(main, aux, y, cfg)
                scaler.scale(loss / accum).backward()
            totals += torch.stack([loss.detach(), l_main, l_aux]) / accum
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        lr = opt.param_groups[0]["lr"] / opt.param_groups[0].get("lr_mult", 1.0)
        sched.step()
        if d.size > 1:
            dist.all_reduce(totals)
            totals /= d.size
        loss_val = float(totals[0])
        done = it + 1
        if d.main:
            now = time.perf_counter()
            writer.writerow([done, f"{loss_val:.6f}", f"{float(totals[1]):.6f}", f"{float(totals[2]):.6f}",
                             f"{lr:.3e}", f"{now - t_last:.4f}"])
            t_last = now
            if done % cfg.log_interval == 0:
                log_file.flush()
                if tb:
                    tb.add_scalar("loss", loss_val, done)
                    tb.add_scalar("lr", lr, done)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}")
        if done % cfg.val_interval == 0 or done == cfg.iters:
            if d.main:
                conf = evaluate(model, val_samples, cfg, device, dtype)
                _log_val(out, done, conf)
                if tb:
                    tb.add_scalar("val/artifact_iou", conf.artifact_iou, done)
                if conf.artifact_iou > best["artifact_iou"]:
                    best = {"artifact_iou": conf.artifact_iou, "miou": conf.miou, "iter": done}
                    save_safetensors(model, out / "best.safetensors", source_name=f"iter {done}")
            d.barrier()
        if done % cfg.ckpt_interval == 0 or done == cfg.iters:
            if d.main:
                state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "scaler": scaler.state_dict(), "iter": done, "best": best,
                         "rng": {"torch": torch.get_rng_state()}, "config": json.dumps(cfg.to_dict())}
                atomic_write(ckpt_path, lambda tmp: torch.save(state, tmp))
            d.barrier()
    if log_file:
        log_file.close()
    bar.close()
    if d.main:
        save_safetensors(model, out / "last.safetensors", source_name=f"iter {cfg.iters}")
    d.barrier()
    d.close()
    return {"last_loss": loss_val, "best": best, "out": str(out)}


def _open_log(path: Path, start: int):
    """The loss log, cut back to ``start`` when resuming (a killed run may have logged past its
    last checkpoint)."""
    header = ["iter", "loss", "loss_main", "loss_aux", "lr", "seconds"]
    rows = []
    if start and path.exists():
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if r and r[0] != "iter" and int(r[0]) <= start]
    f = path.open("w", newline="")
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
    f.flush()
    return f


def _log_val(out: Path, it: int, conf: Confusion) -> None:
    path = out / "val.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["iter", "artifact_iou", "miou"])
        w.writerow([it, f"{conf.artifact_iou:.6f}", f"{conf.miou:.6f}"])
    log.info("iter %d: artifact IoU %.4f, mIoU %.4f", it, conf.artifact_iou, conf.miou)


def _progress(start: int, total: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="it", disable=not show or None, dynamic_ncols=True)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(out / "tb"))
    except Exception:  # noqa: BLE001 - tensorboard is optional
        return None
