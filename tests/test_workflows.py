"""Every shipped workflow (UI and API format) against the PAL nodes' current inputs: each saved
widget value lands on the widget it was saved for and fits its type, range and choices; API
prompts name only inputs the nodes have and give every required one. Workflows saved before a
node gained inputs (the old 07) must still fit: their values are a prefix, the rest defaults."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT))
import nodes  # noqa: E402  (the pack's nodes/ package)

WORKFLOWS = ROOT / "example_workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json")) + sorted((FIXTURES / "workflows").glob("*[!i].json"))
API_FILES = sorted((WORKFLOWS / "api").glob("*.json")) + sorted((FIXTURES / "workflows").glob("*.api.json"))
HOST_LISTS = {"sampler_name", "scheduler"}  # ComfyUI fills these lists; outside it they are stand-ins
HOST_LISTS |= {"example_set"}  # the example sets on the user's disk (PAL Fine-Tune)
WIDGETS = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def widget_inputs(cls) -> list[tuple[str, tuple]]:
    """``(name, spec)`` of a node's widget inputs in the front-end's order (required, optional)."""
    spec = cls.INPUT_TYPES()
    out = []
    for group in ("required", "optional"):
        for name, s in spec.get(group, {}).items():
            if isinstance(s[0], list) or s[0] in WIDGETS:
                out.append((name, s))
    return out


def problem(name: str, spec: tuple, value) -> str | None:
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        if name not in HOST_LISTS and value not in kind:
            return f"{name}={value!r} is not one of {kind[:6]}"
        return None
    python = {"INT": int, "FLOAT": (int, float), "STRING": str, "BOOLEAN": bool}[kind]
    if not isinstance(value, python) or (kind != "BOOLEAN" and isinstance(value, bool)):
        return f"{name}={value!r} is not {kind}"
    if kind in ("INT", "FLOAT") and not opts.get("min", value) <= value <= opts.get("max", value):
        return f"{name}={value!r} is outside {opts.get('min')}..{opts.get('max')}"
    return None


def test_there_are_workflows_with_pal_nodes():
    assert len(UI_FILES) >= 11 and len(API_FILES) >= 11
    for f in UI_FILES:
        assert any(n["type"] in nodes.NODE_CLASS_MAPPINGS for n in json.loads(f.read_text())["nodes"]), f.name


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_saved_widget_values_fit_the_nodes(path: Path):
    checked = 0
    for node in json.loads(path.read_text())["nodes"]:
        cls = nodes.NODE_CLASS_MAPPINGS.get(node["type"])
        if cls is None:
            continue
        values = list(node.get("widgets_values", []))
        linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
        expected = [(n, s) for n, s in widget_inputs(cls) if n not in linked]
        slots = []
        for name, spec in expected:
            slots.append((name, spec))
            if name in ("seed", "noise_seed"):
                slots.append(("control_after_generate", (["fixed", "increment", "decrement", "randomize"],)))
        assert len(values) <= len(slots), f"{path.name}: {node['type']} has more values than widgets"
        # a workflow saved before a node gained widgets holds a prefix; only optional widgets may be missing
        required = set(cls.INPUT_TYPES()["required"])
        missing = [n for n, _ in slots[len(values):]]
        assert not set(missing) & required, f"{path.name}: {node['type']} lacks required widgets {missing}"
        for (name, spec), value in zip(slots, values):
            why = problem(name, spec, value)
            assert why is None, f"{path.name}: {node['type']} {why}"
            checked += 1
    assert checked, f"{path.name}: no PAL widget value checked"


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: p.stem)
def test_api_prompts_fit_the_nodes(path: Path):
    checked = 0
    for key, node in json.loads(path.read_text()).items():
        cls = nodes.NODE_CLASS_MAPPINGS.get(node["class_type"])
        if cls is None:
            continue
        spec = cls.INPUT_TYPES()
        known = {**spec["required"], **spec.get("optional", {})}
        unknown = set(node["inputs"]) - set(known)
        assert not unknown, f"{path.name} node {key}: unknown inputs {unknown}"
        lacking = set(spec["required"]) - set(node["inputs"])
        assert not lacking, f"{path.name} node {key}: required inputs missing {lacking}"
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                continue  # a link
            why = problem(name, known[name], value)
            assert why is None, f"{path.name} node {key}: {why}"
            checked += 1
    assert checked, f"{path.name}: no PAL input checked"


def test_every_checkpoint_loader_says_where_its_model_comes_from():
    """The front-end names a missing model's download URL and folder from the loader node's
    ``properties.models``: each must name the file the widget holds, the README's source for it,
    and ComfyUI's checkpoints folder."""
    readme = (ROOT / "README.md").read_text()
    sources = dict(re.findall(r"^\| [0-9, ]+ \| `([^`]+)` \| (huggingface\.co/\S+) \|$", readme, re.M))
    assert len(sources) >= 3
    loaders = []
    for path in sorted(WORKFLOWS.glob("*.json")):
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] == "CheckpointLoaderSimple":
                loaders.append((path.name, node))
    assert len(loaders) >= 8
    for name, node in loaders:
        ckpt = node["widgets_values"][0]
        models = node["properties"].get("models")
        assert models == [{"name": ckpt, "url": models[0]["url"], "directory": "checkpoints"}], (name, models)
        assert models[0]["url"] == f"https://{sources[ckpt]}/resolve/main/{ckpt}", (name, models[0]["url"])
