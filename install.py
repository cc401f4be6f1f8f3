"""Install what PAL4VST needs and is missing; never touches torch.

Run by ComfyUI-Manager (``python install.py`` with ComfyUI's Python) and by the AUTOMATIC1111 /
Forge webui when it installs the extension (then ``launch`` is importable, and nothing is done
under ``--skip-install``). Safe to run again: it installs only what cannot be imported.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

# import name -> package to install when it is missing
REQUIREMENTS = {
    "numpy": "numpy",
    "scipy": "scipy",
    "PIL": "pillow",
    "cv2": "opencv-python-headless",  # only when no OpenCV flavour at all is importable
    "safetensors": "safetensors",
    "tqdm": "tqdm",
    "huggingface_hub": "huggingface-hub",
    "gdown": "gdown",
}


def missing() -> list[str]:
    return [pkg for module, pkg in REQUIREMENTS.items() if importlib.util.find_spec(module) is None]


def main() -> int:
    try:
        import launch  # the webui's installer environment
    except ImportError:
        launch = None
    if launch is not None and getattr(getattr(launch, "args", None), "skip_install", False):
        return 0
    todo = missing()
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
