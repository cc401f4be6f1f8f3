"""Training kit: data checks, ImageNet weight mapping, the recipe's optimiser and schedule,
learning on synthetic artifacts, DDP = accumulation, exact resume after a kill, evaluate, export."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from pal4vst.model.segmenter import build_model
from pal4vst.testing import randomise
from pal4vst.learn.config import TrainConfig
from pal4vst.learn.data import discover, load_label
from pal4vst.learn.errors import LearnError
from pal4vst.learn.optim import build_optimizer, lr_factor
from pal4vst.model.layouts import filter_swin_imagenet
from pal4vst.learn.synthetic import write_dataset

PY = sys.executable


def _run(args: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    r = subprocess.run(args, cwd=ROOT, env=e, capture_output=True, text=True, timeout=900)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    return r


def _losses(out) -> list[float]:
    with open(out / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("synth"), {"train": 48, "val": 12, "test": 12}, size=64, seed=1)


SMALL = ["--preset", "tiny", "--crop", "32", "--amp", "none", "--workers", "0", "--set", "scale=48",
         "--set", "warmup_iters=5", "--set", "poly_end=40", "--set", "lr=0.0005", "--val-interval", "1000"]


# ------------------------------------------------------------------------------------------- data


def test_layouts_and_checks(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(rgb).save(flat / "a.png")
    Image.fromarray((np.eye(20) * 255).astype(np.uint8)).save(flat / "a_mask.png")
    rgba = np.dstack([rgb, np.full((20, 20), 255, np.uint8)])
    rgba[5:10, 5:10, 3] = 0  # painted in ComfyUI's mask editor: transparent = masked
    Image.fromarray(rgba, "RGBA").save(flat / "b.png")
    rep = discover(flat)
    assert not rep.errors and [s.image.name for s in rep.samples] == ["a.png", "b.png"]
    assert load_label(rep.samples[1]).sum() == 25 and load_label(rep.samples[0]).sum() == 20

    Image.fromarray(rgb).save(flat / "c.jpg")  # no mask, no alpha
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(flat / "d_mask.png")  # no image
    Image.fromarray(rgb).save(flat / "e.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "e_mask.png")  # wrong size
    rep = discover(flat)
    text = "\n".join(rep.errors)
    assert "c.jpg: no c_mask.png" in text and "d_mask.png has no image" in text and "e.png: image 20x20 but label 8x8" in text
    with pytest.raises(LearnError, match="3 problem"):
        rep.raise_if_errors("data")


def test_released_layout_and_empty_label_warning(synth):
    rep = discover(synth, "train")
    assert len(rep.samples) == 48 and not rep.errors
    assert all(s.label.parent.name == "train" for s in rep.samples)
    assert rep.warnings and all("empty label" in w for w in rep.warnings)


def test_label_ignore_value(tmp_path):
    from pal4vst.learn.data import Sample

    arr = np.array([[0, 1, 255]], np.uint8)
    Image.fromarray(arr).save(tmp_path / "l.png")
    s = Sample(tmp_path / "l.png", tmp_path / "l.png")
    assert load_label(s).tolist() == [[0, 1, 1]]
    assert load_label(s, ignore_value=255).tolist() == [[0, 1, 255]]


# ------------------------------------------------------------------------------------ ImageNet init


def _to_timm(sd: dict, timm_layout: bool) -> dict:
    """Our backbone in the original Swin / timm layout (the inverse of filter_swin_imagenet)."""
    out = {}
    for k, v in sd.items():
        if not k.startswith("backbone.") or k.startswith("backbone.norm"):
            continue
        k = k[len("backbone."):].replace("patch_embed.projection", "patch_embed.proj")
        if ".downsample." in k:
            stage = int(k.split(".")[1])
            part = k.split(".downsample.")[1]
            c4 = v.shape[-1]
            if part.startswith("reduction"):
                v = v.reshape(v.shape[0], c4 // 4, 4).transpose(1, 2)[:, [0, 2, 1, 3], :].reshape(v.shape[0], c4)
            else:
                v = v.reshape(c4 // 4, 4).transpose(0, 1)[[0, 2, 1, 3]].reshape(-1)
            out[f"layers.{stage + 1 if timm_layout else stage}.downsample.{part}"] = v
            continue
        k = (k.replace("stages.", "layers.").replace("attn.w_msa.", "attn.").replace("ffn.layers.0.0", "mlp.fc1")
             .replace("ffn.layers.1", "mlp.fc2"))
        out[k] = v
    out["head.fc.weight"] = torch.zeros(10, 128)
    return out


@pytest.mark.parametrize("timm_layout", [False, True])
def test_imagenet_layouts_map_onto_the_backbone(timm_layout):
    model = randomise(build_model("tiny"))
    sd = model.state_dict()
    mapped = filter_swin_imagenet(_to_timm(sd, timm_layout))
    want = {k: v for k, v in sd.items() if k.startswith("backbone.stages") or k.startswith("backbone.patch_embed")}
    want = {k: v for k, v in want.items() if "relative_position_index" not in k}
    assert len(want) > 50 and set(mapped) == set(want)
    for k in want:
        assert torch.equal(mapped[k], want[k]), k


def test_patch_merging_order_matches_the_original_swin():
    """Original Swin: cat(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) -> norm -> reduction."""
    from pal4vst.model.layouts import unfold_order_norm, unfold_order_reduction

    from pal4vst.model.swin import PatchMerging

    c = 6
    x = torch.randn(1, 4, 4, c)
    w, nw, nb = torch.randn(2 * c, 4 * c), torch.randn(4 * c), torch.randn(4 * c)
    cat = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1).view(1, 4, 4 * c)
    want = torch.nn.functional.layer_norm(cat, (4 * c,), nw, nb) @ w.T
    pm = PatchMerging(c, 2 * c)
    with torch.no_grad():
        pm.reduction.weight.copy_(unfold_order_reduction(w))
        pm.norm.weight.copy_(unfold_order_norm(nw))
        pm.norm.bias.copy_(unfold_order_norm(nb))
        got, _ = pm(x.view(1, 16, c), (4, 4))
    assert torch.allclose(got, want, atol=1e-5)


# ------------------------------------------------------------------------------------- recipe


def test_param_groups_and_schedule():
    cfg = TrainConfig()
    model = build_model("tiny")
    opt = build_optimizer(model, cfg)
    by_name = {id(p): g for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_name[id(named["decode_head.conv_seg.weight"])]["lr"] == pytest.approx(6e-4)
    assert by_name[id(named["backbone.stages.0.blocks.0.norm1.weight"])]["weight_decay"] == 0.0
    table = named["backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table"]
    assert by_name[id(table)]["weight_decay"] == 0.0
    assert by_name[id(named["backbone.stages.0.blocks.0.attn.w_msa.qkv.weight"])]["weight_decay"] == 0.01
    assert lr_factor(0, cfg) == pytest.approx(1e-6)
    assert lr_factor(750, cfg) == pytest.approx(0.5, abs=1e-5)
    assert lr_factor(1500, cfg) == pytest.approx(1.0)
    # The release stops at 20k while decaying towards 160k: the lr is still ~88% of its peak.
    assert lr_factor(20_000, cfg) == pytest.approx(1 - 18_500 / 158_500)


def test_a_strong_anchor_holds_the_weights_and_never_overshoots():
    """L2-SP's pull is at most all the way back: anchor x lr x the heads' x10 above 1 would throw
    each weight past its start, further every step (a diverging run)."""
    from pal4vst.distributed import World
    from pal4vst.learn.engine import Trainer

    cfg = TrainConfig(preset="tiny", crop=64, lr=1e-3, warmup_iters=0, anchor=1e5, amp="none", device="cpu",
                      drop_path=0.0)
    trainer = Trainer(cfg, World(), torch.device("cpu"), 1)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
    x = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    y = (torch.rand(2, 64, 64) > 0.7).long()
    batches = iter([(x, y)] * 3)
    for it in range(3):
        assert torch.isfinite(trainer.step(batches, it)).all()
    moved = [k for k, p in trainer.model.named_parameters()
             if p.requires_grad and not torch.allclose(p, start[k], atol=1e-6)]  # (rounding aside)
    assert not moved, moved[:5]


def test_a_short_run_reaches_its_learning_rate():
    from pal4vst.learn.config import TrainConfig, fit_warmup, recipe

    long = TrainConfig()
    assert fit_warmup(long, set()) == (long, None)  # the release run itself is left alone
    short, note = fit_warmup(TrainConfig(iters=400), set())
    assert short.warmup_iters == 40 and "scaled to 40" in note and "--recipe scratch" in note
    asked, warning = fit_warmup(TrainConfig(iters=400), {"warmup_iters"})
    assert asked.warmup_iters == 1500 and "never reaches" in warning
    scratch = recipe("scratch")
    assert scratch.poly_end == 0 and lr_factor(scratch.iters - 1, scratch) < 1e-3  # decays over the run


def test_train_says_so_and_scales_a_warm_up_longer_than_the_run(synth, tmp_path):
    out = tmp_path / "short"
    r = _run([PY, "-m", "training.train", "--data", str(synth), "--out", str(out), "--iters", "40", "--batch", "4",
              "--preset", "tiny", "--crop", "32", "--amp", "none", "--workers", "0", "--set", "scale=48",
              "--val-interval", "1000", "--ckpt-interval", "1000"])
    assert "warm-up of 1500 iterations would take most of this 40-iteration run" in r.stderr
    assert "schedule: lr 6e-05 (heads x10), warm-up 4 iterations" in r.stderr
    with open(out / "log.csv") as f:
        lrs = [float(row["lr"]) for row in csv.DictReader(f)]
    assert len(lrs) == 40 and max(lrs) == pytest.approx(6e-5, rel=1e-3)


# -------------------------------------------------------------------------------- it learns


def test_tiny_model_learns_synthetic_artifacts(tmp_path):
    """Held-out artifact IoU rises from near zero to at least twice what marking everything scores.

    Marking every pixel as an artifact gives IoU = the artifact fraction of the labels (~0.11
    here), and an untrained model marks nothing (IoU 0). The 0.3M-parameter tiny preset learns
    from scratch on a CPU, so the run uses the strongly visible corruptions (noise, patch shuffle,
    colour blotch) and 1500 steps: measured here, IoU 0.06 after 250 steps and 0.33 after 1500.
    The bar is 2x the everything-baseline (~0.22), clear of both start and noise.
    """
    from pal4vst.learn.data import load_label

    data = write_dataset(tmp_path / "d", {"train": 400, "val": 40}, size=96, seed=0,
                         kinds=("noise", "shuffle", "blotch"))
    out = tmp_path / "run"
    _run([PY, "-m", "training.train", "--recipe", "scratch", "--data", str(data), "--out", str(out), "--preset", "tiny",
          "--iters", "1500", "--batch", "8", "--crop", "64", "--amp", "none", "--workers", "0", "--val-interval", "250",
          "--ckpt-interval", "1500", "--set", "scale=80"])
    with open(out / "val.csv") as f:
        ious = [float(r["artifact_iou"]) for r in csv.DictReader(f)]
    everything = float(np.mean([load_label(s).mean() for s in discover(data, "val").samples]))
    assert 0.05 < everything < 0.25
    assert ious[0] < 1.5 * everything, ious
    assert ious[-1] >= 2 * everything, (ious, everything)
    assert (out / "best.safetensors").is_file()


# ------------------------------------------------------------------------------- DDP and resume


def test_two_process_ddp_follows_one_process_with_accumulation(synth, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--data", str(synth), "--iters", "12", "--batch", "4", "--ckpt-interval", "1000", *SMALL]
    _run([PY, "-m", "training.train", "--out", str(one), "--micro-batch", "2", *common])
    _run([PY, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m", "training.train",
          "--out", str(two), *common])
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 12
    # Same samples and dropout masks per micro-batch, gradients averaged the same way: only the
    # order of floating-point reductions differs. Step 2's loss already reflects the first update,
    # so agreement to 1e-4 on the first steps shows the same gradient was applied; a wrong sample
    # split or gradient scale shows up there as a difference of per cents. Later, Adam turns
    # rounding noise in near-zero gradient components into lr-sized steps (it normalises each
    # component): the curves then drift apart exponentially from ~1e-5, so the rest is compared
    # on average only.
    assert np.allclose(a[:3], b[:3], rtol=1e-4), (a, b)
    assert abs(np.mean(a) - np.mean(b)) / np.mean(a) < 0.03, (a, b)


GRADIENT_PROBE = """
import sys
import torch
from pal4vst.learn.config import TrainConfig
from pal4vst.learn.engine import Trainer, init_distributed, load_data, sample_batches, split_batch

