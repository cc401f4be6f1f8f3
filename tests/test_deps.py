"""Missing packages are named with the command that installs them: at ComfyUI and webui start-up,
and by every node before it runs; install.py, requirements.txt and pyproject.toml agree."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys

import pytest
import torch

from conftest import ROOT

from pal4vst import deps


@pytest.fixture
def no_opencv(monkeypatch):
    """This Python without OpenCV: ``import cv2`` fails and find_spec finds nothing."""
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setattr(deps, "_checked", False)


def test_report_names_the_package_and_the_command(no_opencv):
    absent = deps.missing(essential_only=True)
    assert [r.module for r in absent] == ["cv2"]
    line = deps.report(absent)
    assert "\n" not in line and "opencv-python-headless (import cv2)" in line
    assert line.endswith(f"{sys.executable} -m pip install opencv-python-headless")


def test_optional_packages_say_what_they_are_for(monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)
    monkeypatch.setattr(deps, "_checked", False)  # check() really looks
    assert deps.missing(essential_only=True) == []
    assert "gdown (import gdown; for downloading the released models" in deps.report()
    deps.check()  # an optional package never stops a run
    assert deps._checked


def test_check_refuses_when_an_essential_package_is_missing(no_opencv):
    with pytest.raises(deps.MissingRequirement, match=r"opencv-python-headless \(import cv2\).*pip install"):
        deps.check()
    assert not deps._checked  # and asks again next time


def test_every_node_refuses_to_run_with_the_fix(no_opencv):
    sys.path.insert(0, str(ROOT))
    import nodes

    assert len(nodes.NODE_CLASS_MAPPINGS) >= 5
    image = torch.zeros(1, 32, 32, 3)
    calls = {
        "PALLoadModel": dict(model="unified", device="cpu", dtype="fp32"),
        "PALDetect": dict(pal_model=None, image=image, threshold=0.5, grow=0, min_area=0, mode="whole"),
        "PALScore": dict(pal_model=None, images=image, threshold=0.5),
        "PALZoomCrop": dict(image=image, mask=torch.zeros(1, 32, 32), context=1.5, work_size=64, min_size=32,
                            max_regions=0, grow=0, min_area=0, feather=0),
        "PALComposite": dict(image=image, inpainted=image, pal_crops=None),
        "PALDetailer": dict(image=image, pal_model=None, model=None, vae=None, positive=None, negative=None, seed=0,
                            steps=1, cfg=1.0, sampler_name="euler", scheduler="normal", denoise=0.5, threshold=0.5,
                            context=1.5, work_size=64, grow=0, min_area=0, max_regions=0, feather=0, iterations=1,
                            target_par=0.0),
        "PALDetectSEGS": dict(pal_model=None, image=image, threshold=0.5, dilation=0, crop_factor=1.5, drop_size=1,
                              mode="whole"),
        "PALDetectorProvider": dict(pal_model=None, mode="whole"),
        "PALEditMask": dict(image=image, mask=torch.zeros(1, 32, 32), edit_prefix="pal4vst_edit"),
        "PALLoadMask": dict(image="mask.png"),
        "PALSaveExample": dict(image=image, mask=torch.zeros(1, 32, 32), set_name="s", name="example"),
        "PALFineTune": dict(pal_model=None, example_set="s", model_name="m", recipe="default", steps=0, lr=0.0,
                            held_out=0.3, seed=0),
    }
    assert set(calls) == set(nodes.NODE_CLASS_MAPPINGS)
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        node = cls()
        with pytest.raises(deps.MissingRequirement, match=r"opencv-python-headless.*-m pip install"):
            getattr(node, cls.FUNCTION)(**calls[name])


def _load_as(name: str, path, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[str(path.parent)]
                                                  if path.name == "__init__.py" else None)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_comfyui_start_up_says_what_is_missing_on_one_line(no_opencv, monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="pal4vst"):
        pack = _load_as("pal4vst_pack_nocv", ROOT / "__init__.py", monkeypatch)
    lines = [r.getMessage() for r in caplog.records if r.name == "pal4vst"]
    assert len(lines) == 1 and "opencv-python-headless" in lines[0] and "install.py" in lines[0]
    assert "PALDetect" in pack.NODE_CLASS_MAPPINGS  # the nodes load, so workflows still open


def test_webui_start_up_says_what_is_missing_on_one_line(no_opencv, monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="pal4vst"):
        _load_as("pal4vst_webui_shim_nocv", ROOT / "scripts" / "pal4vst.py", monkeypatch)
    lines = [r.getMessage() for r in caplog.records if r.name == "pal4vst"]
    assert len(lines) == 1
    assert "not loaded" in lines[0] and "-m pip install opencv-python-headless" in lines[0]
    assert "Traceback" not in caplog.text


def _names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", s.strip(), maxsplit=1)[0].lower() for s in specs if s.strip()}


def test_install_py_requirements_txt_and_pyproject_agree():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    table = {r.package for r in deps.REQUIREMENTS}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _names(project) - {"torch"} == table
    lines = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if not x.startswith("#")]
    # OpenCV is left to install.py on purpose: only when no flavour at all is importable
    assert _names(lines) == table - {"opencv-python-headless"}
    assert "torch" not in _names(lines)
