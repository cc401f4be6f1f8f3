"""The extension's gradio UI builds under the installed gradio (3.41 for A1111 1.10, 4.40 for
Forge), with the webui's modules stubbed. Skipped where gradio is not installed (CI)."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest

from conftest import ROOT

gr = pytest.importorskip("gradio")


@pytest.fixture
def webui_stubs(tmp_path, monkeypatch):
    modules = types.ModuleType("modules")
    paths = types.SimpleNamespace(models_path=str(tmp_path / "models"))
    registered = {}

    def register(name):
        return lambda fn, **_: registered.setdefault(name, []).append(fn)

    callbacks = types.SimpleNamespace(on_ui_settings=register("settings"), on_app_started=register("app"),
                                      on_ui_tabs=register("tabs"))

    class Script:
        infotext_fields = None
        paste_field_names = None

    scripts = types.SimpleNamespace(Script=Script, AlwaysVisible=object())

    class OptionInfo:
        def __init__(self, default=None, label="", component=None, component_args=None, **_):
            self.default, self.label, self.section = default, label, None

    added = {}
    opts = types.SimpleNamespace(add_option=lambda k, info: added.__setitem__(k, info))
    shared = types.SimpleNamespace(opts=opts, OptionInfo=OptionInfo)
    for name, mod in {"paths": paths, "script_callbacks": callbacks, "scripts": scripts, "shared": shared}.items():
        setattr(modules, name, mod)
        monkeypatch.setitem(sys.modules, f"modules.{name}", mod)
    monkeypatch.setitem(sys.modules, "modules", modules)
    for m in [m for m in sys.modules if m.startswith("pal4vst_extension")]:
        monkeypatch.delitem(sys.modules, m)
    spec = importlib.util.spec_from_file_location("pal4vst_extension", ROOT / "extension" / "__init__.py",
                                                  submodule_search_locations=[str(ROOT / "extension")])
    pkg = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pal4vst_extension", pkg)
    spec.loader.exec_module(pkg)
    return registered, added


def test_accordion_and_tab_build(webui_stubs):
    registered, added = webui_stubs
    from pal4vst.options import declaration
    from pal4vst_extension.args import PALArgs
    from pal4vst_extension.webui_script import PAL4VSTScript

    script = PAL4VSTScript()
    with gr.Blocks():
        comps = script.ui(False)
    assert len(comps) == len(PALArgs.names())
    assert len(script.infotext_fields) == len(PALArgs.names())
    sliders = [(name, c) for name, c in zip(PALArgs.names(), comps) if isinstance(c, gr.Slider)]
    assert len(sliders) >= 10
    for name, slider in sliders:  # the UI allows exactly what the args model accepts
        d = declaration(PALArgs, name)
        assert (slider.minimum, slider.maximum, slider.value) == (d.spec.min, d.spec.max, d.default), name
    for fn in registered["settings"]:
        fn()
    assert {"pal4vst_default_model", "pal4vst_device", "pal4vst_dtype", "pal4vst_models_dir"} <= set(added)
    (tab, title, elem_id), = registered["tabs"][0]()
    assert title == "PAL4VST" and isinstance(tab, gr.Blocks)
