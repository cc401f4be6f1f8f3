"""Every setting is declared once, on the core dataclass that uses it: default, range, step,
choices and help text live on the field (as ADetailer keeps them on its pydantic fields).

    @settings
    class RegionOptions:
        grow: int = option(8, "grow (negative: shrink) the mask by this many pixels", min=-256, max=256)

Adapters generate their controls from these declarations, so defaults and ranges cannot drift:
the CLI's flags (:func:`add_arguments`), ComfyUI's inputs (``nodes/inputs.py``), the webui's
controls and API checks (``extension/``). :func:`check` validates an instance against them, and
:func:`options_from` turns flags or an adapter's settings into the core option objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

_KEY = "pal4vst"


class OptionError(ValueError):
    """A setting outside its declared range or choices; the message names it and what is allowed."""


@dataclass(frozen=True)
class Spec:
    """What a setting allows and means, beside its default."""

    help: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    open_choices: bool = False  # choices are suggestions (e.g. "cuda:1" is a device too)
    multiple_of: int = 0
    label: str = ""  # short title for UIs; the name, spaced, when empty
    flags: tuple[str, ...] = ()  # further CLI spellings kept working (old names)


def settings(cls: type) -> type:
    """A frozen dataclass whose instances are checked against their declarations when built
    (:func:`check`): a value out of range raises :class:`OptionError` naming it."""
    cls.__post_init__ = check
    return dataclass(frozen=True)(cls)


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field carrying its :class:`Spec` (use as ``name: type = option(...)``)."""
    return dataclasses.field(default=default, metadata={_KEY: Spec(help, **spec)})


@dataclass(frozen=True)
class Declared:
    """One declared setting: its name, default, Python type (``int``, ``float``, ``bool``, ``str``)
    and :class:`Spec`."""

    name: str
    default: Any
    kind: type
    spec: Spec

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ").capitalize()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """The help text with the allowed values, for tooltips and ``--help``."""
        if self.spec.choices and not self.spec.open_choices:
            return f"{self.spec.help} ({', '.join(self.spec.choices)})"
        if self.spec.min is not None and self.spec.max is not None:
            return f"{self.spec.help} ({_fmt(self.spec.min)} to {_fmt(self.spec.max)})"
        return self.spec.help


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def declared(cls: type) -> dict[str, Declared]:
    """The declared settings of a dataclass (class or instance), in field order."""
    cls = cls if isinstance(cls, type) else type(cls)
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_KEY)
        if spec is not None:
            kind = typing.get_args(hints[f.name])[0] if typing.get_origin(hints[f.name]) else hints[f.name]
            out[f.name] = Declared(f.name, f.default, kind, spec)
    return out


def declaration(cls: type, name: str) -> Declared:
    """One declared setting of ``cls`` (a KeyError names the class when there is none)."""
    try:
        return declared(cls)[name]
    except KeyError:
        raise KeyError(f"{cls.__name__} declares no setting {name!r}") from None


def declared_like(cls: type, name: str) -> Any:
    """A field with the default and :class:`Spec` of ``cls.name``: how an adapter's own settings
    model (the webui's args) reuses a core declaration instead of repeating it."""
    d = declaration(cls, name)
    return dataclasses.field(default=d.default, metadata={_KEY: d.spec})


def problem(d: Declared, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``d`` (None when it is)."""
    s = d.spec
    if d.kind in (int, float) and not isinstance(value, bool):
        if s.min is not None and value < s.min or s.max is not None and value > s.max:
            return f"{d.name} must be between {_fmt(s.min)} and {_fmt(s.max)}, got {value}"
        if s.multiple_of and value % s.multiple_of:
            return f"{d.name} must be a multiple of {s.multiple_of}, got {value}"
    if s.choices and not s.open_choices and value not in s.choices:
        return f"{d.name} must be one of {', '.join(s.choices)}, got {value!r}"
    return None


def check(obj: Any, error: type[Exception] = OptionError, prefix: str = "") -> None:
    """Raise ``error`` naming the first setting of ``obj`` outside its declared range or choices
    (its ``setting`` attribute is that :class:`Declared`)."""
    for d in declared(obj).values():
        why = problem(d, getattr(obj, d.name))
        if why:
            err = error(prefix + why)
            err.setting = d
            raise err


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                  names: list[str] | None = None, keep_absent: bool = False) -> None:
    """argparse flags for the declared settings of ``cls`` (all, or ``names``): ``--grow-percent``
    for ``grow_percent``, ``--x/--no-x`` for booleans, choices and ranges in the help. With
    ``keep_absent`` a flag that is not given sets nothing (to tell a user's value from a default)."""
    decls = declared(cls)
    for name in names or list(decls):
        d = decls[name]
        flags = [d.flag, *d.spec.flags]
        default = argparse.SUPPRESS if keep_absent else d.default
        if d.kind is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=_escaped(f"{d.spec.help}; default {d.flag if d.default else '--no-' + d.flag[2:]}"))
            continue
        kw: dict[str, Any] = dict(dest=name, type=d.kind, default=default,
                                  help=_escaped(f"{d.describe()}; default {d.default!r}"))
        if d.spec.choices and not d.spec.open_choices:
            kw["choices"] = list(d.spec.choices)
        parser.add_argument(*flags, **kw)


def _escaped(help_text: str) -> str:
    """A help text as argparse takes it: ``%`` is its formatting character ("75%" would fail --help)."""
    return help_text.replace("%", "%%")


def _is_settings(factory: Any) -> bool:
    """Whether ``factory`` is a settings class whose fields are all declared (a part of a
    composite like ``RepairOptions``)."""
    return isinstance(factory, type) and dataclasses.is_dataclass(factory) and bool(declared(factory))


def options_from(obj: Any, cls: type, **extra: Any) -> Any:
    """``cls`` built from the attributes of ``obj`` named like its declared settings, plus
    ``extra`` fields: parsed flags (an ``argparse.Namespace``) or an adapter's settings model ->
    the core option object. A field holding a settings class (``RepairOptions.regions``) is built
    the same way from ``obj``. From flags, a refused value is named by its flag (``--min-gain``)."""
    try:
        parts = {f.name: options_from(obj, f.default_factory) for f in dataclasses.fields(cls)
                 if f.name not in extra and _is_settings(f.default_factory)}
        return cls(**{name: getattr(obj, name) for name in declared(cls) if hasattr(obj, name)}, **parts, **extra)
    except OptionError as e:
        if isinstance(obj, argparse.Namespace) and getattr(e, "setting", None):
            raise OptionError(str(e).replace(e.setting.name, e.setting.flag, 1)) from None
        raise
