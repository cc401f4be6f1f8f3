"""The model package's public error, below both the checkpoint reader and the layout mapper."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A file that is not a usable PAL4VST checkpoint; the message says why and what to do."""
