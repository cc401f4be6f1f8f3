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
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        if partial is None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def _mode_for(path: Path) -> int:
    """The permissions a plain ``open(path, "w")`` leaves: an existing file's own, else 0o666
    less the umask (``mkstemp`` would leave 0o600, unreadable to a web server or a shared folder)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux), else by
    setting and restoring it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
