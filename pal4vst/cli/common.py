"""What every command shares: exit codes, the model flags, input listing, and the per-image loop
that writes outputs and ``results.jsonl`` and reports failures one line each."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from ..files import WriteError

EXIT_INPUT_FAILED = 1
EXIT_SETUP_FAILED = 2
EXIT_INTERRUPTED = 130


class Failures:
    """Collects per-input failures: one line each, a traceback only with ``--debug``."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.items: list[tuple[Path, str]] = []

    def add(self, path: Path, error: BaseException) -> None:
        self.items.append((path, str(error)))
        print(f"error: {path}: {error}" if str(path) not in str(error) else f"error: {error}", file=sys.stderr)
        if self.debug:
            traceback.print_exception(error)


def add_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="print tracebacks")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model and detection flags, from their declarations."""
    from ..options import add_arguments
    from ..settings import DetectOptions, ModelSource

    g = p.add_argument_group("model and detection")
    add_arguments(g, ModelSource)
    add_arguments(g, DetectOptions)
    add_debug(p)


def make_detector(args: argparse.Namespace):
    from ..detect import Detector
    from ..model.checkpoint import load_checkpoint
    from ..model.weights import resolve
    from ..options import options_from
    from ..settings import DetectOptions

    options = options_from(args, DetectOptions)  # a bad value fails here, before any download
    return Detector(load_checkpoint(resolve(args.model, download=args.download)), options)


NAME_MAX = 255  # bytes in a file name on Linux, macOS and Windows file systems


def _fit(stem: str, room: int) -> str:
    """``stem`` cut to at most ``room`` bytes of UTF-8, on a character boundary."""
    data = stem.encode()
    return stem if len(data) <= room else data[:room].decode(errors="ignore")


def output_stems(paths: list[Path], tail: int = 0) -> list[str]:
    """Unique output names: the stem, or ``parent_stem`` when two inputs share a stem, cut so that
    ``stem`` plus ``tail`` more bytes (the longest ``_<output>``) is a legal file name. Which input
    made which outputs is in ``results.jsonl``."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    room = NAME_MAX - tail - 4  # a "_NNN" a collision may add
    stems, used = [], set()
    for p in paths:
        stem = _fit(p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}", room)
        base, n = stem, 1
        while stem in used:
            n += 1
            stem = f"{base}_{n}"
        used.add(stem)
        stems.append(stem)
    return stems


class SetupError(Exception):
    """A run that cannot start (a missing package, a refused output); nothing was written. The
    message says what to do."""


RESULTS = "results.jsonl"


def read_results(out: Path) -> list[dict]:
    """The records of ``out``'s ``results.jsonl`` (none when it is absent; a line that is no
    record, such as one cut short by a kill, is passed over)."""
    records = []
    try:
        with (out / RESULTS).open() as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        pass
    return records


def earlier_outputs(out: Path) -> list[Path]:
    """What an earlier run wrote into ``out``: the folder itself (left out where it lies inside an
    input folder) and every output its ``results.jsonl`` names (where ``out`` is the input folder)."""
    return [out, *(Path(p) for r in read_results(out) for p in r.get("outputs", []))]


def input_images(inputs: list[str], exclude: list[Path] | tuple = ()) -> tuple[list[Path], list[Path]]:
    """Image files of the inputs (folders searched recursively, leaving out ``exclude``) and the
    inputs that do not exist; non-image files skipped are said."""
    from ..images import list_images

    missing = [Path(i) for i in inputs if not Path(i).exists()]
    images, skipped = list_images([i for i in inputs if Path(i).exists()], exclude=exclude)
    for s in skipped:
        print(f"warning: skipping {s}: not an image file", file=sys.stderr)
    return images, missing


def progress(items: list, desc: str) -> Iterator:
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, unit="img", disable=None if len(items) > 1 else True))


def guard_inputs(out_paths: list[Path], inputs: list[Path]) -> None:
    resolved = {p.resolve() for p in inputs}
    for o in out_paths:
        if o.resolve() in resolved:
            raise SetupError(f"output {o} would overwrite an input; choose another --out folder")


# What the file system says about the output place as a whole: no image can be written there.
PLACE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR})


def check_writable(folder: Path, flag: str = "--out", given: Path | None = None) -> None:
    """Refuse an output folder that cannot be written (a file, a read-only or missing place), on
    one line naming what the user gave (``given``, default the folder), before any work; nothing
    is created."""
    folder = Path(folder)
    shown = given if given is not None else folder
    if folder.exists() and not folder.is_dir():
        raise SetupError(f"{flag} {shown}: {folder} is a file, not a folder")
    here = folder.absolute()
    existing = next(p for p in (here, *here.parents) if p.exists())
    if not existing.is_dir():
        raise SetupError(f"{flag} {shown}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise SetupError(f"{flag} {shown} cannot be written ({existing}: {e.strerror or e})") from None


Work = Callable[[Path, str], dict]


def each_image(args: argparse.Namespace, command: str, outputs: tuple[str, ...], prepare: Callable[[], Work]) -> int:
    """Run ``work(path, stem)`` on every input image, writing into ``args.out``.

    The inputs are listed first: a missing input is reported on one line, and when no image is
    left nothing is loaded or written. Then ``prepare()`` loads what the work needs (a setup
    failure ends the run here, before any output) and returns ``work``, which writes the image's
    outputs (``<stem>_<output>`` for each of ``outputs``) and returns its record; the record goes
    to ``results.jsonl`` once all outputs are written. The output folder and ``results.jsonl``
    appear with the first image done. A failing image is reported on one line and the rest are
    done; the exit status is then 1. Nothing is ever written over an input.
    """
    images, missing = input_images(args.inputs, exclude=earlier_outputs(args.out))
    failures = Failures(args.debug)
    for path in missing:
        failures.add(path, FileNotFoundError(f"{path}: no such file or folder"))
    if not images:
        if not missing:
            print("error: no images found in the inputs", file=sys.stderr)
        return EXIT_INPUT_FAILED
    out: Path = args.out
    check_writable(out)
    stems = output_stems(images, max(len(f"_{k}".encode()) for k in outputs))
    guard_inputs([out / f"{s}_{k}" for s in stems for k in outputs], images)
    work = prepare()
    jsonl = None
    try:
        for path, stem in zip(progress(images, command), stems):
            t0 = time.perf_counter()
            try:
                record = work(path, stem)
            except WriteError as e:
                if e.errno in PLACE_ERRNOS:  # the place, not this image: every other would fail the same way
                    raise SetupError(str(e)) from None
                failures.add(path, e)
                continue
            except (ValueError, OSError, RuntimeError) as e:
                failures.add(path, e)
                continue
            record = {"input": str(path), **record, "model": str(args.model),
                      "outputs": [str(out / f"{stem}_{k}") for k in outputs],
                      "seconds": round(time.perf_counter() - t0, 3)}
            if jsonl is None:
                jsonl = (out / RESULTS).open("w")
            jsonl.write(json.dumps(record) + "\n")
            jsonl.flush()
    finally:
        if jsonl is not None:
            jsonl.close()
    print(f"{len(images) - len(failures.items) + len(missing)} of {len(images)} images written to {out}",
          file=sys.stderr)
    return EXIT_INPUT_FAILED if failures.items else 0
