"""PAR scoring of large image sets: sharded over torchrun ranks, resumable, decoded in workers.

``python -m pal4vst score SOURCE... --out ranking.csv`` runs here with one process;
``torchrun --nproc_per_node N [--nnodes M ...] -m pal4vst score ...`` shards the items (item i
goes to rank i mod world). Each rank appends its results to
``ranking.csv.parts/part-<rank>-of-<world>.jsonl`` one chunk at a time (a single write per chunk;
a torn last line is ignored), and rank 0 merges every part into the ranking at the end. A rerun
skips items whose key and signature (size + mtime) are already in a part, so a killed run loses
at most the chunk each rank was writing.

Every result records what produced it (:func:`producer`: the model file's sha256, input size,
threshold, mode, precision), as a short key ``by``; ``settings.json`` in the parts folder maps each
key to its settings, and the ranking's ``<name>.settings.json`` says which made it. A resume under
other settings is refused with the difference named (:class:`ResumeError`) unless asked to
re-score; the ranking never mixes results of different settings.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..detect import Detector, resize_input
from ..distributed import World
from ..files import atomic_write
from ..images import ImageError
from ..model.checkpoint import file_sha256
from ..settings import ScoreOptions
from .ranking import Scored, write_ranking
from .report import BestThumbnails, Card, thumbnail, thumbnail_path
from .sources import Item, enumerate_sources, read_item

log = logging.getLogger("pal4vst")


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


class ResumeError(ValueError):
    """An earlier run into the same output made its results with other settings."""


def producer(detector: Detector) -> dict:
    """What a PAR depends on besides the image: the model file (sha256; its name for reading),
    the network's input size, threshold, mode (and tile overlap when tiled) and precision."""
    source, o = Path(detector.loaded.source), detector.options
    settings = {"model_sha256": file_sha256(source) if source.is_file() else str(source), "model": source.name,
                "input_size": detector.size, "threshold": o.threshold, "mode": o.mode,
                "precision": str(detector.dtype).replace("torch.", "")}
    if o.mode == "tiled":
        settings["tile_overlap"] = detector.tile_overlap
    return settings


def producer_key(settings: dict) -> str:
    """A short key of :func:`producer`'s settings (the model's file name left out: a renamed file
    gives the same results)."""
    import hashlib

    same = {k: v for k, v in settings.items() if k != "model"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:16]


def _thumb_version(rec: dict) -> str:
    """What a kept overlay is keyed by besides the image: its file's signature and the settings."""
    return f"{rec.get('sig', '')}/{rec.get('by', '')}"


def _settings_file(folder: Path) -> Path:
    return folder / "settings.json"


