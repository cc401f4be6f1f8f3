"""Install what PAL4VST needs and is missing; never touches torch.

Run by ComfyUI-Manager (``python install.py`` with ComfyUI's Python, after requirements.txt) and by
the AUTOMATIC1111 / Forge webui when it installs the extension (then ``launch`` is importable, and
nothing is done under ``--skip-install``). Safe to run again: it installs only what cannot be
imported, from the table in ``pal4vst/deps.py``; OpenCV's headless build only when no OpenCV
flavour at all is present.
"""

from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pal4vst.deps import missing  # noqa: E402  (imports nothing beyond the standard library)


def main() -> int:
    try:
        import launch  # the webui's installer environment
    except ImportError:
        launch = None
    if launch is not None and getattr(getattr(launch, "args", None), "skip_install", False):
        return 0
    todo = [r.package for r in missing()]
    if not todo:
        print("PAL4VST: all requirements present")
        return 0
    if launch is not None:
        for pkg in todo:
            launch.run_pip(f"install {pkg}", f"PAL4VST requirement: {pkg}")
        return 0
    print(f"PAL4VST: installing {' '.join(todo)}")
    return subprocess.call([sys.executable, "-m", "pip", "install", *todo])


if __name__ == "__main__":
    sys.exit(main())
