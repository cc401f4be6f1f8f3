"""Writing files so that a reader never sees half of one: every output, checkpoint and download."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class WriteError(OSError):
    """A file that could not be written; the message names the file asked for (never a temporary
    name) and the system's reason, and ``errno`` is the system's."""


def _refused(path: Path, error: OSError) -> WriteError:
    return WriteError(error.errno, f"cannot write {path}: {error.strerror or error}")


def atomic_write(path: str | Path, write: Callable[[Path], object], *, partial: Path | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    On any failure (Ctrl-C included) ``path`` is left as it was and the temporary file removed,
    except a fixed ``partial`` file, which is kept so that a broken download can resume. The
    temporary name is short (any name legal for ``path`` works); what the file system refuses is
    a :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if partial is None:
            fd, name = tempfile.mkstemp(prefix=".pal4vst-", suffix=path.suffix[:16], dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        else:
            tmp = partial
    except OSError as e:
        raise _refused(path, e) from None
    try:
        write(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as e:
        if partial is None:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError) and e.errno is not None:
            raise _refused(path, e) from None
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
