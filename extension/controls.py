"""Which gradio control each setting gets, and with what range: read from the declarations
(:mod:`pal4vst.settings`, through :class:`~extension.args.PALArgs`), so the webui's sliders
allow exactly what the API and the args model accept. Free of gradio, to be testable."""

from __future__ import annotations

from typing import Any

from pal4vst.options import declaration

MAX_SLIDER_STEPS = 10_000  # wider ranges get a number box (a slider that fine cannot be dragged)


def control(cls: type, name: str) -> tuple[str, dict[str, Any]]:
    """``(gradio class name, keyword arguments)`` for setting ``name`` of ``cls``."""
    d = declaration(cls, name)
    kw: dict[str, Any] = {"label": d.label, "value": d.default}
    s = d.spec
    if d.kind is bool:
        return "Checkbox", kw
    if s.choices:
        return "Dropdown", {**kw, "choices": list(s.choices)}
    if d.kind is str:
        return "Textbox", {**kw, "lines": 2 if "prompt" in name else 1}
    step = s.step or (1 if d.kind is int else 0.01)
    if s.min is not None and s.max is not None and (s.max - s.min) / step <= MAX_SLIDER_STEPS:
        return "Slider", {**kw, "minimum": s.min, "maximum": s.max, "step": step}
    return "Number", {**kw, "minimum": s.min, "maximum": s.max, "precision": 0 if d.kind is int else None}


def build(gr, name: str, cls: type | None = None, **ui):
    """The gradio control of setting ``name`` of ``cls`` (default: the auto-fix's, PALArgs);
    ``gr``: the gradio module."""
    from .args import PALArgs

    kind, kw = control(cls or PALArgs, name)
    return getattr(gr, kind)(**kw, **ui)
