"""AUTOMATIC1111 / Forge entry point (the webui loads scripts/*.py). A thin shim: the logic is in
``extension/`` and ``pal4vst/``. Nothing here breaks the webui: a missing package is named on one
line with the command that installs it, and any other failure to import is logged on one line."""

import importlib.util
import logging
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]
if str(_root) not in sys.path:
    sys.path.append(str(_root))  # appended: never shadows the webui's own modules
_log = logging.getLogger("pal4vst")

try:
    from pal4vst.deps import missing, report

    _absent = report()
    if missing(essential_only=True):
        raise ImportError(_absent + " (or restart the webui without --skip-install)")
    if _absent:
        _log.warning("%s (or restart the webui without --skip-install)", _absent)
    for _name in [m for m in sys.modules if m == "pal4vst_extension" or m.startswith("pal4vst_extension.")]:
        del sys.modules[_name]  # "Reload UI" re-runs this file: re-import so callbacks register again
    _spec = importlib.util.spec_from_file_location(
        "pal4vst_extension", _root / "extension" / "__init__.py", submodule_search_locations=[str(_root / "extension")]
    )
    _pkg = importlib.util.module_from_spec(_spec)
    sys.modules["pal4vst_extension"] = _pkg
    _spec.loader.exec_module(_pkg)
    from pal4vst_extension.webui_script import PAL4VSTScript  # noqa: F401  (found by the webui's script loader)
except Exception as _e:  # noqa: BLE001
    _why = str(_e) if str(_e).startswith("PAL4VST: missing") else f"{type(_e).__name__}: {_e} (run install.py)"
    _log.error("PAL4VST extension not loaded. %s", _why)
