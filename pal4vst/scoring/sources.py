"""Image sources for batch scoring: folder trees, path lists (text or CSV) and WebDataset-style tar
shards. Every item has a stable key and a signature (size + mtime) so a rerun can skip work."""

from __future__ import annotations

import csv
import glob
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..images import IMAGE_SUFFIXES, ImageError, left_out, pil_to_rgb, read_image

TAR_SEP = "::"


@dataclass(frozen=True)
class Item:
    """One image: ``key`` is its path (or ``shard.tar::member``), ``sig`` changes when it changes."""

    key: str
    sig: str


def _file_item(p: Path) -> Item:
    st = p.stat()
    return Item(str(p), f"{st.st_size}:{st.st_mtime_ns}")


def _from_list(path: Path) -> list[Path]:
    base = path.parent
    text = path.read_text().splitlines()
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text))
        if rows and any(h.strip().lower() in ("path", "file", "image") for h in rows[0]):
            col = next(i for i, h in enumerate(rows[0]) if h.strip().lower() in ("path", "file", "image"))
            rows = rows[1:]
        else:
            col = 0
        names = [r[col] for r in rows if r and r[col].strip()]
    else:
        names = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    return [Path(n) if Path(n).is_absolute() else base / n for n in names]


def _tar_items(shard: Path) -> list[Item]:
    items = []
    with tarfile.open(shard) as tf:
        for m in tf:
            if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES:
                items.append(Item(f"{shard}{TAR_SEP}{m.name}", f"{m.size}:{m.mtime}"))
    return items


def enumerate_sources(sources: list[str], exclude: Iterable[str | Path] = ()) -> tuple[list[Item], list[str]]:
    """Items of every source, in a deterministic order, and warnings for what was skipped.

    A source is a folder (searched recursively), a ``.txt``/``.csv`` list of paths, a ``.tar``
    shard, or a glob pattern of any of these. Files found in a folder that are or lie under
    ``exclude`` (what the job itself writes) are left out."""
    items: list[Item] = []
    warnings: list[str] = []
    expanded: list[Path] = []
    for s in sources:
        matches = sorted(glob.glob(s)) if any(c in s for c in "*?[") else [s]
        if not matches:
            warnings.append(f"{s}: nothing matches")
        expanded += [Path(m) for m in matches]
    for src in expanded:
        if src.is_dir():
            outside = left_out(src, exclude)
            for f in sorted(p for p in src.rglob("*") if p.is_file() and not outside(p)):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    items.append(_file_item(f))
                elif f.suffix.lower() == ".tar":
                    items += _tar_items(f)
        elif src.suffix.lower() == ".tar":
            items += _tar_items(src)
        elif src.suffix.lower() in (".txt", ".csv", ".lst"):
            for p in _from_list(src):
                items.append(_file_item(p) if p.is_file() else Item(str(p), "missing"))
        elif src.is_file():
            items.append(_file_item(src))
        else:
            warnings.append(f"{src}: no such file or folder")
    seen: set[str] = set()
    unique = [i for i in items if not (i.key in seen or seen.add(i.key))]
    return unique, warnings


_open_shards: dict[str, tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]] = {}


def _shard(path: str) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
    """An open shard and its member index, kept per process (one header scan per shard)."""
    if path not in _open_shards:
        tf = tarfile.open(path)
        _open_shards[path] = (tf, {m.name: m for m in tf.getmembers()})
    return _open_shards[path]


def read_item(key: str) -> np.ndarray:
    """Decode an item's image as ``HxWx3`` uint8 RGB."""
    if TAR_SEP in key:
        shard, member = key.split(TAR_SEP, 1)
        try:
            tf, index = _shard(shard)
            f = tf.extractfile(index[member])
            if f is None:
                raise ImageError(f"{key}: not a file in the shard")
            data = f.read()
        except (OSError, KeyError, tarfile.TarError) as e:
            raise ImageError(f"{key}: cannot read from the shard ({e})") from None
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return pil_to_rgb(im)
        except UnidentifiedImageError:
            raise ImageError(f"{key}: not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{key}: damaged or truncated image ({e})") from None
    return read_image(key)