data, out, micro_batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = TrainConfig(data=data, out=out, preset="tiny", iters=4, batch=4, micro_batch=micro_batch, crop=32, amp="none",
                  workers=0, scale=48, warmup_iters=0, lr=1e-3, device="cpu")
world, device = init_distributed(cfg.device)
micro, accum = split_batch(cfg, world)
train_samples, _ = load_data(cfg, world)
trainer = Trainer(cfg, world, device, accum)
grads = {}

def capture(opt):  # the gradient the optimiser would be given; no step is taken
    grads.update({n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None})

trainer.scaler.step = capture
trainer.step(sample_batches(cfg, train_samples, 0, world, micro, accum, device), 0)
if world.main:
    torch.save({"grads": grads, "accum": accum, "world": world.size}, out)
world.barrier()  # as train() does: no rank tears the group down while another still uses it
world.close()
"""


def test_ddp_applies_the_same_gradient_as_accumulation(synth, tmp_path):
    """The gradient one optimiser step receives: 2 processes x 1 micro-batch of 2 must equal 1
    process accumulating 2 micro-batches of 2 (same samples, same scale). A gradient not divided
    by the accumulation count or not averaged over processes is 2x off here, whatever the
    optimiser (AdamW would hide a constant scale in the loss curves)."""
    import torch

    probe = tmp_path / "probe.py"
    probe.write_text(GRADIENT_PROBE)
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    _run([PY, str(probe), str(synth), str(one), "2"])
    _run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(probe), str(synth),
          str(two), "0"])
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    assert (a["world"], a["accum"], b["world"], b["accum"]) == (1, 2, 2, 1)
    assert len(a["grads"]) > 20 and set(a["grads"]) == set(b["grads"])
    norm = sum(float(g.norm()) for g in a["grads"].values())
    assert norm > 0
    flat_a = torch.cat([g.flatten() for g in a["grads"].values()])
    flat_b = torch.cat([b["grads"][n].flatten() for n in a["grads"]])
    assert float((flat_a - flat_b).norm()) <= 1e-3 * float(flat_a.norm())  # reduction order aside, the same
    biggest = max(float(g.norm()) for g in a["grads"].values())
    significant = [n for n, g in a["grads"].items() if float(g.norm()) > 1e-3 * biggest]
    assert len(significant) > 20
    for name in significant:  # and tensor by tensor (near-zero ones are rounding noise)
        g = a["grads"][name]
        assert float((g - b["grads"][name]).norm()) <= 1e-2 * float(g.norm()), name


class _Killed(Exception):
    pass


def test_killed_run_resumes_on_the_same_curve(synth, tmp_path):
    """Stopped at step 15 (its last checkpoint is step 10), resumed: the same 20 losses as a run
    that was never stopped, and the loss log holds each step once."""
    from pal4vst.learn.config import TrainConfig
    from pal4vst.learn.engine import train

    def cfg(out):
        return TrainConfig(data=str(synth), out=str(out), preset="tiny", iters=20, batch=4, crop=32, amp="none",
                           workers=0, scale=48, warmup_iters=5, poly_end=40, lr=5e-4, val_interval=1000,
                           ckpt_interval=10)

    def die(step: int) -> None:
        if step == 15:
            raise _Killed

    full, cut = tmp_path / "full", tmp_path / "cut"
    train(cfg(full))
    with pytest.raises(_Killed):
        train(cfg(cut), on_step=die)
    assert (cut / "last.pt").is_file() and not (cut / "last.safetensors").exists()
    steps = []
    train(cfg(cut), resume=True, on_step=steps.append)
    assert steps == list(range(11, 21))  # resumed after the step-10 checkpoint, not from the start
    a, b = _losses(full), _losses(cut)
    assert len(a) == len(b) == 20
    assert np.allclose(a, b, rtol=1e-5, atol=1e-6), (a, b)


def test_a_corrupt_training_state_is_refused_not_restarted(synth, tmp_path):
    """A truncated last.pt (a full disk, a copy cut short): --resume says so and how to go on,
    and leaves the run's files as they were instead of starting over on top of them."""
    from pal4vst.model.checkpoint import CheckpointError
    from pal4vst.learn.config import TrainConfig
    from pal4vst.learn.engine import train

    cfg = TrainConfig(data=str(synth), out=str(tmp_path / "run"), preset="tiny", iters=4, batch=4, crop=32,
                      amp="none", workers=0, scale=48, warmup_iters=2, val_interval=1000, ckpt_interval=2)
    train(cfg)
    state, log_csv = tmp_path / "run" / "last.pt", tmp_path / "run" / "log.csv"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 3])
    before = log_csv.read_text()
    with pytest.raises(CheckpointError, match=r"cannot resume: .*last\.pt is truncated or corrupt.*without --resume"):
        train(cfg, resume=True)
    assert log_csv.read_text() == before
    (tmp_path / "other.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(cfg, resume=str(tmp_path / "other.pt"))


# ------------------------------------------------------------------------------ evaluate, export


def _two_grey_squares(root, n: int = 4):
    """A flat dataset: a dark image with a mid-grey square (160, not an artifact) and a light one
    (240, the artifact), in varying places."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.full((96, 96, 3), 20, np.uint8)
        label = np.zeros((96, 96), np.uint8)
        y, x = rng.integers(4, 20, 2)
        img[y:y + 32, x:x + 32] = 160
        y, x = rng.integers(52, 60, 2)
        img[y:y + 32, x:x + 32] = 240
        label[y:y + 32, x:x + 32] = 1
        Image.fromarray(img).save(root / f"{i}.png")
        Image.fromarray(label * 255).save(root / f"{i}_mask.png")
    return root


def test_evaluate_uses_the_files_own_preprocessing_and_output(tmp_path):
    """training.evaluate runs a file as detection does: its own mean/std (a model whose mean grey
    is 200 marks only the 240 square, not the 160 one) and a TorchScript that answers labels."""
    import dataclasses

    from pal4vst.model.checkpoint import save_safetensors
    from pal4vst.testing import mark_bright
    from training.evaluate import main as evaluate

    data = _two_grey_squares(tmp_path / "data")
    model = mark_bright(build_model("tiny"))
    model.config = dataclasses.replace(model.config, mean=(200.0, 200.0, 200.0), std=(58.395, 57.12, 57.375))
    own = save_safetensors(model, tmp_path / "grey200.safetensors")
    rows = evaluate([str(own), str(data), "--csv", str(tmp_path / "a.csv"), "--device", "cpu"])
    imagenet = save_safetensors(mark_bright(build_model("tiny")), tmp_path / "imagenet.safetensors")
    both = evaluate([str(imagenet), str(data), "--csv", str(tmp_path / "c.csv"), "--device", "cpu"])
    assert rows[-1]["images"] == 4 and rows[-1]["artifact_iou"] > 0.65, rows
    assert both[-1]["artifact_iou"] < rows[-1]["artifact_iou"] - 0.15, both  # ImageNet's mean marks both squares

    class LabelsOnly(torch.nn.Module):  # names that map onto no known layout: the graph itself runs
        def __init__(self, inner):
            super().__init__()
            self.wrapped_segmenter = inner

        def forward(self, x):
            return self.wrapped_segmenter(x).argmax(1, keepdim=True)

    bright = mark_bright(build_model("tiny")).eval()
    traced = torch.jit.trace(LabelsOnly(bright), torch.zeros(1, 3, 64, 64))
    traced.save(str(tmp_path / "labels.pt"))
    rows = evaluate([str(tmp_path / "labels.pt"), str(data), "--csv", str(tmp_path / "b.csv"), "--device", "cpu"])
    # both squares are brighter than ImageNet's mean grey: the 240 square found, the 160 one a false positive
    assert 0.35 < rows[-1]["artifact_iou"] < 0.65, rows  # read as logits, labels give IoU 0


def test_finetune_evaluate_export(synth, tmp_path):
    base = randomise(build_model("tiny"))
    from pal4vst.model.checkpoint import save_safetensors

    start = save_safetensors(base, tmp_path / "start.safetensors")
    out = tmp_path / "ft"
    _run([PY, "-m", "training.finetune", "--from", str(start), "--data", str(synth), "--out", str(out), "--iters", "6",
          "--batch", "4", "--crop", "32", "--amp", "none", "--workers", "0", "--set", "scale=48",
          "--val-interval", "3", "--ckpt-interval", "6"])
    best = out / "best.safetensors"
    assert best.is_file()
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "gan").symlink_to(synth, target_is_directory=True)
    (tasks / "inpainting").symlink_to(synth, target_is_directory=True)
    csv_path = tmp_path / "eval.csv"
    r = _run([PY, "-m", "training.evaluate", str(best), str(tasks), "--csv", str(csv_path)])
    rows = list(csv.DictReader(csv_path.open()))
    assert [row["task"] for row in rows] == ["gan", "inpainting", "all"]
    assert rows[-1]["images"] == "24" and "artifact IoU" in r.stdout
    _run([PY, "-m", "training.export", str(best), "--out", str(tmp_path / "exp"), "--report", str(tmp_path / "r.json"),
          "--formats", "safetensors,torchscript" + (",onnx" if _has("onnx") else "")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["torchscript"]["max_abs_diff"] < 1e-4
    # the exported files against the model they came from, computed here on inputs of our own
    from pal4vst.model.checkpoint import load_checkpoint

    eager = load_checkpoint(best).module.eval()
    traced = torch.jit.load(report["torchscript"]["path"])
    again = load_checkpoint(report["safetensors"]["path"]).module.eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(1, 3, 64, 64, generator=g) * 2
            want = eager(x)
            assert want.shape == (1, 2, 64, 64) and want.abs().max() > 0.1
            assert (traced(x) - want).abs().max().item() < 1e-4
            assert (again(x) - want).abs().max().item() < 1e-5


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_training_settings_are_declared_and_checked(tmp_path):
    """TrainConfig is declared like every other setting: flags generated with help and ranges,
    a value out of range refused when the config is built, on the command line with one line."""
    from pal4vst.options import OptionError, declared
    from pal4vst.learn.config import FLAGS, TrainConfig
    from training.train import parser

    decls = declared(TrainConfig)
    assert len(decls) >= 25 and set(FLAGS) <= set(decls)
    with pytest.raises(OptionError, match="iters must be between 1 and"):
        TrainConfig(iters=0)
    with pytest.raises(OptionError, match="amp must be one of auto, bf16, fp16, none"):
        TrainConfig(amp="fp8")
    helptext = parser().format_help()
    for name in FLAGS:
        assert "--" + name.replace("_", "-") in helptext, name
    assert "peak learning rate" in helptext
    args = parser().parse_args(["--iters", "7"])
    assert vars(args).get("lr") is None and args.iters == 7  # an absent flag leaves the recipe's value
    r = _run([PY, "-m", "training.train", "--data", str(tmp_path), "--iters", "0"], check=False)
    assert r.returncode != 0 and "training: iters must be between 1 and" in r.stderr and "Traceback" not in r.stderr
    missing = _run([PY, "-m", "training.train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"),
                    "--iters", "2"], check=False)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "run").exists()  # a refused run leaves no folder
    (tmp_path / "bad.json").write_text('{"flip": 2}')
    r = _run([PY, "-m", "training.train", str(tmp_path / "bad.json"), "--data", str(tmp_path)], check=False)
    assert r.returncode != 0 and "flip must be between 0 and 1" in r.stderr


def test_set_values_take_each_fields_type_in_train_and_finetune():
    """``--set`` is read one way by both command lines: JSON for numbers and lists (a tuple where
    the field is one), text as given for text fields; an unknown key or a value of the wrong kind
    is one line, not a traceback."""
    from training import finetune, train

    sets = ["--set", "scale=64", "--set", "ratio_range=[1, 1]", "--set", "task=7", "--set", "freeze_bn=true"]
    want = {"scale": 64, "ratio_range": (1, 1), "task": "7", "freeze_bn": True}
    assert finetune.overrides(finetune.parser().parse_args(["--data", "d", "--crop", "48", *sets])) == {"crop": 48,
                                                                                                         **want}
    cfg = train.parser().parse_args(["--data", "d", *sets])
    from pal4vst.learn.config import apply_overrides, recipe

    got = apply_overrides(recipe("release"), cfg)
    assert {k: getattr(got, k) for k in want} == want
    for bad, message in (("lr=abc", "--set lr=abc: not a float"), ("nope=1", "--set: unknown config key 'nope'")):
        with pytest.raises(LearnError, match=re.escape(message)):
            finetune.overrides(finetune.parser().parse_args(["--data", "d", "--set", bad]))


def test_training_normalises_as_detection_does(tmp_path):
    """A file with statistics of its own (not ImageNet's) is trained on the inputs it is judged on:
    the network receives, in a training step, the pixels normalised with the file's mean and std,
    exactly as the detector normalises them (computed here from the file's numbers)."""
    import dataclasses

    from pal4vst.distributed import World
    from pal4vst.learn.data import discover
    from pal4vst.learn.engine import Trainer, sample_batches
    from pal4vst.model.checkpoint import load_checkpoint, save_safetensors
    from pal4vst.model.segmenter import PALSegmenter

    mean, std = (10.0, 200.0, 90.0), (30.0, 5.0, 70.0)
    model = randomise(PALSegmenter(dataclasses.replace(build_model("tiny").config, mean=mean, std=std, input_size=32)))
    src = save_safetensors(model, tmp_path / "own_stats.safetensors")
    assert load_checkpoint(src).config.mean == mean
    data = write_dataset(tmp_path / "d", {"train": 4}, size=32, seed=3)
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), preset="tiny", init=str(src), iters=1, batch=2,
                      crop=32, scale=32, ratio_range=(1.0, 1.0), flip=0.0, amp="none", workers=0, device="cpu")
    trainer = Trainer(cfg, World(), torch.device("cpu"), accum=1)
    seen = []
    trainer.model.backbone.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    x, y = next(sample_batches(cfg, discover(data).samples, 0, World(), 2, 1, torch.device("cpu")))
    assert x.dtype == torch.uint8  # pixels travel as they are; the model's own statistics apply on the device
    batches = iter([(x, y)])
    trainer.step(batches, 0)
    want = (x.float() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert seen and torch.allclose(seen[0], want, atol=1e-5)
    from pal4vst.detect import Detector

    det = Detector(load_checkpoint(src), device="cpu", dtype="fp32")
    assert torch.allclose(det._normalise(x.float()), want, atol=1e-5)  # detection: the same numbers


def test_a_lora_fine_tune_saves_the_model_it_trained(tmp_path):
    """``tune=lora``: only the adapters and the heads learn, and the saved file (adapters folded
    in, the released layout) predicts what the adapted model predicts."""
    from pal4vst.learn.adapt import prepare
    from pal4vst.model.checkpoint import load_checkpoint, save_safetensors
    from pal4vst.model.lora import ADAPTER_KEYS, LoRALinear

    model = randomise(build_model("tiny")).eval()
    learning = prepare(model, "lora", rank=4)
    adapters = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert adapters and learning == sum(p.numel() for p in model.parameters() if p.requires_grad)
    learns = {n for n, p in model.named_parameters() if p.requires_grad}
    assert learns and all(n.startswith(("decode_head.", "auxiliary_head.")) or n.endswith(ADAPTER_KEYS) for n in learns)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        base = model(x)
        for m in adapters:  # as if trained: B is no longer zero, so the adapters change the output
            m.lora_b.copy_(torch.randn(m.lora_b.shape, generator=g) * 0.5)
    with torch.no_grad():
        want = model(x)
        plain = load_checkpoint(save_safetensors(model, tmp_path / "lora.safetensors")).module(x)
    assert not any(k.endswith(ADAPTER_KEYS) for k in load_checkpoint(tmp_path / "lora.safetensors").module.state_dict())
    assert (want - base).abs().max() > 1e-2  # the adapters matter...
    assert torch.allclose(plain, want, atol=1e-4), (plain - want).abs().max()  # ...and the file keeps them
