"""What a newcomer meets on the command line (issue #24): one-line errors, outputs only where
something was done, honest notes, files others can read, and repairs no coarser than promised."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, squares_image, synthetic_image
from pal4vst.cli.main import main


@pytest.fixture
def one_image(tmp_path):
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray(synthetic_image(64, 64)).save(path)
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1 ------------------------------------------------------------------------ an absent device


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps", "tpu"])
def test_an_unavailable_device_is_one_line(device, one_image, tmp_path, tiny_pth, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    out = tmp_path / "out"
    code = main(["detect", str(one_image), "--model", str(tiny_pth), "--out", str(out), "--device", device])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("error:") and device in line and "--device" in line
    assert "cpu" in line  # what to use instead
    assert not out.exists()


def test_a_cuda_index_past_the_devices_is_named(monkeypatch):
    from pal4vst.device import DeviceError, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"cuda:2.*2 CUDA devices \(cuda:0 to cuda:1\)"):
        pick_device("cuda:2")


# 2 ------------------------------------------------------------------- score with no images


@pytest.mark.parametrize("source", ["missing", "empty"])
def test_score_without_images_fails_as_detect_does(source, tmp_path, tiny_pth, capsys):
    src = tmp_path / source
    if source == "empty":
        src.mkdir()
    out = tmp_path / "r.csv"
    assert main(["score", str(src), "--model", str(tiny_pth), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no images found" in err and "ranked 0" not in err
    assert not out.exists() and not (tmp_path / "r.csv.parts").exists()


def test_score_names_a_missing_source_and_scores_the_rest(one_image, tmp_path, tiny_pth, capsys):
    out = tmp_path / "r.csv"
    code = main(["score", str(one_image), str(tmp_path / "nope"), "--model", str(tiny_pth), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and f"error: {tmp_path / 'nope'}: no such file or folder" in err
    assert [r["path"] for r in csv.DictReader(out.open())] == [str(one_image)]


# 3 ------------------------------------------------------------------ convert keeps its input


def test_convert_never_overwrites_its_input(tmp_path, tiny_pth, capsys):
    src = tmp_path / "m.pth"
    src.write_bytes(tiny_pth.read_bytes())
    before = src.read_bytes()
    assert main(["convert", str(src), str(src)]) == 2
    assert "overwrite" in _one_error_line(capsys.readouterr().err)
    assert src.read_bytes() == before


def test_convert_writes_only_safetensors(tmp_path, tiny_pth, capsys):
    assert main(["convert", str(tiny_pth), str(tmp_path / "out.txt")]) == 2
    assert ".safetensors" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.txt").exists()


# 4 ------------------------------------------------------- the contact sheet, from the scoring


def _cards(page: str) -> list[tuple[np.ndarray, str]]:
    import base64
    import io
    import re

    cards = re.findall(r'<img src="data:image/jpeg;base64,([^"]+)".*?<figcaption>(.*?)</figcaption>', page)
    return [(np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")), cap) for b, cap in cards]


def test_the_contact_sheet_needs_no_second_detection(tmp_path, bright_st, monkeypatch):
    from pal4vst.detect import Detector

    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):  # one square each, of growing size: the ranking is c, b, a reversed
        Image.fromarray(squares_image(96, 128, squares=((20, 20, 40 + 10 * i, 40 + 10 * i),))).save(src / f"{i}.png")
    calls = []
    real = Detector.detect_batch
    monkeypatch.setattr(Detector, "detect_batch", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    out, html = tmp_path / "r.csv", tmp_path / "r.html"
    assert main(["score", str(src), "--model", str(bright_st), "--out", str(out), "--html", str(html),
                 "--workers", "0"]) == 0
    assert not calls  # scoring reads batches; the sheet reuses what scoring saw
    cards = _cards(html.read_text())
    assert [c.split("PAR")[0] for _, c in cards] == ["<b>#1</b> ", "<b>#2</b> ", "<b>#3</b> "]
    assert ["0.png" in cards[0][1], "2.png" in cards[2][1]] == [True, True]
    for thumb, _ in cards:  # each overlay is magenta on its square, dark grey elsewhere
        h, w = thumb.shape[:2]
        assert (h, w) == (96, 128)  # the image's own size (thumbnails never enlarge)
        inside = thumb[int(h * 25 / 96), int(w * 25 / 128)].astype(int)
        outside = thumb[int(h * 80 / 96), int(w * 110 / 128)].astype(int)
        assert inside[0] > 150 and inside[2] > 150 and inside[1] < 100, inside
        assert outside.max() < 40, outside


def test_the_contact_sheet_after_a_run_without_it(tmp_path, bright_st, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        Image.fromarray(squares_image(96, 128, squares=((20, 20, 40 + 10 * i, 40 + 10 * i),))).save(src / f"{i}.png")
    out, html = tmp_path / "r.csv", tmp_path / "r.html"
    assert main(["score", str(src), "--model", str(bright_st), "--out", str(out), "--workers", "0"]) == 0
    assert main(["score", str(src), "--model", str(bright_st), "--out", str(out), "--html", str(html),
                 "--workers", "0"]) == 0
    assert len(_cards(html.read_text())) == 2
    assert "detected again" in capsys.readouterr().err  # said, not silent


# 5 ------------------------------------------------------------- identical candidates, once


def test_a_deterministic_inpainter_is_asked_once(bright_st):
    from pal4vst.detect import Detector
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.settings import RefineOptions, RegionOptions, RepairOptions
    from pal4vst.zoom.inpaint import OpenCVInpainter
    from pal4vst.zoom.refine import refine

    det = Detector(load_checkpoint(bright_st), device="cpu", dtype="fp32")
    res = refine(squares_image(), det, OpenCVInpainter(),
                 RepairOptions(RegionOptions(merge=False), passes=RefineOptions(candidates=3)))
    assert res.report and all(len(r.scores) == 1 for r in res.report)
    assert res.detections <= 3  # before, one candidate image; never one per identical candidate


def test_the_cli_says_once_that_opencv_candidates_are_identical(tmp_path, bright_st, capsys):
    for name in ("a", "b"):
        Image.fromarray(squares_image()).save(tmp_path / f"{name}.png")
    assert main(["refine", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(bright_st), "--out",
                 str(tmp_path / "o"), "--candidates", "3"]) == 0
    err = capsys.readouterr().err
    assert err.count("identical") == 1, err


# 6 ------------------------------------------------------------------- files others can read


def test_written_files_get_the_permissions_open_gives(tmp_path):
    from pal4vst.files import atomic_write
    from pal4vst.images import save_image

    old = os.umask(0o022)
    try:
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "a.png")
        assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644
        os.umask(0o027)
        atomic_write(tmp_path / "b.txt", lambda tmp: tmp.write_text("x"))
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640
        (tmp_path / "c.txt").write_text("old")
        os.chmod(tmp_path / "c.txt", 0o600)  # a file that exists keeps its mode, as with open("w")
        atomic_write(tmp_path / "c.txt", lambda tmp: tmp.write_text("new"))
        assert stat.S_IMODE((tmp_path / "c.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# 7, 8 ---------------------------------------------- nothing written when nothing could be done


def test_a_run_that_cannot_start_leaves_no_output_folder(tmp_path, tiny_pth, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(tmp_path / "nope.png"), "--model", str(tiny_pth), "--out", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_missing_diffusers_is_one_error_before_anything_loads(tmp_path, tiny_pth, capsys, monkeypatch):
    import pal4vst.cli.common as common

    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    loaded = []
    monkeypatch.setattr(common, "make_detector", lambda args: loaded.append(1))
    for name in ("a", "b"):
        Image.fromarray(synthetic_image(64, 64)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    code = main(["refine", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--model", str(tiny_pth), "--out",
                 str(out), "--inpainter", "diffusers"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and 'pip install -e ".[diffusers]"' in line
    assert not loaded and not out.exists()
    assert 'pip install -e ".[diffusers]"' in (ROOT / "README.md").read_text()  # the README says the same


# 9 -------------------------------------------------------- python -m pal4vst beside the clone


def test_python_m_pal4vst_from_the_folder_holding_a_clone_named_pal4vst(tmp_path):
    (tmp_path / "pal4vst").symlink_to(ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "pal4vst", "models"], cwd=tmp_path, capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "releases:" in r.stdout


# 10 --------------------------------------------------------------------------------- --help


def test_help_shows_every_default_and_errors_name_the_flag(tmp_path, capsys):
    from pal4vst.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    for command in ("refine", "score", "selfcheck"):
        text = sub.choices[command].format_help()
        for flag in {"refine": ("--merge", "--verify", "--fill-holes", "--download", "--inpainter"),
                     "score": ("--html-max",), "selfcheck": ("--min-iou",)}[command]:
            block = text.split("\n  " + flag, 1)[1].split("\n  --", 1)[0]
            assert "default" in block, (command, flag, block)
    Image.fromarray(synthetic_image(32, 32)).save(tmp_path / "a.png")
    assert main(["refine", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--min-gain", "2"]) == 2
    assert "--min-gain must be between 0 and 1, got 2" in capsys.readouterr().err


# 11 ------------------------------------------------------------- merging keeps the zoom-in


def _chain(n: int = 35, size: int = 1024) -> np.ndarray:
    """Small marks in a diagonal chain whose zoom squares overlap neighbour to neighbour."""
    mask = np.zeros((size, size), bool)
    for i in range(n):
        y = x = 20 + i * 27
        mask[y:y + 6, x:x + 6] = True
    return mask


def test_a_merge_never_coarsens_a_region_beyond_the_bound():
    from pal4vst.masks import components
    from pal4vst.settings import RegionOptions
    from pal4vst.zoom.regions import find_regions, grow_pixels
    from pal4vst.zoom.squares import square_side

    opts = RegionOptions()
    mask = _chain()
    alone = components(mask, grow_pixels(opts, mask.shape), opts.fill_holes, opts.min_area)
    _, merged = find_regions(mask, opts)
    assert len(alone) == 35 and 1 < len(merged) < 35  # neighbours still merge, the chain does not
    checked = 0
    for region in merged:
        side = square_side(region.bbox, opts.context, opts.min_size)
        inside = [a for a in alone if a.bbox[0] >= region.bbox[0] and a.bbox[2] <= region.bbox[2]
                  and a.bbox[1] >= region.bbox[1] and a.bbox[3] <= region.bbox[3]]
        assert len(inside) == region.members
        for a in inside:
            assert side <= opts.merge_limit * square_side(a.bbox, opts.context, opts.min_size)
            checked += 1
    assert checked == 35


def test_refine_says_which_regions_were_merged(tmp_path, bright_st, capsys):
    img = np.full((256, 256, 3), 30, np.uint8)
    img[100:120, 60:80] = 230
    img[100:120, 100:120] = 230  # close: one crop covers both
    Image.fromarray(img).save(tmp_path / "a.png")
    out = tmp_path / "o"
    assert main(["refine", str(tmp_path / "a.png"), "--model", str(bright_st), "--out", str(out),
                 "--dtype", "fp32"]) == 0
    rec = json.loads((out / "results.jsonl").read_text())
    assert [r["members"] for r in rec["report"]] == [2]
    assert "2 marked areas" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(tmp_path):
    """``pal4vst models | head -1``: the reader closes the pipe; no traceback."""
    r = subprocess.run(f"{sys.executable} -m pal4vst models | head -1", shell=True, capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.stdout.startswith("releases:") and "Traceback" not in r.stderr, r.stderr
