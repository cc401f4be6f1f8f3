"""The CLI as a user runs it: outputs, failures reported on one line, nothing overwritten."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pal4vst.cli.main import main

from conftest import SQUARES, disc_dilate, squares_image, synthetic_image


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(synthetic_image(64, 96, 1)).save(d / "a.png")
    Image.fromarray(synthetic_image(80, 80, 2)).save(d / "sub" / "b.jpg")
    Image.fromarray(synthetic_image(40, 50, 3)).save(d / "sub" / "a.png")  # same stem as ../a.png
    return d


def test_detect_writes_every_output(folder, tmp_path, tiny_pth):
    out = tmp_path / "out"
    assert main(["detect", str(folder), "--model", str(tiny_pth), "--out", str(out), "--dtype", "fp32"]) == 0
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert {"input", "width", "height", "par", "regions", "model", "seconds"} <= set(lines[0])
    names = sorted(p.name for p in out.iterdir())
    assert "imgs_a_mask.png" in names and "sub_a_mask.png" in names and "b_prob.png" in names
    mask = np.asarray(Image.open(out / "b_mask.png"))
    assert mask.shape == (80, 80) and set(np.unique(mask)) <= {0, 255}
    prob = Image.open(out / "b_prob.png")
    assert prob.mode.startswith("I") and prob.size == (80, 80)
    rec = next(r for r in lines if r["input"].endswith("b.jpg"))
    assert rec["par"] == pytest.approx((mask > 0).mean(), abs=1e-6)


def test_failures_are_one_line_each_and_the_rest_is_done(folder, tmp_path, tiny_pth, capsys):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image")
    out = tmp_path / "out"
    code = main(["detect", str(folder), "--model", str(tiny_pth), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("error:") == 2 and "Traceback" not in err
    assert "skipping" in err and "readme.txt" in err
    assert len((out / "results.jsonl").read_text().splitlines()) == 3


def test_never_overwrites_inputs(tmp_path, tiny_pth, capsys):
    Image.fromarray(synthetic_image(32, 32)).save(tmp_path / "x.png")
    Image.fromarray(synthetic_image(32, 32)).save(tmp_path / "x_mask.png")
    before = (tmp_path / "x_mask.png").read_bytes()
    code = main(["detect", str(tmp_path / "x.png"), str(tmp_path / "x_mask.png"), "--model", str(tiny_pth),
                 "--out", str(tmp_path)])
    assert code == 2  # a refused setup, by the documented rule
    assert "overwrite an input" in capsys.readouterr().err
    assert (tmp_path / "x_mask.png").read_bytes() == before


def test_missing_weights_offline_explains(tmp_path, folder, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAL4VST_MODELS", raising=False)
    code = main(["detect", str(folder), "--out", str(tmp_path / "o"), "--no-download"])
    err = capsys.readouterr().err
    assert code == 2
    assert "drive.google.com" in err and "unified.pth" in err and "Traceback" not in err


def test_wrong_checkpoint_is_a_clear_error(tmp_path, folder, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"")
    assert main(["detect", str(folder), "--model", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "empty" in capsys.readouterr().err


def test_score_ranks_and_reports(folder, tmp_path, tiny_pth):
    csv_path, html = tmp_path / "rank.csv", tmp_path / "rank.html"
    assert main(["score", str(folder), "--model", str(tiny_pth), "--out", str(csv_path), "--html", str(html)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3]
    pars = [float(r["par"]) for r in rows]
    assert pars == sorted(pars) and len(set(pars)) == 3
    page = html.read_text()
    assert page.count("<figure>") == 3 and "data:image/jpeg;base64," in page


def test_convert_and_models(tmp_path, tiny_pth, capsys, monkeypatch):
    out = tmp_path / "t.safetensors"
    assert main(["convert", str(tiny_pth), str(out)]) == 0 and out.is_file()
    monkeypatch.setenv("PAL4VST_MODELS", str(tmp_path))
    assert main(["models"]) == 0
    assert "t.safetensors" in capsys.readouterr().out


def test_refine_changes_nothing_outside_its_mask(tmp_path, bright_st):
    src = squares_image()
    Image.fromarray(src).save(tmp_path / "b.png")
    out = tmp_path / "r"
    assert main(["refine", str(tmp_path / "b.png"), "--model", str(bright_st), "--out", str(out),
                 "--save-crops", "--dtype", "fp32", "--no-merge"]) == 0
    fixed = np.asarray(Image.open(out / "b_refined.png"))
    mask = np.asarray(Image.open(out / "b_mask.png")) > 0
    assert fixed.shape == src.shape and mask.any()
    assert (fixed[mask] != src[mask]).any()  # the squares were repainted...
    assert np.array_equal(fixed[~mask], src[~mask])  # ...and nothing else
    from pal4vst.detect import Detector
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.settings import RegionOptions

    marks = Detector(load_checkpoint(bright_st), device="cpu", dtype="fp32")(src).mask
    allowed = disc_dilate(marks, RegionOptions().grow + 1)  # the written mask is the marks grown, no more
    assert not (mask & ~allowed).any() and np.array_equal(fixed[~allowed], src[~allowed])
    rec = json.loads((out / "results.jsonl").read_text())
    assert rec["kept"] == rec["judged"] == len(SQUARES) and rec["passes"] == 1 and rec["par_before"] > 0.1
    assert (out / "b_compare.jpg").is_file()
    records = json.loads((out / "crops" / "b_pass0_records.json").read_text())
    assert len(records) == len(SQUARES) and len(list((out / "crops").glob("b_pass0_crop*_mask.png"))) == 2


def test_refine_candidates_and_report(tmp_path, bright_st):
    src = squares_image()
    Image.fromarray(src).save(tmp_path / "b.png")
    out = tmp_path / "r"
    assert main(["refine", str(tmp_path / "b.png"), "--model", str(bright_st), "--out", str(out), "--save-crops",
                 "--dtype", "fp32", "--no-merge", "--candidates", "2", "--min-gain", "0.05"]) == 0
    rec = json.loads((out / "results.jsonl").read_text())
    report = rec["report"]
    assert len(report) == rec["judged"] == len(SQUARES)
    for r in report:  # OpenCV repaints the same every time: one candidate is made and judged
        assert len(r["scores"]) == len(r["seeds"]) == 1
        assert r["accepted"] == (min(r["scores"]) < r["score_before"] - 0.05)
    assert rec["kept"] == sum(r["accepted"] for r in report)
    cands = sorted((out / "crops").glob("b_pass0_crop*_cand*_score*.png"))
    assert len(cands) == len(SQUARES)
    saved = json.loads((out / "crops" / "b_pass0_report.json").read_text())
    assert [r["scores"] for r in saved] == [r["scores"] for r in report if r["pass_index"] == 0]
    # --no-verify: every repaint is kept
    out2 = tmp_path / "r2"
    assert main(["refine", str(tmp_path / "b.png"), "--model", str(bright_st), "--out", str(out2), "--dtype", "fp32",
                 "--no-merge", "--no-verify", "--min-gain", "0.99"]) == 0
    rec2 = json.loads((out2 / "results.jsonl").read_text())
    assert rec2["report"] and all(r["accepted"] for r in rec2["report"])


def test_refine_rejects_out_of_range_candidates(tmp_path, bright_st, capsys):
    Image.fromarray(squares_image()).save(tmp_path / "b.png")
    code = main(["refine", str(tmp_path / "b.png"), "--model", str(bright_st), "--out", str(tmp_path / "o"),
                 "--candidates", "9"])
    assert code != 0 and "candidates must be between 1 and 8" in capsys.readouterr().err


def test_help_runs_as_a_module():
    r = subprocess.run([sys.executable, "-m", "pal4vst", "detect", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--threshold" in r.stdout


def test_demo_images(shared_dir, tmp_path, tiny_pth):
    """The newcomer's run: detect on the paper's demo images with a tiny checkpoint."""
    demo = shared_dir / "data" / "demo"
    out = tmp_path / "demo"
    assert main(["detect", str(demo), "--model", str(tiny_pth), "--out", str(out)]) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 26
    for rec in map(json.loads, lines):
        w, h = Image.open(rec["input"]).size
        assert (rec["width"], rec["height"]) == (w, h)


def test_selfcheck_reports_iou(shared_dir, tiny_pth, capsys, monkeypatch):
    monkeypatch.setenv("PAL4VST_REFERENCE", str(shared_dir / "data" / "reference"))
    code = main(["selfcheck", "--model", str(tiny_pth)])
    out = capsys.readouterr().out
    assert "IoU" in out and "FAIL" in out and code == 1  # a random model cannot reproduce the release


def test_ctrl_c_leaves_no_partial_files(tmp_path, tiny_pth):
    import signal
    import time

    src = tmp_path / "many"
    src.mkdir()
    for i in range(120):  # far more than can be done between the third output and the signal
        Image.fromarray(synthetic_image(300, 300, i)).save(src / f"{i:03d}.png")
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "pal4vst", "detect", str(src), "--model", str(tiny_pth), "--out",
                          str(out), "--dtype", "fp32"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*_overlay.jpg"))) < 3:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    files = list(out.iterdir())
    assert not [f for f in files if f.name.startswith(".")]  # no temporary leftovers
    done = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert 0 < len(done) < 120
    for rec in done:  # every recorded image has all three outputs, complete
        stem = rec["input"].rsplit("/", 1)[-1][:-4]
        for suffix in ("_mask.png", "_prob.png", "_overlay.jpg"):
            Image.open(out / f"{stem}{suffix}").load()
