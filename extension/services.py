"""Shared state of the extension: model folders, device settings and a cache of loaded detectors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from pal4vst.model.checkpoint import load_checkpoint
from pal4vst.detect import Detector, Reader
from pal4vst.model.weights import RELEASES, add_model_dir, list_local_models, resolve


class UnknownModel(LookupError):
    """A model name that is neither a release nor a file in the model folders."""


@dataclass
class Services:
    """Loads models once and hands out detectors; safe to share between UI, script and API threads."""

    model_dirs: list[Path] = field(default_factory=list)
    device: str = "auto"
    dtype: str = "auto"
    download: bool = True
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stop_teaching: threading.Event = field(default_factory=threading.Event, repr=False)  # the tab's Stop

    def __post_init__(self) -> None:
        for d in self.model_dirs:
            add_model_dir(d)

    def model_choices(self) -> list[str]:
        """Release names first, then model files found in the folders (by file name)."""
        files = [p.name for p in list_local_models() if p.stem not in RELEASES]
        return list(RELEASES) + sorted(files)

    def _path(self, model: str) -> Path:
        if model not in RELEASES:
            for p in list_local_models():
                if p.name == model or p.stem == model:
                    return p
            if not Path(model).is_file():
                raise UnknownModel(f"unknown PAL4VST model {model!r}; available: {', '.join(self.model_choices())}")
        return resolve(model, download=self.download)

    def detector(self, model: str, threshold: float | None = None, mode: str | None = None) -> Reader:
        """The model's detector (loaded and placed once), reading with ``threshold`` and ``mode``
        (None: the declared defaults)."""
        path = self._path(model)
        key = (str(path), path.stat().st_mtime)
        with self._lock:
            detector = self._cache.get(key)
            if detector is None:
                detector = Detector(load_checkpoint(path), device=self.device, dtype=self.dtype)
                self._cache.clear()  # one model in memory at a time
                self._cache[key] = detector
        return detector.reading(threshold=threshold, mode=mode)

    def unload(self) -> None:
        with self._lock:
            self._cache.clear()
