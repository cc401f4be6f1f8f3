"""Teach PAL your generator (issue #22): example sets, the fine-tune with its honest before/after,
through the core, the CLI and ComfyUI's nodes (the webui tab's are in test_extension.py).

The known answer (conftest ``taught``): a tiny base that finds the "noise" kind and not the
"solid" kind is taught "solid" from ten examples. On unseen test images the new kind's IoU must
rise well above the base's, and the old kind must still be found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, artifact_iou
from pal4vst.detect import Detector
from pal4vst.learn.examples import ExampleError, list_sets, read_set, save_example, set_info
from pal4vst.learn.metrics import confusion
from pal4vst.learn import verdict as V
from pal4vst.learn.teach import plan, read_report, target, teach
from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.settings import TeachOptions


def _learned(taught, model) -> tuple[float, float]:
    """``(new kind IoU, old kind IoU)`` of a model on the unseen test images, checked against the base."""
    new, old = artifact_iou(model, taught["new"]), artifact_iou(model, taught["old"])
    base_new, base_old = artifact_iou(taught["base"], taught["new"]), artifact_iou(taught["base"], taught["old"])
    assert base_new < 0.05 and base_old > 0.5  # the base finds the old kind only
    assert new > base_new + 0.25, (new, base_new)  # the new kind is learned...
    assert old > 0.6 * base_old, (old, base_old)  # ...and the old one still found
    return new, old


# ------------------------------------------------------------------------------------------ core


def test_teach_learns_the_new_kind_keeps_the_old_and_says_so(taught, tmp_path):
    steps = []
    res = teach(taught["base"], taught["examples"], tmp_path / "gen.safetensors", TeachOptions(),
                device="cpu", on_step=lambda s, n, loss, stage: steps.append((s, n, loss, stage)))
    r = res.report
    assert r["lr"] == 3e-4  # the tiny model's own rate, from its architecture (Swin-B's is 6e-05)
    assert r["trainings"] == 4 and len(r["folds"]) == 3  # three folds judge, then one learns from all
    assert steps and steps[-1][:2] == (1200, 1200) and all(np.isfinite(x[2]) for x in steps)
    assert [x[3] for x in steps[::300]] == ["fold 1 of 3", "fold 2 of 3", "fold 3 of 3", "final"]
    names = sorted(s.image.name for s in read_set(taught["examples"]).samples)
    assert sorted(r["held_out"]) == names and sorted(r["learned_from"]) == names  # every example judged, all learned
    folds, final = plan(read_set(taught["examples"]), 0.3, 0)
    assert final and len(folds) == 3
    assert len(r["folds"]) == len(folds) == 3
    for i, (fold, record) in enumerate(zip(folds, r["folds"]), 1):  # each judged by a model that never saw it
        judged = {e["example"] for e in r["per_example"] if e["fold"] == i}
        assert judged and judged == set(record["judged"]) == {s.image.name for s in fold.judged}
        assert record["learned_from"] and not judged & set(record["learned_from"])  # what its training was given
        assert set(record["learned_from"]) | judged == set(names)
    assert res.better and r["verdict_kind"] == "better" and r["gain_low"] > 0 and r["gain"] >= V.MIN_GAIN
    assert res.iou_after > res.iou_before + 0.25 and r["improved"] >= 7
    base = Detector(load_checkpoint(taught["base"]), device="cpu", dtype="fp32")
    assert r["iou_before"] == pytest.approx(confusion(base, read_set(taught["examples"]).samples).artifact_iou,
                                            abs=1e-6)  # "before" is the base as detection runs it, on all of them
    _learned(taught, res.path)
    # the record: beside the model, in its metadata, and what it says
    assert json.loads(res.path.with_suffix(".json").read_text()) == r == read_report(res.path)
    assert r["examples_sha256"] == read_set(taught["examples"]).sha256() and r["steps"] <= 300
    text = res.summary()
    assert text.startswith("Better: artifact IoU") and f"{r['iou_after']:.3f}" in text and "95% interval" in text
    assert "this model then learned from all 10 examples" in text
    assert len(r["per_example"]) == 10 and all(e["example"] in text for e in r["per_example"])


def test_teach_runs_under_the_hosts_inference_mode(taught, tmp_path):
    """ComfyUI runs every node under torch.inference_mode: the fine-tune must still learn."""
    with torch.inference_mode():
        res = teach(taught["base"], taught["examples"], tmp_path / "m.safetensors", TeachOptions(steps=20),
                    device="cpu")
    assert res.report["steps_run"] == 20 and res.report["last_loss"] is not None


def test_a_fine_tune_that_is_not_better_says_so(taught, tmp_path):
    res = teach(taught["base"], taught["examples"], tmp_path / "same.safetensors",
                TeachOptions(steps=1, lr=1e-12), device="cpu")
    assert not res.better and res.iou_after == pytest.approx(res.iou_before, abs=1e-3)
    assert res.report["verdict"].startswith("NOT shown better") and "keep using" in res.report["verdict"]


def test_stop_keeps_the_best_so_far(taught, tmp_path):
    asked = []
    res = teach(taught["base"], taught["examples"], tmp_path / "stopped.safetensors",
                TeachOptions(steps=200), device="cpu",
                should_stop=lambda: asked.append(1) or len(asked) > 240)
    r = res.report
    assert r["stopped_early"] and r["steps_run"] == 40 and r["steps_planned"] == 200
    assert r["trainings_run"] == 2 and len(r["learned_from"]) < 10  # the second fold's model, stopped
    judged = {e["example"] for e in r["per_example"]}
    assert judged and all(e["fold"] == 2 for e in r["per_example"]) and not judged & set(r["learned_from"])
    assert res.path.is_file() and "Stopped in fold 2 of 3" in res.summary()


def test_the_written_model_is_the_best_so_far_not_the_last(taught, tmp_path):
    """A rate so high that the run learns, then unlearns: the model written is the one of the best check."""
    res = teach(taught["base"], taught["examples"], tmp_path / "best.safetensors", TeachOptions(steps=40, lr=3e-3),
                device="cpu")
    checks = res.report["checks"]
    best = max(checks, key=lambda c: c[1])
    assert checks and best[1] > checks[-1][1] + 0.05  # the last step is not the best here
    assert res.report["steps"] == best[0]
    written = artifact_iou_of(res.path, read_set(taught["examples"]).samples)
    assert written == pytest.approx(best[1], abs=2e-3)  # (the last: far below)


def artifact_iou_of(path, samples) -> float:
    return confusion(Detector(load_checkpoint(path), device="cpu", dtype="fp32"), samples).artifact_iou


def test_training_on_the_wrong_masks_is_not_shown_better(taught, tmp_path):
    """The same images with every mask moved off its patch: nothing to learn that holds on an
    example the model did not see; the verdict says so and the model learns nothing of the kind."""
    wrong = tmp_path / "wrong"
    shutil.copytree(taught["examples"], wrong)
    for m in wrong.glob("*_mask.png"):
        a = np.asarray(Image.open(m))
        Image.fromarray(np.roll(a, (a.shape[0] // 2, a.shape[1] // 2), axis=(0, 1))).save(m)
    res = teach(taught["base"], wrong, tmp_path / "wrong.safetensors", TeachOptions(), device="cpu")
    assert res.report["judged"] == 10 and not res.better and res.report["verdict_kind"] != "better"
    assert artifact_iou(res.path, taught["new"]) < 0.2


def test_a_gain_the_interval_does_not_back_is_not_called_better():
    """One example carries the whole gain, the others lose a little: the pooled gain is over the
    minimum, but resampling the examples often leaves that one out."""
    before = np.array([[0, 0, 100]] + [[60, 20, 20]] * 6)
    after = np.array([[100, 0, 0]] + [[54, 26, 26]] * 6)
    gain = V.pooled_iou(after) - V.pooled_iou(before)
    assert gain >= V.MIN_GAIN  # what a verdict without its interval would call better
    v = V.judge(before, after, np.full(7, 1000))
    assert v.low < 0 < v.high and v.kind == V.NOT_SHOWN and not v.better
    assert (v.improved, v.worsened, v.unchanged) == (1, 6, 0)
    sure = V.judge(np.array([[0, 0, 100]] * 8), np.array([[50, 10, 50]] * 8), np.full(8, 1000))
    assert sure.kind == V.BETTER and sure.low > 0
    worse = V.judge(np.array([[50, 10, 50]] * 8), np.array([[10, 40, 90]] * 8), np.full(8, 1000))
    assert worse.kind == V.WORSE and worse.high < 0
    small = V.judge(np.array([[50, 0, 50]] * 8), np.array([[51, 0, 49]] * 8), np.full(8, 1000))
    assert small.low > 0 and small.kind == V.NOT_SHOWN  # sure, but under the minimum


def test_folds_split_marked_and_clean_examples_and_are_stable():
    names = [f"e{i}" for i in range(12)]
    marked = [i < 9 for i in range(12)]
    assert V.fold_count(9, 0.3) == 3 and V.fold_count(4, 0.3) == 2 and V.fold_count(30, 0.1) == 10
    fold = V.deal(names, marked, 3, seed=0)
    assert fold == V.deal(names, marked, 3, seed=0) and fold != V.deal(names, marked, 3, seed=1)
    for k in range(3):
        assert sum(1 for f, m in zip(fold, marked) if f == k and m) == 3
        assert sum(1 for f, m in zip(fold, marked) if f == k and not m) == 1


# -------------------------------------------------------------------------------------- bad input


def test_example_sets_are_only_ever_added_to(tmp_path):
    img = np.full((20, 30, 3), 90, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    first = save_example(tmp_path, "gen", img, mask)
    second = save_example(tmp_path, "gen", img, np.zeros((20, 30), bool))  # a clean example
    assert (first.name, second.name) == ("example_00001.png", "example_00002.png")
    assert np.asarray(Image.open(tmp_path / "gen" / "example_00001_mask.png")).max() == 255
    assert [s.describe() for s in list_sets(tmp_path)] == ["gen: 2 examples (1 with artifacts, 1 clean)"]
    with pytest.raises(ExampleError, match="the mask is 8x8 but the image is 30x20"):
        save_example(tmp_path, "gen", img, np.ones((8, 8), bool))
    with pytest.raises(ExampleError, match="set name '../up' is not usable"):
        save_example(tmp_path, "../up", img, mask)
    assert set_info(tmp_path / "gen").count == 2  # nothing was added or lost by the refusals


def test_a_set_that_cannot_teach_is_refused_before_anything_happens(taught, tmp_path):
    few = tmp_path / "few"
    shutil.copytree(taught["examples"], few)
    for p in sorted(few.glob("*.png"))[6:]:
        p.unlink()  # three examples left
    with pytest.raises(ExampleError, match=r"has 3 example\(s\).*at least 4"):
        teach(taught["base"], few, tmp_path / "m.safetensors", device="cpu")
    bad = tmp_path / "bad"
    shutil.copytree(taught["examples"], bad)
    (bad / "example_00002.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(bad / "example_00003_mask.png")
    with pytest.raises(ExampleError, match=r"(?s)2 example\(s\) cannot be used.*example_00002.png: unreadable"
                                           r".*example_00003.png: image 96x96 but label 10x10"):
        teach(taught["base"], bad, tmp_path / "m.safetensors", device="cpu")
    assert not list(tmp_path.glob("m*.safetensors"))  # nothing written


def test_a_save_interrupted_between_image_and_mask_loses_nothing(taught, tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(taught["examples"], folder)
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(folder / "example_00011.png")  # its mask never came
    got = read_set(folder)
    assert len(got.samples) == 10 and got.skipped and "example_00011" in got.skipped[0]


def test_a_new_model_never_takes_a_release_name_or_an_existing_file(tmp_path):
    with pytest.raises(ExampleError, match="'Unified' is the name of a released model"):
        target(tmp_path / "Unified.safetensors")
    (tmp_path / "gen.safetensors").write_bytes(b"mine")
    assert target(tmp_path / "gen.safetensors").name == "gen_2.safetensors"
    assert target(tmp_path / "gen").name == "gen_2.safetensors"
    assert (tmp_path / "gen.safetensors").read_bytes() == b"mine"


# ------------------------------------------------------------------------------------------- CLI


def test_cli_finetune_prints_the_same_report(taught, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "training.finetune", "--from", str(taught["base"]), "--data",
                        str(taught["examples"]), "--out", str(out), "--device", "cpu"],
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "best.json").read_text())
    from pal4vst.learn.teach import format_report

    assert format_report(report) in r.stdout and report["better"]
    _learned(taught, out / "best.safetensors")
    bad = subprocess.run([sys.executable, "-m", "training.finetune", "--from", str(taught["base"]), "--data",
                          str(tmp_path / "nowhere"), "--device", "cpu"], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "finetune: " in bad.stderr and "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------------------- nodes


def _load_image_as_comfy(path) -> tuple[torch.Tensor, torch.Tensor]:
    """What ComfyUI's Load Image returns for a file: IMAGE, and MASK = 1 - alpha (64x64 zeros without alpha)."""
    im = Image.open(path)
    image = torch.from_numpy(np.asarray(im.convert("RGB")).astype(np.float32) / 255.0)[None]
    if "A" in im.getbands():
        mask = 1.0 - torch.from_numpy(np.asarray(im.getchannel("A")).astype(np.float32) / 255.0)
    else:
        mask = torch.zeros(64, 64)
    return image, mask[None]


