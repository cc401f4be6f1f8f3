"""Every setting is declared once (pal4vst/settings.py) and every adapter shows that declaration:
the CLI's flags, ComfyUI's node inputs, the webui's args model, controls and API requests."""

from __future__ import annotations

import argparse
import dataclasses
import sys

import pytest

from conftest import ROOT, load_extension
from pal4vst import settings
from pal4vst.options import Declared, OptionError, declared
from pal4vst.zoom.inpaint import DiffusersInpainter, OpenCVInpainter

DECLARED = [c for c in vars(settings).values() if dataclasses.is_dataclass(c) and c.__module__ == settings.__name__]
# composites (RepairOptions) hold settings classes; the settings themselves are declared in those
COMPOSITES = [c for c in DECLARED if not declared(c)]
CORE = [c for c in DECLARED if c not in COMPOSITES]
CLI_ONLY = [OpenCVInpainter, DiffusersInpainter]


def _declarations(name: str, classes=CORE) -> list[Declared]:
    return [declared(c)[name] for c in classes if name in declared(c)]


def test_the_core_declares_its_settings():
    assert len(CORE) >= 9
    for cls in CORE:
        decls = declared(cls)
        assert decls and set(decls) == {f.name for f in dataclasses.fields(cls)}, cls  # nothing undeclared
        for d in decls.values():
            assert d.spec.help, (cls, d.name)
            if d.kind in (int, float) and not d.spec.choices:
                assert d.spec.min is not None and d.spec.max is not None, (cls, d.name)
                assert d.spec.min <= d.default <= d.spec.max, (cls, d.name)
            if d.spec.choices:
                assert d.default in d.spec.choices, (cls, d.name)
        cls()  # the defaults are valid


def test_composites_are_made_of_declared_settings_and_built_in_one_go():
    from pal4vst.options import options_from

    assert COMPOSITES == [settings.RepairOptions]
    parts = {f.name: f.default_factory for f in dataclasses.fields(settings.RepairOptions)}
    assert set(parts.values()) == {settings.RegionOptions, settings.CropOptions, settings.PasteOptions,
                                   settings.RefineOptions}
    names = [n for cls in parts.values() for n in declared(cls)]
    assert len(names) == len(set(names))  # one flag, one input per setting: no name in two parts
    built = options_from(argparse.Namespace(grow=3, work_size=256, feather=1, candidates=2), settings.RepairOptions)
    assert (built.regions.grow, built.crops.work_size, built.paste.feather, built.passes.candidates) == (3, 256, 1, 2)
    with pytest.raises(OptionError, match="--candidates must be between 1 and 8, got 9"):
        options_from(argparse.Namespace(candidates=9), settings.RepairOptions)


def test_a_setting_outside_its_range_is_named():
    with pytest.raises(OptionError, match="grow must be between -256 and 256, got 999"):
        settings.RegionOptions(grow=999)
    with pytest.raises(OptionError, match="work_size must be a multiple of 8"):
        settings.CropOptions(work_size=500)
    with pytest.raises(OptionError, match="mode must be one of whole, tiled"):
        settings.DetectOptions(mode="sliding")
    settings.DetectOptions(device="cuda:1")  # device choices are suggestions


def test_pad_modes_are_the_declared_choices():
    from pal4vst.zoom.crops import PAD_MODES

    assert tuple(PAD_MODES) == declared(settings.CropOptions)["pad_mode"].spec.choices


# ----------------------------------------------------------------------------------------- CLI


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield action


def test_cli_flags_are_the_declarations():
    from pal4vst.cli.main import build_parser

    checked = 0
    for action in _actions(build_parser()):
        decls = _declarations(action.dest, CORE + CLI_ONLY)
        if not decls or action.dest in ("help",):
            continue
        mine = [d for d in decls if action.help and d.spec.help in action.help.replace("%%", "%")]  # a name two classes declare
        d = (mine or decls)[0]
        assert action.default == d.default, action.dest
        if d.spec.choices and not d.spec.open_choices:
            assert list(action.choices) == list(d.spec.choices), action.dest
        checked += 1
    assert checked > 40


# ------------------------------------------------------------------------------------- ComfyUI


