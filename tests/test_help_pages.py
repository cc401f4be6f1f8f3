"""The nodes' help pages (web/docs/<NodeClass>.md, shown by ComfyUI's front-end) and search aliases:
a page per node, each input and output in it with today's help, default and range (from the
declarations), and the prose every page owes a user."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))
import nodes  # noqa: E402  (the pack's nodes/ package)
from nodes.help_pages import MARKER, pages, reference, render  # noqa: E402

PAGES = pages()


def test_every_node_has_a_page():
    assert set(PAGES) == set(nodes.NODE_CLASS_MAPPINGS) and len(PAGES) >= 8
    for name, (path, _) in PAGES.items():
        assert path.is_file(), f"{path} is missing: run python -m nodes.help_pages"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_is_up_to_date_and_covers_every_input(name):
    path, cls = PAGES[name]
    text = path.read_text(encoding="utf8")
    assert render(name, cls, text) == text, f"{path.name} is out of date: run python -m nodes.help_pages"
    table = text.split(MARKER)[1]
    spec = cls.INPUT_TYPES()
    inputs = [n for group in ("required", "optional") for n in spec.get(group, {})]
    assert inputs
    for n in inputs:
        row = re.search(rf"^\| `{re.escape(n)}`.*$", table, re.M)
        assert row, f"{path.name}: no entry for input {n}"
        tip = (spec.get("required", {}).get(n) or spec["optional"][n])
        tip = tip[1].get("tooltip") if len(tip) > 1 and isinstance(tip[1], dict) else None
        if tip:
            assert tip.replace("|", "\\|") in row.group(0)  # the declaration's help, word for word
    for out in getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES):
        assert re.search(rf"^\| `{re.escape(out)}` \|", table, re.M), f"{path.name}: no entry for output {out}"
    prose = text.split(MARKER)[0]
    assert prose.startswith(f"# {nodes.NODE_DISPLAY_NAME_MAPPINGS[name]}\n")
    assert "**Wiring.**" in prose, path.name
    takes_images = any(s[0] == "IMAGE" for group in spec.values() for s in group.values())
    if takes_images:
        assert "**Without artifacts**" in prose, path.name  # what a clean image gives


def test_an_input_without_help_fails_the_page():
    class Bare:
        RETURN_TYPES = ("IMAGE",)
        OUTPUT_TOOLTIPS = ("x",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"mystery": ("INT", {"default": 1})}}

    with pytest.raises(KeyError, match="mystery"):
        reference("Bare", Bare)


def test_search_aliases_find_the_pack():
    aliases = {name: getattr(cls, "SEARCH_ALIASES", None) for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}
    assert len(aliases) >= 8
    assert all(isinstance(a, list) and a and all(isinstance(x, str) for x in a) for a in aliases.values()), aliases
    words = " ".join(x.lower() for a in aliases.values() for x in a)
    for typed in ("artifact", "fix hands", "detailer", "quality"):
        assert typed in words, typed
