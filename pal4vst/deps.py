"""The packages PAL4VST imports besides torch, and one clear line about what is missing.

Hosts call :func:`report` at start-up (ComfyUI, the webui) and :func:`check` before running, so a
missing package is named with the command that installs it, never met as a bare
``ModuleNotFoundError`` halfway through a workflow. ``install.py`` installs from the same table.
Nothing here imports the packages themselves: checking stays cheap and works when they are absent.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    module: str  # the import name
    package: str  # what pip installs when it is missing
    needed_for: str = ""  # empty: PAL4VST cannot run without it; else the one feature that needs it


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("numpy", "numpy"),
    Requirement("PIL", "pillow"),
    # Any OpenCV flavour will do (opencv-python, -contrib, -headless): the headless build is
    # installed only when none is importable, since two flavours overwrite each other's cv2.
    Requirement("cv2", "opencv-python-headless"),
    Requirement("safetensors", "safetensors"),
    Requirement("tqdm", "tqdm"),
    Requirement("huggingface_hub", "huggingface-hub", "hf:// model sources"),
    Requirement("gdown", "gdown", "downloading the released models from Google Drive"),
)


class MissingRequirement(ImportError):
    """A package PAL4VST needs is not installed; the message says which and how to install it."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked package counts as missing
        return False


def missing(essential_only: bool = False) -> list[Requirement]:
    """Requirements that cannot be imported (only those everything needs, with ``essential_only``)."""
    return [r for r in REQUIREMENTS if not (essential_only and r.needed_for) and not _importable(r.module)]


def pip_command(reqs: list[Requirement], python: str = sys.executable) -> str:
    """The command that installs ``reqs`` into the running Python (a host's own venv or embed)."""
    return f"{shlex.quote(python)} -m pip install {' '.join(r.package for r in reqs)}"


def report(reqs: list[Requirement] | None = None) -> str | None:
    """One line naming what is missing and the command that fixes it, or None when nothing is."""
    reqs = missing() if reqs is None else reqs
    if not reqs:
        return None
    names = ", ".join(f"{r.package} (import {r.module}{'; for ' + r.needed_for if r.needed_for else ''})"
                      for r in reqs)
    return f"PAL4VST: missing Python package(s): {names}. Fix: {pip_command(reqs)}"


_checked = False


def check() -> None:
    """Raise :class:`MissingRequirement` when a package everything needs is missing (once all
    are found, later calls cost nothing)."""
    global _checked
    if _checked:
        return
    absent = missing(essential_only=True)
    if absent:
        raise MissingRequirement(report(absent))
    _checked = True