def _comfy_inputs():
    sys.path.insert(0, str(ROOT))
    import nodes

    assert len(nodes.NODE_CLASS_MAPPINGS) >= 5
    for node_name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, value in spec.get(section, {}).items():
                kind = value[0]
                if isinstance(kind, list) or kind in ("INT", "FLOAT", "BOOLEAN", "STRING"):
                    yield node_name, name, kind, value[1] if len(value) > 1 else {}


def test_every_node_widget_is_a_core_declaration():
    """Each widget is a core declaration, or one of the two kinds an adapter may own: Impact's
    detector settings (Impact's meanings) and ComfyUI's own KSampler inputs."""
    sys.path.insert(0, str(ROOT))
    from nodes.host import ksampler_inputs
    from nodes.impact import ImpactSettings

    widgets = list(_comfy_inputs())
    assert len(widgets) >= 30
    for node, name, kind, opts in widgets:
        if node == "PALLoadModel" and name == "model":  # releases + files found at run time
            assert opts["default"] == declared(settings.ModelSource)["model"].default
            continue
        if node == "PALFineTune" and name == "example_set":  # the sets found on disk
            assert isinstance(kind, list) and kind
            continue
        if node == "PALLoadMask" and name == "image":  # the files of ComfyUI's input folder, as Load Image's
            assert isinstance(kind, list) and opts.get("image_upload")
            continue
        if node == "PALDetailer" and name in ("seed", "sampler_name", "scheduler"):
            assert (kind, opts) == (ksampler_inputs()[name][0], ksampler_inputs()[name][1] if len(
                ksampler_inputs()[name]) > 1 else {}), name
            continue
        decls = _declarations(name, CORE + [ImpactSettings])
        assert decls, f"{node}.{name} is typed in the node, not declared in pal4vst.settings"
        # the one declaration this widget comes from (its help is the tooltip): grow and min_area
        # are declared twice, with other defaults, and must not pass for each other
        decls = [d for d in decls if d.spec.help == opts.get("tooltip")]
        assert len(decls) == 1, (node, name, "its tooltip is no declaration's help")

        def shown(d: Declared) -> dict:
            out = {"default": d.default}
            out.update({k: getattr(d.spec, k) for k in ("min", "max", "step") if getattr(d.spec, k) is not None})
            return out

        node_view = {k: opts[k] for k in ("default", "min", "max", "step") if k in opts}
        assert node_view == shown(decls[0]), (node, name, node_view)  # and it shows all the declaration allows
        if isinstance(kind, list):
            assert tuple(kind) == decls[0].spec.choices, (node, name)


# ---------------------------------------------------------------------------------------- webui


@pytest.fixture(scope="module")
def ext():
    return load_extension()


def test_webui_args_reuse_the_core_declarations(ext):
    from pal4vst_extension.args import PALArgs

    own = set()
    for name, d in declared(PALArgs).items():
        core = _declarations(name)
        if not core:
            own.add(name)
            continue
        assert (d.default, d.spec) == (core[0].default, core[0].spec), name
    assert own == {"enabled", "sampler", "mask_blur", "skip_img2img"}  # what only the webui has
    assert PALArgs.names()[:4] == ["enabled", "model", "threshold", "grow"]  # the positional API order


def test_webui_controls_allow_what_the_args_accept(ext):
    from pal4vst_extension.args import PALArgs
    from pal4vst_extension.controls import control

    for name, d in declared(PALArgs).items():
        kind, kw = control(PALArgs, name)
        assert kw["value"] == d.default and kw["label"]
        if kind in ("Slider", "Number"):
            assert (kw["minimum"], kw["maximum"]) == (d.spec.min, d.spec.max), name
    assert control(PALArgs, "grow")[0] == "Slider" and control(PALArgs, "min_area")[0] == "Number"


def test_api_requests_take_the_declared_bounds(ext):
    from pal4vst_extension.api import DetectRequest, ScoreRequest

    threshold = declared(settings.DetectOptions)["threshold"]
    for model in (DetectRequest, ScoreRequest):
        field = model.model_fields["threshold"]
        bounds = {type(m).__name__: getattr(m, "ge", getattr(m, "le", None)) for m in field.metadata}
        assert field.default == threshold.default
        assert bounds == {"Ge": threshold.spec.min, "Le": threshold.spec.max}
        assert model.model_fields["model"].default == declared(settings.ModelSource)["model"].default
