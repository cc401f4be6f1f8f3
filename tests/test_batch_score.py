"""Dataset-scale scoring: folders, lists and tar shards; 2 gloo ranks under torchrun give the same
ranking as 1 process; a killed run resumes and scores every image exactly once."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from PIL import Image

from conftest import ROOT, synthetic_image


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_pth):
    root = tmp_path_factory.mktemp("ds")
    folder = root / "folder"
    (folder / "sub").mkdir(parents=True)
    for i in range(24):
        Image.fromarray(synthetic_image(40 + i, 48, i)).save(folder / ("sub" if i % 3 == 0 else "") / f"img{i:03d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    shard = root / "shard-000.tar"
    with tarfile.open(shard, "w") as tf:
        for i in range(14):
            buf = io.BytesIO()
            Image.fromarray(synthetic_image(50, 30 + i, 100 + i)).save(buf, format="JPEG")
            info = tarfile.TarInfo(f"{i:06d}.jpg")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
        bad = b"not a jpeg"
        info = tarfile.TarInfo("000099.jpg")
        info.size = len(bad)
        tf.addfile(info, io.BytesIO(bad))
    return folder, shard, tiny_pth


def _score(args, out, env=None, nproc=1, check=True):
    base = [sys.executable, "-m", "pal4vst", "score", *args, "--out", str(out), "--workers", "0", "--chunk", "8",
            "--batch", "4", "--dtype", "fp32", "--device", "cpu"]
    if nproc > 1:
        base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
                "29533", "-m", "pal4vst", *base[3:]]
    r = subprocess.run(base, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode in (0, 1), r.stderr[-3000:]
    return r


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_ranks_match_one_process(data, tmp_path):
    folder, shard, model = data
    r1 = _score([str(folder), str(shard), "--model", str(model)], tmp_path / "one.csv")
    r2 = _score([str(folder), str(shard), "--model", str(model)], tmp_path / "two.csv", nproc=2)
    one, two = _rows(tmp_path / "one.csv"), _rows(tmp_path / "two.csv")
    assert len(one) == 24 + 14 + 2
    assert one == two
    assert list((tmp_path / "two.csv.parts").glob("part-*-of-00002.jsonl")) and r2.returncode == 1
    # each rank scored its share only (item i on rank i mod 2), not every item: N ranks, 1/N each
    from pal4vst.scoring.sources import enumerate_sources

    items = [it.key for it in enumerate_sources([str(folder), str(shard)])[0]]
    shares = [[json.loads(x)["path"] for x in (tmp_path / "two.csv.parts" / f"part-{r:05d}-of-00002.jsonl")
               .read_text().splitlines()] for r in (0, 1)]
    assert len(items) == 40 and all(shares)
    assert [sorted(s) for s in shares] == [sorted(items[r::2]) for r in (0, 1)]
    failed = [r for r in one if r["status"] != "ok"]
    assert {r["path"].rsplit("/", 1)[-1] for r in failed} == {"broken.png", "shard-000.tar::000099.jpg"}
    assert all(r["status"].startswith("failed: ") for r in failed) and r1.returncode == 1
    ranked = [r for r in one if r["status"] == "ok"]
    assert [int(r["rank"]) for r in ranked] == list(range(1, 39))
    assert [float(r["par"]) for r in ranked] == sorted(float(r["par"]) for r in ranked)
    assert (tmp_path / "one.par_hist.png").is_file()


def test_same_numbers_as_single_image_detection(data, tmp_path):
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.detect import Detector
    from pal4vst.images import read_image

    folder, _, model = data
    _score([str(folder), "--model", str(model)], tmp_path / "f.csv")
    det = Detector(load_checkpoint(model), device="cpu", dtype="fp32")
    rows = [r for r in _rows(tmp_path / "f.csv") if r["status"] == "ok"][:6]
    assert len(rows) == 6 and all(float(r["par"]) > 0 for r in rows)
    for row in rows:
        d = det(read_image(row["path"]))
        assert float(row["par"]) == pytest.approx(d.par, abs=1e-6)


class _Killed(Exception):
    pass


def test_killed_run_resumes_and_scores_each_image_once(data, tmp_path):
    """A job that dies after two chunks (and, as a kill mid-write does, leaves a torn last line)
    is resumed by a new run that scores every image exactly once."""
    from pal4vst.detect import Detector
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.scoring.batch import ScoreJob, ScoreOptions, score_job

    folder, shard, model = data
    out = tmp_path / "r.csv"

    def die(n_chunk: int) -> None:
        if n_chunk == 2:
            raise _Killed

    detector = Detector(load_checkpoint(model), device="cpu", dtype="fp32", batch=4)
    with pytest.raises(_Killed):
        score_job(ScoreJob([str(folder), str(shard)], out, detector, ScoreOptions(workers=0, chunk=8), on_chunk=die))
    part = out.with_name("r.csv.parts") / "part-00000-of-00001.jsonl"
    first = part.read_text().splitlines(keepends=True)
    assert len(first) == 16 and not out.exists()
    with part.open("a") as f:
        f.write(first[0][: len(first[0]) // 2])  # the torn line a kill mid-write leaves
    _score([str(folder), str(shard), "--model", str(model)], out)
    lines = [json.loads(x) for x in (out.with_name("r.csv.parts") / "part-00000-of-00001.jsonl").read_text().splitlines()]
    keys = [x["path"] for x in lines]
    assert len(keys) == len(set(keys)) == 40
    assert len(_rows(out)) == 40
    # a third run has nothing left to do
    r = _score([str(folder), str(shard), "--model", str(model)], out)
    assert "38 already scored" in r.stderr or "40 already scored" in r.stderr


def test_list_source(data, tmp_path):
    folder, _, model = data
    lst = tmp_path / "list.txt"
    names = sorted(p for p in folder.rglob("img*.png"))[:5]
    lst.write_text("\n".join(str(p) for p in names) + "\n/nowhere/missing.png\n")
    _score([str(lst), "--model", str(model)], tmp_path / "l.csv")
    rows = _rows(tmp_path / "l.csv")
    assert len(rows) == 6 and sum(r["status"] == "ok" for r in rows) == 5
    assert rows[-1]["path"] == "/nowhere/missing.png" and rows[-1]["status"] == "failed: no such file"


def test_an_image_changed_since_it_was_scored_is_scored_again(tmp_path, bright_st):
    """Resuming trusts a part file only for images whose size and time are as scored: an image
    replaced in between (here a clean one by one with a big square) gets its new PAR."""
    import numpy as np

    from conftest import squares_image
    from pal4vst.detect import Detector
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.scoring.batch import ScoreJob, ScoreOptions, score_job

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(squares_image(64, 64, ())).save(folder / f"{i}.png")
    out = tmp_path / "r.csv"
    detector = Detector(load_checkpoint(bright_st), device="cpu", dtype="fp32", batch=4)
    job = lambda: ScoreJob([str(folder)], out, detector, ScoreOptions(workers=0, chunk=8))  # noqa: E731
    score_job(job())
    first = {r["path"]: float(r["par"]) for r in _rows(out)}
    assert len(first) == 3 and set(first.values()) == {0.0}
    changed = folder / "1.png"
    Image.fromarray(squares_image(64, 64, ((8, 8, 40, 48),))).save(changed)
    os.utime(changed, (1_900_000_000, 1_900_000_000))  # a different time, whatever the clock's resolution
    summary = score_job(job())
    second = {r["path"]: float(r["par"]) for r in _rows(out)}
    assert summary.scored == 1 and summary.skipped == 2
    assert second[str(changed)] > 0.2 and all(second[p] == 0.0 for p in second if p != str(changed))
    assert np.isclose(sum(second.values()), second[str(changed)])
