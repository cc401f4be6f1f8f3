"""The command line does the job the nodes do (issue #27, item 4): ``pal4vst examples add`` builds
a set from image + mask files of every kind people draw (or from a ``detect --out`` folder), and
``pal4vst teach`` teaches from it into the models folder, with an exit status that tells better
from not better and a Ctrl-C that keeps the best so far."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, write_mask_kinds
from pal4vst.learn.teach import read_report


def _cli(*args, env_models, timeout=600, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PAL4VST_MODELS": str(env_models)}
    return subprocess.run([sys.executable, "-m", "pal4vst", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def test_examples_add_reads_every_kind_of_mask(tmp_path, marks):
    models = tmp_path / "models"
    img = np.random.default_rng(0).integers(0, 255, (*marks.shape, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "image.png")
    masks = write_mask_kinds(tmp_path, marks)
    photo = tmp_path / "photo.png"  # a picture saved where its mask should be
    Image.fromarray(np.random.default_rng(1).integers(0, 255, marks.shape, dtype=np.uint8)).save(photo)
    pairs = [p for m in [*masks.values(), photo] for p in (tmp_path / "image.png", m)]
    r = _cli("examples", "add", "gen", *pairs, env_models=models)
    assert r.returncode == 1, r.stderr  # one pair failed; the others are in
    assert "photo.png" in r.stderr and "Traceback" not in r.stderr
    assert "note:" in r.stdout and "jpeg.jpg" in r.stdout  # the JPEG mask, read half-way, is said
    saved = sorted((models / "examples" / "gen").glob("*_mask.png"))
    assert len(saved) == len(masks) > 0
    for path in saved:
        got = np.asarray(Image.open(path)) > 127
        assert (got != marks).mean() < 0.01, path  # every kind as drawn (JPEG: within its blur)
        assert np.array_equal(np.asarray(Image.open(str(path).replace("_mask", ""))), img)
    assert f"gen: {len(masks)} examples ({len(masks)} with artifacts, 0 clean)" in r.stdout
    assert f"in {models / 'examples' / 'gen'}" in r.stdout  # where the user finds the set
    listed = _cli("examples", "list", env_models=models)
    assert listed.returncode == 0 and f"gen: {len(masks)} examples" in listed.stdout
    again = _cli("examples", "add", "gen", tmp_path / "image.png", masks["alpha.png"], env_models=models)
    assert again.returncode == 0 and len(list((models / "examples" / "gen").glob("*_mask.png"))) == len(masks) + 1
    bad = _cli("examples", "add", "../up", tmp_path / "image.png", masks["alpha.png"], env_models=models)
    assert bad.returncode == 2 and "not usable" in bad.stderr and not (models / "up").exists()
    odd = _cli("examples", "add", "gen", tmp_path / "image.png", env_models=models)
    assert odd.returncode == 2 and "in pairs" not in odd.stderr and "each image followed by its mask" in odd.stderr


def test_examples_add_takes_a_detect_folder_without_its_overlays(tmp_path):
    from pal4vst.testing import bright_checkpoint

    models, out = tmp_path / "models", tmp_path / "out"
    model = bright_checkpoint(tmp_path / "bright.safetensors")
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        a = np.full((64, 80, 3), 40, np.uint8)
        a[10 + i * 10:30, 20:50] = 250
        Image.fromarray(a).save(images / f"gen{i}.png")
    r = _cli("detect", images, "--out", out, "--model", model, "--device", "cpu", env_models=models)
    assert r.returncode == 0, r.stderr
    (out / "gen1_mask.png").write_bytes((out / "gen0_mask.png").read_bytes())  # the artist's correction
    r = _cli("examples", "add", "gen", "--detected", out, env_models=models)
    assert r.returncode == 0, r.stderr
    saved = sorted((models / "examples" / "gen").glob("*.png"))
    assert len(saved) == 4  # two images and their masks; no overlay, no probability map
    masks = [p for p in saved if p.name.endswith("_mask.png")]
    for m, name in zip(masks, ("gen0", "gen1")):
        assert np.array_equal(np.asarray(Image.open(m)) > 127, np.asarray(Image.open(out / "gen0_mask.png")) > 127)
        assert np.array_equal(np.asarray(Image.open(str(m).replace("_mask", ""))),
                              np.asarray(Image.open(images / f"{name}.png")))
    assert _cli("examples", "add", "gen", "--detected", images, env_models=models).returncode == 2


def test_teach_writes_into_the_models_folder_and_its_status_says_better(taught, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    r = _cli("teach", taught["examples"], "--from", taught["base"], "--name", "gen", "--device", "cpu",
             env_models=models, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("Better") and "--model gen" in r.stdout and "Traceback" not in r.stderr
    assert read_report(models / "gen.safetensors")["better"]
    not_better = _cli("teach", taught["examples"], "--from", taught["base"], "--name", "gen", "--device", "cpu",
                      "--steps", "1", "--lr", "1e-12", env_models=models, timeout=300)
    assert not_better.returncode == 3 and "NOT shown better" in not_better.stdout
    assert (models / "gen_2.safetensors").is_file() and read_report(models / "gen.safetensors")["better"]  # kept


def test_teach_refuses_what_cannot_teach_and_leaves_nothing(taught, tmp_path):
    models = tmp_path / "absent"
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(taught["examples"].glob("example_0000[12]*")):
        (few / p.name).write_bytes(p.read_bytes())
    r = _cli("teach", few, "--from", taught["base"], "--device", "cpu", env_models=models)
    assert r.returncode == 2 and "at least 4" in r.stderr and "Traceback" not in r.stderr
    assert not models.exists()  # a failed run leaves no folder
    r = _cli("teach", "nothing", "--from", taught["base"], env_models=models)
    assert r.returncode == 2 and "pal4vst examples add" in r.stderr and not models.exists()
    helped = _cli("teach", "--help", env_models=models)
    assert helped.returncode == 0 and "--from MODEL, --model MODEL" in helped.stdout and "75%" in helped.stdout
    r = _cli("teach", few, "--model", taught["base"], "--device", "cpu", env_models=models)  # as detect names it
    assert r.returncode == 2 and "at least 4" in r.stderr and not models.exists()


def _start_teach(taught, models, steps):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PAL4VST_MODELS": str(models)}
    return subprocess.Popen([sys.executable, "-m", "pal4vst", "teach", str(taught["examples"]), "--from",
                             str(taught["base"]), "--name", "stopped", "--steps", str(steps), "--device", "cpu"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(proc) -> None:
    seen = ""
    deadline = time.time() + 300
    while "step" not in seen and time.time() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096).decode()
    assert "step" in seen


def test_ctrl_c_keeps_the_best_so_far(taught, tmp_path):
    models = tmp_path / "models"
    proc = _start_teach(taught, models, 100_000)
    _wait_for_steps(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 3) and "Traceback" not in err and "stopping after this step" in err
    report = json.loads((models / "stopped.json").read_text())
    assert report["stopped_early"] and report["steps_run"] < 100_000 and (models / "stopped.safetensors").is_file()
    assert "Stopped in fold 1 of 3" in out


def test_a_second_ctrl_c_interrupts_at_once():
    """The first Ctrl-C only asks the run to stop (it then writes the best so far); a second one
    raises KeyboardInterrupt, which the command turns into 130 without writing a model."""
    from pal4vst.cli.teach import _StopOnCtrlC

    before = signal.getsignal(signal.SIGINT)
    with _StopOnCtrlC() as ctrl_c:
        assert not ctrl_c.asked
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between two bytecodes of this thread
        assert ctrl_c.asked
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back
