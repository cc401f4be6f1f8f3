"""Results a user can rely on (issue #29): a resumed ranking never mixes what different models or
thresholds produced, and what a command writes never becomes its next run's input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, squares_image, synthetic_image


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pal4vst", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _pars(path: Path) -> dict[str, float]:
    with path.open(newline="") as f:
        return {r["path"]: float(r["par"]) for r in csv.DictReader(f) if r["status"] == "ok"}


@pytest.fixture
def folder(tmp_path) -> Path:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.fromarray(squares_image(64, 64, ((8, 8, 24 + 8 * i, 40),))).save(imgs / f"{i}.png")
    return imgs


def _job(folder: Path, out: Path, model: Path, **options):
    from pal4vst.detect import Detector
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.scoring.batch import ScoreJob
    from pal4vst.settings import DetectOptions, ScoreOptions

    detector = Detector(load_checkpoint(model), DetectOptions(device="cpu", dtype="fp32", batch=1,
                                                              threshold=options.pop("threshold", 0.5)))
    return ScoreJob([str(folder)], out, detector, ScoreOptions(**{"workers": 0, "chunk": 8, **options}))


def test_a_resume_under_another_model_or_threshold_is_refused_and_rescored_on_request(folder, tmp_path, tiny_pth,
                                                                                    bright_st):
    from pal4vst.scoring.batch import ResumeError, score_job

    out, fresh = tmp_path / "r.csv", tmp_path / "fresh.csv"
    score_job(_job(folder, out, bright_st))
    bright = _pars(out)
    assert len(bright) == 3
    score_job(_job(folder, fresh, tiny_pth))
    tiny = _pars(fresh)
    assert len(tiny) == 3 and tiny != bright  # the two models disagree: a mix would show
    with pytest.raises(ResumeError, match=r"3 image\(s\).*model bright\.safetensors.*-> tiny\.pth.*--rescore"):
        score_job(_job(folder, out, tiny_pth))
    assert _pars(out) == bright  # the refused run changed nothing
    with pytest.raises(ResumeError, match=r"threshold 0\.5 -> 0\.9"):
        score_job(_job(folder, out, bright_st, threshold=0.9))
    summary = score_job(_job(folder, out, tiny_pth, rescore=True))
    assert summary.scored == 3 and summary.skipped == 0
    assert _pars(out) == tiny
    record = json.loads(out.with_suffix(".settings.json").read_text())
    assert record["model"] == "tiny.pth" and record["threshold"] == 0.5 and record["ranked"] == 3
    summary = score_job(_job(folder, out, tiny_pth))  # the same settings again: a plain resume
    assert summary.skipped == 3 and _pars(out) == tiny


def test_a_killed_rescore_redoes_only_what_other_settings_made(folder, tmp_path, tiny_pth, bright_st):
    """A --rescore run killed after its first chunk: a plain resume is still refused (half the
    results are the old model's), and a second --rescore redoes only those."""
    from pal4vst.scoring.batch import ResumeError, score_job

    Image.fromarray(squares_image(64, 64, ())).save(folder / "3.png")
    out = tmp_path / "r.csv"
    score_job(_job(folder, out, bright_st, chunk=2))

    def die(n):
        raise KeyboardInterrupt

    killed = _job(folder, out, tiny_pth, chunk=2, rescore=True)
    killed.on_chunk = die
    with pytest.raises(KeyboardInterrupt):
        score_job(killed)
    with pytest.raises(ResumeError, match=r"2 image\(s\)"):
        score_job(_job(folder, out, tiny_pth, chunk=2))
    summary = score_job(_job(folder, out, tiny_pth, chunk=2, rescore=True))
    assert (summary.scored, summary.skipped) == (2, 2)
    fresh = tmp_path / "fresh.csv"
    score_job(_job(folder, fresh, tiny_pth))
    assert len(_pars(out)) == 4 and _pars(out) == _pars(fresh)


def test_the_command_line_refuses_a_mixed_resume_in_one_line(folder, tmp_path, tiny_pth, bright_st):
    out = tmp_path / "r.csv"
    common = ["--out", str(out), "--workers", "0", "--device", "cpu", "--dtype", "fp32"]
    assert _cli("score", str(folder), "--model", str(bright_st), *common).returncode == 0
    r = _cli("score", str(folder), "--model", str(tiny_pth), *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--rescore" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert _cli("score", str(folder), "--model", str(tiny_pth), "--rescore", *common).returncode == 0


def test_outputs_inside_the_input_folder_are_not_scored_again(tmp_path, bright_st):
    """``score imgs --out imgs/ranking.csv --html`` twice: the second run ranks the same images,
    not its own thumbnails and histogram."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(48, 48, i)).save(imgs / f"{i}.png")
    out = imgs / "ranking.csv"
    args = ["score", str(imgs), "--out", str(out), "--html", str(imgs / "sheet.html"), "--workers", "0",
            "--device", "cpu", "--model", str(bright_st)]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert any(out.with_name(out.name + ".parts").rglob("*.jpg"))  # thumbnails were kept inside imgs/
    second = _cli(*args)
    assert second.returncode == 0, second.stderr
    assert sorted(_pars(out)) == sorted(str(imgs / f"{i}.png") for i in range(3))


def test_detect_into_a_folder_inside_its_inputs_twice_does_what_it_did_once(tmp_path, bright_st):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(48, 48, i)).save(imgs / f"{i}.png")
    args = ["detect", str(imgs), "--out", str(imgs / "out"), "--device", "cpu", "--model", str(bright_st)]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    made = sorted(p.name for p in (imgs / "out").iterdir())
    assert made
    second = _cli(*args)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in (imgs / "out").iterdir()) == made
    records = [json.loads(line) for line in (imgs / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(Path(r["input"]).name for r in records) == ["0.png", "1.png"]
    assert all(Path(o).is_file() for r in records for o in r["outputs"]) and len(records[0]["outputs"]) == 3


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["detect", "refine", "score"])
def test_an_output_place_that_cannot_be_written_is_one_line(command, tmp_path, bright_st):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(synthetic_image(48, 48, 0)).save(imgs / "a.png")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    places = [a_file / "out", a_file] if command != "score" else [a_file / "r.csv", tmp_path]
    if Path("/proc/self").is_dir():
        places.append(Path("/proc/pal4vst_out") / ("r.csv" if command == "score" else ""))  # read-only for root too
    assert places
    for place in places:
        r = _cli(command, str(imgs), "--out", str(place), "--model", str(bright_st), "--device", "cpu")
        assert r.returncode == 2, (place, r.stderr)
        line = _one_line_error(r)
        assert str(place).rstrip("/") in line and ".pal4vst-" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "imgs"]  # nothing made


@pytest.mark.parametrize("command", ["detect", "refine"])
def test_a_name_at_the_systems_limit_works(command, tmp_path, bright_st):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    name = "n" * 246 + ".png"  # 250 bytes: legal, and longer than any stem + "_overlay.jpg" may be
    Image.fromarray(squares_image(64, 64, ((8, 8, 40, 40),))).save(imgs / name)
    out = tmp_path / "out"
    r = _cli(command, str(imgs), "--out", str(out), "--model", str(bright_st), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "results.jsonl").read_text())
    assert Path(record["input"]).name == name and record["outputs"]
    for output in record["outputs"]:
        assert Path(output).is_file() and len(Path(output).name.encode()) <= 255
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_a_disk_that_fills_up_mid_run_ends_in_one_line(tmp_path, bright_st, monkeypatch, capsys):
    """The third file written fails with ENOSPC: the run stops there (every other image would fail
    the same way) with one line naming the file the user would get, exit 2, no temporary file."""
    import errno

    from pal4vst.cli.main import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(48, 48, i)).save(imgs / f"{i}.png")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    rc = main(["detect", str(imgs), "--out", str(out), "--model", str(bright_st), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and len(calls) == 5
    lines = [x for x in err.splitlines() if x.startswith("error")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(calls[-1]) in lines[0], err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    done = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(done) == 1 and all(Path(o).is_file() for o in done[0]["outputs"])  # the first image is complete


def test_the_first_command_offline_says_how_to_try_everything(tmp_path, monkeypatch, capsys):
    """The README's first command on a machine without the weights: one error that names the
    test models, which then work through the same command."""
    from pal4vst.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAL4VST_MODELS", raising=False)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(synthetic_image(48, 48, 0)).save(imgs / "a.png")
    assert main(["detect", str(imgs), "--out", str(tmp_path / "out"), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "python -m pal4vst.testing tiny tiny.safetensors --bright" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    r = subprocess.run([sys.executable, "-m", "pal4vst.testing", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "--bright" in r.stdout
    r = subprocess.run([sys.executable, "-m", "pal4vst.testing", "tiny", str(tmp_path / "tiny.safetensors"),
                        "--bright"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert main(["detect", str(imgs), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "tiny.safetensors"),
                 "--device", "cpu"]) == 0


def test_convert_never_replaces_a_file_unasked(tmp_path, tiny_pth, capsys):
    from pal4vst.cli.main import main

    st = tmp_path / "tiny.safetensors"
    assert main(["convert", str(tiny_pth), str(st)]) == 0
    assert main(["convert", str(st), str(st)]) == 2  # a .safetensors input as its own output
    assert "is the input" in capsys.readouterr().err
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"the user's file")
    assert main(["convert", str(tiny_pth), str(other)]) == 2
    assert "--overwrite" in capsys.readouterr().err and other.read_bytes() == b"the user's file"
    assert main(["convert", str(tiny_pth), str(other), "--overwrite"]) == 0 and other.read_bytes() != b"the user's file"


def test_an_animation_is_read_as_its_first_frame_with_a_note(tmp_path, caplog):
    import numpy as np

    from pal4vst.images import read_image

    frames = [Image.fromarray(synthetic_image(32, 32, i)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    first = np.asarray(Image.open(tmp_path / "a.gif").convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "a.gif"), first)
    assert "a.gif: an animation of 3 frames: its first frame is used" in caplog.text


def test_score_on_a_full_disk_ends_in_one_line(folder, tmp_path, bright_st, monkeypatch, capsys):
    import errno

    from pal4vst.cli.main import main

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # the parts' first chunk cannot be made durable
    out = tmp_path / "r.csv"
    rc = main(["score", str(folder), "--out", str(out), "--model", str(bright_st), "--device", "cpu", "--workers", "0"])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error")]
    assert rc == 2 and len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in err, err
    assert not out.exists()  # no ranking made of a part the disk did not take


def test_detect_into_its_own_input_folder_twice_does_what_it_did_once(tmp_path, bright_st):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(48, 48, i)).save(imgs / f"{i}.png")
    args = ["detect", str(imgs), "--out", str(imgs), "--device", "cpu", "--model", str(bright_st)]
    assert _cli(*args).returncode == 0
    made = sorted(p.name for p in imgs.iterdir())
    assert len(made) == 2 + 2 * 3 + 1  # the inputs, three outputs each, results.jsonl
    second = _cli(*args)
    assert second.returncode == 0, second.stderr
    assert "2 of 2 images" in second.stderr and sorted(p.name for p in imgs.iterdir()) == made
