"""The extension's gradio UI builds under the installed gradio (3.41 for A1111 1.10, 4.40 for
Forge), with the webui's modules stubbed. Skipped where gradio is not installed (the main test
environment); CI runs it on its own with Forge's gradio (tests/requirements-webui-ui.txt)."""

from __future__ import annotations

import os
import sys
import types

import pytest

from conftest import load_extension

if os.environ.get("PAL4VST_REQUIRE_GRADIO"):  # CI's run of this file: a missing gradio is a failure
    import gradio as gr
else:
    gr = pytest.importorskip("gradio")


class StubInputAccordion:
    """What the webui's InputAccordion is to a script: a checkbox (the value) whose accordion
    holds what is built inside it."""

    made: list = []

    def __init__(self, value, label=None, elem_id=None):
        self.checkbox = gr.Checkbox(value=value, label=label, visible=False, elem_id=f"{elem_id}-checkbox")
        self.accordion = gr.Accordion(label=label, open=value, elem_id=elem_id)
        StubInputAccordion.made.append(self)

    def __enter__(self):
        self.accordion.__enter__()
        return self.checkbox

    def __exit__(self, *exc):
        return self.accordion.__exit__(*exc)


@pytest.fixture(params=["InputAccordion", "plain accordion"])
def webui_stubs(request, tmp_path, monkeypatch):
    modules = types.ModuleType("modules")
    paths = types.SimpleNamespace(models_path=str(tmp_path / "models"))
    registered = {}

    def register(name):
        return lambda fn, **_: registered.setdefault(name, []).append(fn)

    callbacks = types.SimpleNamespace(on_ui_settings=register("settings"), on_app_started=register("app"),
                                      on_ui_tabs=register("tabs"), on_before_ui=register("before_ui"))

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
    stubs = {"paths": paths, "script_callbacks": callbacks, "scripts": scripts, "shared": shared}
    StubInputAccordion.made = []
    if request.param == "InputAccordion":  # A1111 1.7+ and Forge
        stubs["ui_components"] = types.SimpleNamespace(InputAccordion=StubInputAccordion)
    else:  # older webuis have no InputAccordion
        monkeypatch.setitem(sys.modules, "modules.ui_components", None)
    for name, mod in stubs.items():
        setattr(modules, name, mod)
        monkeypatch.setitem(sys.modules, f"modules.{name}", mod)
    monkeypatch.setitem(sys.modules, "modules", modules)
    for m in [m for m in sys.modules if m.startswith("pal4vst_extension")]:
        monkeypatch.delitem(sys.modules, m)
    load_extension()  # anew, over the stubs
    return registered, added, request.param


def _blocks(block):
    """Every block inside a gradio block, depth first."""
    for child in getattr(block, "children", []):
        yield child
        yield from _blocks(child)


def _labelled(block) -> dict:
    """Components with a label inside a gradio block, by label."""
    out = {}
    for child in getattr(block, "children", []):
        if getattr(child, "label", None) and not getattr(child, "children", None):
            out[child.label] = child
        out.update(_labelled(child))
    return out


def test_accordion_and_tab_build(webui_stubs):
    registered, added, layout = webui_stubs
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
    enabled, model = comps[0], comps[1]
    if layout == "InputAccordion":  # the enable checkbox is the accordion's own, in its header
        assert len(StubInputAccordion.made) == 1 and enabled is StubInputAccordion.made[0].checkbox
    else:
        assert not StubInputAccordion.made and enabled.visible is not False and enabled.label == "Enable"
    assert model.do_not_save_to_config  # follows Settings -> Default model on every start
    for fn in registered["settings"]:
        fn()
    assert {"pal4vst_default_model", "pal4vst_device", "pal4vst_dtype", "pal4vst_models_dir"} <= set(added)
    assert registered["before_ui"]  # the ui-config refresh runs before the webui reads the file
    (tab, title, elem_id), = registered["tabs"][0]()
    assert title == "PAL4VST" and isinstance(tab, gr.Blocks)
    from pal4vst_extension.controls import control
    from pal4vst_extension.ui_config import TAB_CONTROLS

    labelled = _labelled(tab)
    assert labelled["Model"].do_not_save_to_config
    pages = [[c.label for c in block.children] for block in _blocks(tab) if type(block).__name__ == "Tabs"]
    assert pages == [["Detect and fix", "Score a folder", "Teach"]]  # one row of tabs, Teach among them
    built = {name for name in PALArgs.names() if control(PALArgs, name)[1]["label"] in labelled}
    assert built == set(TAB_CONTROLS)  # what ui_config checks is what the tab builds