def _known_settings(folder: Path) -> dict[str, dict]:
    try:
        known = json.loads(_settings_file(folder).read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def describe_difference(old: dict | None, new: dict) -> str:
    """``threshold 0.5 -> 0.9, model a.pth (sha256 1234abcd) -> b.pth (sha256 5678ef90)``."""
    if not old:
        return "settings that an earlier version did not record"
    diffs = []
    for k in sorted(set(old) | set(new)):
        if k in ("model", "model_sha256"):
            continue
        if old.get(k) != new.get(k):
            diffs.append(f"{k.replace('_', ' ')} {old.get(k)} -> {new.get(k)}")
    if old.get("model_sha256") != new.get("model_sha256"):
        diffs.insert(0, f"model {old.get('model')} (sha256 {str(old.get('model_sha256'))[:8]}) -> "
                        f"{new.get('model')} (sha256 {str(new.get('model_sha256'))[:8]})")
    return ", ".join(diffs) or "other settings"


def check_resume(done: dict[str, dict], items: list, known: dict[str, dict], by: str, settings: dict,
                 out: Path, rescore: bool) -> None:
    """Refuse (:class:`ResumeError`) when results of this job's items were made with settings
    other than ``settings``, unless ``rescore``."""
    keys = {it.key for it in items}
    foreign = Counter(rec.get("by", "") for key, rec in done.items() if key in keys and rec.get("by") != by)
    if not foreign or rescore:
        return
    other = foreign.most_common(1)[0][0]
    raise ResumeError(f"{out}: {foreign.total()} image(s) were scored by an earlier run with "
                      f"{describe_difference(known.get(other), settings)}; PARs compare only under one model and "
                      "threshold, so they are not mixed. Re-score them with --rescore, or choose another --out")


def read_parts(folder: Path) -> dict[str, dict]:
    """Every result recorded in any part file (any world size), by key; later lines win."""
    done: dict[str, dict] = {}
    if not folder.is_dir():
        return done
    for part in sorted(folder.glob("part-*.jsonl")):
        with part.open() as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # torn last write of a killed run
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                done[rec["path"]] = rec
    return done


class Decoded(NamedTuple):
    """One input as a decoding worker hands it over: its index in the job, the image resized to
    the model's input (uint8 ``SxSx3``; None when it failed), its own ``(h, w)``, the error, and
    the seconds decoding took."""

    index: int
    small: torch.Tensor | None
    size: tuple[int, int]
    error: str
    seconds: float


@dataclass
class ScoreSummary:
    """What a scoring job did: this rank's share, and (rank 0) the merged ranking."""

    rank: int
    scored: int
    skipped: int
    seconds: float
    images_per_s: float
    ranked: int = 0
    failed: list[str] = field(default_factory=list)
    missing: int = 0
    histogram: str | None = None
    slowest_decode: list[str] = field(default_factory=list)
    best: list[tuple[int, str, float]] = field(default_factory=list)


class _Decode(torch.utils.data.Dataset):
    """Decodes and resizes in DataLoader workers: one :class:`Decoded` per input."""

    def __init__(self, items: list[Item], size: int) -> None:
        self.items, self.size = items, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        t0 = time.perf_counter()
        try:
            img = read_item(self.items[i].key)
        except (ImageError, OSError, ValueError) as e:
            msg = str(e)
            key = self.items[i].key
            return Decoded(i, None, (0, 0), msg[len(key) + 2:] if msg.startswith(key + ": ") else msg,
                           time.perf_counter() - t0)
        small = resize_input(img, self.size)
        return Decoded(i, torch.from_numpy(small), img.shape[:2], "", time.perf_counter() - t0)


def _collate(batch):
    return batch


@dataclass
class ScoreJob:
    """Score ``sources`` into the ranking ``out`` with ``detector`` on this rank of ``world``;
    ``on_chunk(n)`` is called once the n-th chunk of results is on disk. ``items``: the sources
    already enumerated (:func:`~pal4vst.scoring.sources.enumerate_sources`), else done here.
    ``thumbnails``: keep the contact-sheet overlays of this many best images (:mod:`.report`)."""

    sources: list[str]
    out: Path
    detector: Detector
    options: ScoreOptions = field(default_factory=ScoreOptions)
    world: World = field(default_factory=World.from_env)
    on_chunk: Callable[[int], None] | None = None
    items: list[Item] | None = None
    thumbnails: int = 0


def thumbs_dir(out: Path) -> Path:
    """Where a scoring job keeps its best overlays for the contact sheet."""
    return parts_dir(out) / "thumbs"


def _drop_torn_tail(part: Path) -> None:
    """Cut a killed run's half-written last line, so appending starts on a fresh line."""
    if not part.exists() or part.stat().st_size == 0:
        return
    data = part.read_bytes()
    if not data.endswith(b"\n"):
        with part.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _chunks(loader, size: int) -> Iterator[list]:
    buf: list = []
    for batch in loader:
        buf.extend(batch)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def score_job(job: ScoreJob) -> ScoreSummary:
    """Score this rank's share, then (rank 0) merge all parts into the ranking CSV."""
    w = job.world
    w.init()
    items = job.items
    if items is None:
        items, warnings = enumerate_sources(job.sources)
        if w.rank == 0:
            for msg in warnings:
                log.warning("%s", msg)
    folder = parts_dir(job.out)
    settings = producer(job.detector)
    by = producer_key(settings)
    done = read_parts(folder)
    known = _known_settings(folder)
    check_resume(done, items, known, by, settings, job.out, job.options.rescore)
    folder.mkdir(parents=True, exist_ok=True)
    if w.rank == 0 and known.get(by) != settings:
        atomic_write(_settings_file(folder),
                     lambda tmp: tmp.write_text(json.dumps({**known, by: settings}, indent=1)))
    mine = [(i, it) for i, it in enumerate(items) if i % w.size == w.rank]
    todo = [(i, it) for i, it in mine if not _is_done(done.get(it.key), it, by, job.options.retry_failed)]
    part = folder / f"part-{w.rank:05d}-of-{w.size:05d}.jsonl"
    t0 = time.perf_counter()
    n = _score(job, todo, part, BestThumbnails(thumbs_dir(job.out), job.thumbnails), by)
    seconds = time.perf_counter() - t0
    w.barrier()
    summary = ScoreSummary(w.rank, n, len(mine) - len(todo), round(seconds, 3),
                           round(n / seconds, 2) if seconds > 0 and n else 0.0)
    if w.rank == 0:
        summary = dataclasses.replace(summary, **merge(items, folder, job.out, by))
        atomic_write(settings_path(job.out), lambda tmp: tmp.write_text(json.dumps(
            {"by": by, **settings, "ranked": summary.ranked}, indent=1)))
    w.barrier()
    w.close()
    return summary


def written_by(out: Path, html: Path | None = None) -> list[Path]:
    """What a scoring job into ``out`` writes (parts and thumbnails, the histogram, the record of
    its settings, the contact sheet): left out of the inputs of the next run."""
    return [parts_dir(out), out.with_suffix(".par_hist.png"), settings_path(out)] + ([html] if html else [])


def settings_path(out: Path) -> Path:
    """The ranking's record of what produced it: ``ranking.settings.json`` beside ``ranking.csv``."""
    return out.with_suffix(".settings.json")


def _is_done(rec: dict | None, item: Item, by: str, retry_failed: bool) -> bool:
    if rec is None or rec.get("sig") != item.sig or rec.get("by") != by:
        return False
    return rec.get("status") == "ok" or not retry_failed


def _score(job: ScoreJob, todo: list[tuple[int, Item]], part: Path, thumbs: BestThumbnails, by: str) -> int:
    """Score ``todo`` (``(index in the job, item)``) into ``part``, each result marked with the
    settings key ``by``; offer each overlay to ``thumbs``."""
    from tqdm import tqdm

    if not todo:
        return 0
    det, batch = job.detector, job.detector.options.batch
    loader = torch.utils.data.DataLoader(_Decode([it for _, it in todo], det.size), batch_size=batch,
                                         num_workers=job.options.workers, collate_fn=_collate,
                                         pin_memory=det.device.type == "cuda")
    bar = tqdm(total=len(todo), unit="img", desc=f"rank {job.world.rank}", disable=job.world.local_rank != 0 or None)
    _drop_torn_tail(part)
    count = 0
    with part.open("a") as f:
        for n_chunk, chunk in enumerate(_chunks(loader, job.options.chunk), 1):
            lines = []
            for start in range(0, len(chunk), batch):
                group = chunk[start:start + batch]
                good = [g for g in group if g.small is not None]
                small = torch.stack([g.small for g in good]) if good else None
                results = det.detect_resized(small, [g.size for g in good]) if good else []
                by_index = {g.index: (g, d) for g, d in zip(good, results)}
                for i, _, (h, w_), err, secs in group:
                    order, it = todo[i]
                    if err:
                        rec = {"path": it.key, "sig": it.sig, "par": None, "width": None, "height": None,
                               "regions": None, "status": f"failed: {err}", "decode_s": round(secs, 4), "by": by}
                    else:
                        g, d = by_index[i]
                        rec = {"path": it.key, "sig": it.sig, "par": d.par, "width": w_, "height": h,
                               "regions": len(d.regions()), "status": "ok", "decode_s": round(secs, 4), "by": by}
                        thumbs.offer(it.key, _thumb_version(rec), d.par, order,
                                     lambda g=g, d=d: thumbnail(g.small.numpy(), d.prob, d.mask))
                    lines.append(json.dumps(rec) + "\n")
                bar.update(len(group))
            f.write("".join(lines))  # one write per chunk: a kill leaves at most a torn last line
            f.flush()
            os.fsync(f.fileno())
            count += len(lines)
            if job.on_chunk is not None:
                job.on_chunk(n_chunk)
    bar.close()
    return count


def merge(items: list[Item], folder: Path, out: Path, by: str) -> dict:
    """Write the ranking of the results made under the settings ``by`` (best first; failed files
    last) and a PAR histogram beside it."""
    done = read_parts(folder)
    recs = [done[it.key] for it in items if it.key in done and done[it.key].get("by") == by]
    scored = [Scored(r["path"], r["par"], r["width"], r["height"], r["regions"], r["status"]) for r in recs]
    ok = [r for r in recs if r["status"] == "ok"]
    ranking = write_ranking(out, scored)
    hist = histogram_png([r["par"] for r in ok], out.with_suffix(".par_hist.png")) if ok else None
    slowest = sorted(ok, key=lambda r: -r.get("decode_s", 0.0))[:5]
    return {"ranked": len(ok), "failed": [f"{r['path']}: {r['status']}" for r in recs if r["status"] != "ok"],
            "missing": len(items) - len(recs), "histogram": str(hist) if hist else None,
            "slowest_decode": [f"{r['path']} ({r.get('decode_s', 0):.3f} s)" for r in slowest],
            "best": [(r.index, ok[r.index]["path"], ok[r.index]["par"]) for r in ranking[:5]]}


def histogram_png(pars: list[float], path: Path, bins: int = 20) -> Path:
    """A small bar chart of the PAR distribution (no plotting library needed)."""
    from PIL import Image, ImageDraw

    counts, edges = np.histogram(pars, bins=bins, range=(0.0, max(1e-6, max(pars))))
    w, h, pad = 640, 320, 40
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    top = max(1, counts.max())
    bw = (w - 2 * pad) / bins
    for i, c in enumerate(counts):
        x0 = pad + i * bw
        d.rectangle([x0 + 1, h - pad - (h - 2 * pad) * c / top, x0 + bw - 1, h - pad], fill=(200, 0, 200))
    d.line([pad, h - pad, w - pad, h - pad], fill="black")
    d.text((pad, h - pad + 8), "0", fill="black")
    d.text((w - pad - 40, h - pad + 8), f"{edges[-1]:.3f}", fill="black")
    d.text((pad, 10), f"PAR histogram: {len(pars)} images, max bar {top}", fill="black")
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
    return path


def ranked_cards(out: Path, detector: Detector, limit: int) -> tuple[list[Card], int]:
    """The contact-sheet cards of the best ``limit`` images of the ranking ``out``, best first,
    and how many had no overlay kept by scoring (scored by an earlier run that made none) and
    were detected again for it, with a progress bar."""
    from tqdm import tqdm

    done = read_parts(parts_dir(out))
    with out.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"][:limit]
    folder = thumbs_dir(out)
    cards: list[Card | None] = []
    again: list[int] = []
    for i, row in enumerate(rows):
        path = thumbnail_path(folder, row["path"], _thumb_version(done.get(row["path"], {})))
        cards.append(Card(row["path"], path.read_bytes(), float(row["par"])) if path.is_file() else None)
        if cards[-1] is None:
            again.append(i)
    for i in tqdm(again, desc="contact sheet: detecting again", unit="img", disable=None if again else True):
        img = read_item(rows[i]["path"])
        d = detector(img)
        cards[i] = Card(rows[i]["path"], thumbnail(img, d.prob, d.mask), d.par)
    return cards, len(again)
