"""Writing files so that a reader never sees half of one: every output, checkpoint and download."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object], *, partial: Path | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    On any failure (Ctrl-C included) ``path`` is left as it was and the temporary file removed,
    except a fixed ``partial`` file, which is kept so that a broken download can resume.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if partial is None:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    else:
        tmp = partial
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if partial is None:
            tmp.unlink(missing_ok=True)
        raise
    return path