def _as_mask_editor_saves(path, truth: np.ndarray) -> None:
    """The artist's correction: the mask editor saves the image with the painted mask as its alpha."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    Image.fromarray(np.dstack([rgb, np.where(truth, 0, 255).astype(np.uint8)]), "RGBA").save(path)


def test_nodes_detect_correct_save_finetune_and_use(taught, tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from nodes import NODE_CLASS_MAPPINGS as N

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(taught["base"], models / "noise_base.safetensors")
    monkeypatch.setenv("PAL4VST_MODELS", str(models))
    monkeypatch.setenv("PAL4VST_INPUT_DIR", str(tmp_path / "input"))
    pal = N["PALLoadModel"]().load("noise_base.safetensors", "cpu", "fp32")[0]
    shown = []
    for pair in sorted(taught["examples"].glob("example_*_mask.png")):
        image, _ = _load_image_as_comfy(pair.with_name(pair.name.replace("_mask", "")))
        pal_mask = N["PALDetect"]().detect(pal, image, threshold=0.5, grow=0, min_area=0, mode="whole")["result"][0]
        edit = N["PALEditMask"]().write(image, pal_mask, edit_prefix="pal4vst_edit")
        written = tmp_path / "input" / edit["result"][0][0]
        _, opened = _load_image_as_comfy(written)  # what the mask editor opens: PAL's mask, painted
        assert torch.equal(opened, pal_mask)
        _as_mask_editor_saves(written, np.asarray(Image.open(pair)) > 0)
        corrected_image, corrected = _load_image_as_comfy(written)
        out = N["PALSaveExample"]().save(corrected_image, corrected, set_name="my gen", name="example")
        shown.append(out["ui"]["text"][0])
    marked = sum((np.asarray(Image.open(m)) > 0).any() for m in taught["examples"].glob("*_mask.png"))
    assert shown[-1].endswith(f"my gen: 10 examples ({marked} with artifacts, {10 - marked} clean)")
    saved = models / "examples" / "my gen"
    for mine, theirs in zip(sorted(saved.glob("*_mask.png")), sorted(taught["examples"].glob("*_mask.png"))):
        assert np.array_equal(np.asarray(Image.open(mine)) > 0, np.asarray(Image.open(theirs)) > 0)
    node = N["PALFineTune"]()
    assert "my gen" in node.INPUT_TYPES()["required"]["example_set"][0]
    out = node.finetune(pal, "my gen", model_name="my gen", recipe="default", steps=0, lr=0.0, held_out=0.3,
                        seed=0)
    model, report, before, after = out["result"]
    report = json.loads(report)
    assert after > before + 0.25 and report["better"] and model.name == "my gen.safetensors"
    assert out["ui"]["text"][0].startswith("Better: artifact IoU")
    assert "my gen.safetensors" in N["PALLoadModel"].INPUT_TYPES()["required"]["model"][0]  # listed, no restart
    _learned(taught, models / "my gen.safetensors")
    new_image, _ = _load_image_as_comfy(next((taught["new"] / "images" / "val").glob("*.png")))
    found = N["PALDetect"]().detect(model, new_image, threshold=0.5, grow=0, min_area=0, mode="whole")["result"][3]
    assert found[0] > 0  # the new model marks the new kind
    assert node.IS_CHANGED("my gen") != (save := N["PALSaveExample"]().save(corrected_image, corrected,
                                                                            set_name="my gen", name="example"),
                                         node.IS_CHANGED("my gen"))[1]  # another example: it runs again
    assert save["result"][0] == 11


def test_the_node_passes_the_base_on_when_the_result_is_not_better(taught, tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from nodes import NODE_CLASS_MAPPINGS as N

    models = tmp_path / "models"
    (models / "examples").mkdir(parents=True)
    shutil.copytree(taught["examples"], models / "examples" / "gen")
    monkeypatch.setenv("PAL4VST_MODELS", str(models))
    from nodes.model_node import PALModel
    from pal4vst.model.checkpoint import load_checkpoint

    pal = PALModel(load_checkpoint(taught["base"]), "cpu", "fp32", "noise_base")
    out = N["PALFineTune"]().finetune(pal, "gen", model_name="unchanged", recipe="default", steps=1, lr=1e-12,
                                      held_out=0.3, seed=0)
    model, report, before, after = out["result"]
    assert model is pal and not json.loads(report)["better"]
    assert "NOT shown better" in out["ui"]["text"][0] and (models / "unchanged.safetensors").is_file()
    with pytest.raises(ValueError, match="there is no example set 'nothing'"):
        N["PALFineTune"]().finetune(pal, "nothing", model_name="x", recipe="default", steps=1, lr=0.0, held_out=0.3,
                                    seed=0)


def test_pal_load_mask_reads_every_kind_into_an_example(tmp_path, monkeypatch):
    """A mask file drawn elsewhere, of each kind people make, through PAL Load Mask into PAL Save
    Example: the saved mask is what was drawn (ComfyUI's Load Image (as Mask) reads the alpha-only
    strokes inverted and a 0/1 mask as nearly black)."""
    sys.path.insert(0, str(ROOT))
    from conftest import drawn_marks, write_mask_kinds
    from nodes import NODE_CLASS_MAPPINGS as N

    from pal4vst.mask_files import MaskFileError

    inputs, models = tmp_path / "input", tmp_path / "models"
    inputs.mkdir()
    monkeypatch.setenv("PAL4VST_INPUT_DIR", str(inputs))
    monkeypatch.setenv("PAL4VST_MODELS", str(models))
    marks = drawn_marks()
    kinds = write_mask_kinds(inputs, marks)
    image = torch.rand(1, 40, 56, 3)
    listed = N["PALLoadMask"].INPUT_TYPES()["required"]["image"][0]
    assert kinds and set(kinds) <= set(listed)
    for name in kinds:
        assert N["PALLoadMask"].VALIDATE_INPUTS(name) is True
        out = N["PALLoadMask"]().load(name)
        mask, note = out["result"]
        assert bool(note) == name.endswith(".jpg")  # the JPEG is said
        N["PALSaveExample"]().save(image, mask, set_name="drawn", name="example")
    saved = sorted((models / "examples" / "drawn").glob("*_mask.png"))
    assert len(saved) == len(kinds)
    for path in saved:
        assert ((np.asarray(Image.open(path)) > 127) != marks).mean() < 0.01, path
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56), dtype=np.uint8)).save(inputs / "photo.png")
    with pytest.raises(MaskFileError, match="photo.png"):
        N["PALLoadMask"]().load("photo.png")
    assert "no mask file" in N["PALLoadMask"].VALIDATE_INPUTS("gone.png")
