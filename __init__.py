"""ComfyUI entry point of the PAL4VST node pack (this repository's root is the pack).

The classic node API is used on purpose: NODE_CLASS_MAPPINGS loads in every ComfyUI still in use.
Nothing here stops ComfyUI's start-up: a missing package is named on one line with the command
that installs it (the nodes still load, so workflows open, and refuse to run with the same line),
and any other failure to import is logged on one line.
"""

import logging
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)  # appended, never prepended: our folders must not shadow ComfyUI's modules

WEB_DIRECTORY = "./web"
NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
_log = logging.getLogger("pal4vst")

try:
    from pal4vst.deps import report

    _missing = report()
    if _missing:
        _log.warning("%s (or run install.py in %s with this Python)", _missing, _here)
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: F811
    from .nodes.host import register_model_folder

    register_model_folder()
except Exception as e:  # noqa: BLE001 - anything here must not stop ComfyUI
    _log.error("PAL4VST nodes not loaded: %s: %s (install the requirements: python install.py)", type(e).__name__, e)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
