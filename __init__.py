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

if __name__ == "pal4vst" and "folder_paths" not in sys.modules:
    # Not ComfyUI: a clone named pal4vst imported from the folder that holds it (``python -m
    # pal4vst`` run there finds this folder before the installed library). Be the library inside.
    __path__ = [os.path.join(_here, "pal4vst")]
    with open(os.path.join(__path__[0], "__init__.py"), encoding="utf-8") as _f:
        exec(compile(_f.read(), _f.name, "exec"))
else:
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
        _log.error("PAL4VST nodes not loaded: %s: %s (install the requirements: python install.py)",
                   type(e).__name__, e)

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
