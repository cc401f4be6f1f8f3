"""ComfyUI inputs generated from the core's declarations (:mod:`pal4vst.settings`): a node's
defaults, ranges, steps and tooltips are the core's, never typed again here. Nodes read their
settings by name (:func:`options`) and declare their outputs once, as a table (:func:`outputs`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from types import SimpleNamespace

from pal4vst.options import declaration, options_from


def widget(cls: type, name: str) -> tuple[Any, dict[str, Any]]:
    """The ComfyUI input for setting ``name`` of ``cls``: a combo, BOOLEAN, STRING, INT or FLOAT."""
    d = declaration(cls, name)
    opts: dict[str, Any] = {"default": d.default, "tooltip": d.spec.help}
    if d.spec.choices:
        return list(d.spec.choices), opts
    if d.kind is bool:
        return "BOOLEAN", opts
    if d.kind is str:
        return "STRING", {**opts, "multiline": False}
    for key in ("min", "max", "step"):
        value = getattr(d.spec, key)
        if value is not None:
            opts[key] = d.kind(value)
    return ("INT" if d.kind is int else "FLOAT"), opts


def widgets(cls: type, *names: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    """:func:`widget` for several settings of ``cls``, in the order given."""
    return {name: widget(cls, name) for name in names}


def options(cls: type, settings: dict[str, Any], **extra: Any) -> Any:
    """The core option object ``cls`` (a composite like ``RepairOptions`` too) from a node's inputs
    by name (those it does not declare are left at their defaults), plus ``extra`` fields."""
    return options_from(SimpleNamespace(**settings), cls, **extra)


class Output(NamedTuple):
    """One node output: name, ComfyUI type, tooltip, and whether it is a list (one per image)."""

    name: str
    type: str
    tooltip: str
    is_list: bool = False


def outputs(*rows: Output) -> tuple[tuple, tuple, tuple, tuple]:
    """``RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS`` from one table, so they
    cannot fall out of step: ``RETURN_TYPES, RETURN_NAMES, OUTPUT_IS_LIST, OUTPUT_TOOLTIPS = outputs(...)``."""
    return (tuple(r.type for r in rows), tuple(r.name for r in rows), tuple(r.is_list for r in rows),
            tuple(r.tooltip for r in rows))
