"""The PAL4VST auto-fix settings: one model shared by the UI, the API and the infotext, built on
the core's declarations (defaults, ranges and help are the core's).

Script args arrive as the UI's positional values, or from ``/sdapi/v1/txt2img`` as
``alwayson_scripts: {"PAL4VST": {"args": [...]}}`` where the list may be positional values, a
single dict, or ``[enabled, {dict}]``. Every path goes through :meth:`PALArgs.parse`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from pal4vst.options import check, declared, option, options_from, declared_like
from pal4vst.settings import (CropOptions, DetectOptions, ModelSource, PasteOptions, RefineOptions, RegionOptions,
                              SamplingOptions)

SCRIPT_TITLE = "PAL4VST"
INFOTEXT_PREFIX = "PAL4VST"


class ArgsError(ValueError):
    """Script arguments that cannot be used; the message names the field and the allowed values."""


@dataclass
class PALArgs:
    """Settings of one auto-fix run. Each core setting reuses the core's declaration
    (:mod:`pal4vst.settings`); four belong to the webui alone. The field order is the positional
    order of ``alwayson_scripts`` args and must not change: new fields go last."""

    enabled: bool = option(False, "fix the artifacts of every generated image", label="Enable")
    model: str = declared_like(ModelSource, "model")
    threshold: float = declared_like(DetectOptions, "threshold")
    grow: int = declared_like(RegionOptions, "grow")
    min_area: int = declared_like(RegionOptions, "min_area")
    max_regions: int = declared_like(RegionOptions, "max_regions")
    context: float = declared_like(RegionOptions, "context")
    work_size: int = declared_like(CropOptions, "work_size")
    min_par: float = declared_like(RefineOptions, "min_par")
    prompt: str = declared_like(SamplingOptions, "prompt")
    negative_prompt: str = declared_like(SamplingOptions, "negative_prompt")
    denoise: float = declared_like(SamplingOptions, "denoise")
    steps: int = declared_like(SamplingOptions, "steps")
    cfg: float = declared_like(SamplingOptions, "cfg")
    sampler: str = option("", "sampler of the fix (blank: the generation's)", label="Sampler (blank = main)")
    mask_blur: int = option(4, "blur of the inpaint mask's edge in the webui's img2img (pixels)", min=0, max=64, step=1)
    feather: int = declared_like(PasteOptions, "feather")
    seed: int = declared_like(SamplingOptions, "seed")
    iterations: int = declared_like(RefineOptions, "iterations")
    target_par: float = declared_like(RefineOptions, "target_par")
    skip_img2img: bool = option(False, "do not fix images made in img2img", label="Skip in img2img")
    candidates: int = declared_like(RefineOptions, "candidates")
    verify: bool = declared_like(RefineOptions, "verify")
    min_gain: float = declared_like(RefineOptions, "min_gain")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, args: Any) -> PALArgs:
        """From positional values, a dict, ``[enabled, dict]``, or a PALArgs; validated."""
        if isinstance(args, PALArgs):
            return args.validated()
        if isinstance(args, dict):
            return cls.from_dict(args)
        values = list(args or [])
        if values and isinstance(values[0], dict):
            return cls.from_dict(values[0])
        if len(values) >= 2 and isinstance(values[1], dict):
            return cls.from_dict({**values[1], "enabled": values[0]})
        names = cls.names()
        if len(values) > len(names):
            raise ArgsError(f"PAL4VST takes at most {len(names)} positional args ({', '.join(names)}), got {len(values)}")
        return cls.from_dict(dict(zip(names, values)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PALArgs:
        unknown = sorted(set(data) - set(cls.names()))
        if unknown:
            raise ArgsError(f"unknown PAL4VST arg(s): {', '.join(unknown)}; known: {', '.join(cls.names())}")
        out = {}
        for name, d in declared(cls).items():
            if name in data and data[name] is not None:
                out[name] = _coerce(name, data[name], d.kind)
        return cls(**out).validated()

    def validated(self) -> PALArgs:
        check(self, ArgsError, prefix="PAL4VST ")
        if not self.model:
            raise ArgsError("PAL4VST model must not be empty")
        return self

    def options(self, cls: type):
        """The core option object ``cls`` (RegionOptions, CropOptions, ...) these args carry."""
        return options_from(self, cls)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ---------------------------------------------------------------- infotext
    def infotext(self) -> dict[str, Any]:
        """Generation parameters written into the image's infotext (only non-default values beyond the basics)."""
        out = {f"{INFOTEXT_PREFIX} model": self.model}
        default = PALArgs()
        for name in self.names():
            if name in ("enabled", "model"):
                continue
            value = getattr(self, name)
            if value != getattr(default, name) or name in ("threshold", "context", "work_size", "denoise"):
                out[f"{INFOTEXT_PREFIX} {name}"] = value
        return out

    @classmethod
    def from_infotext(cls, params: dict[str, Any]) -> PALArgs | None:
        """Back from a parsed infotext (strings), or None when PAL4VST did not run."""
        key = f"{INFOTEXT_PREFIX} model"
        if key not in params:
            return None
        data: dict[str, Any] = {"enabled": True}
        for name in cls.names():
            k = f"{INFOTEXT_PREFIX} {name}"
            if k in params:
                data[name] = params[k]
        return cls.from_dict(data)


def infotext_key(name: str) -> str:
    return f"{INFOTEXT_PREFIX} {name}"


def _coerce(name: str, value: Any, kind: type) -> Any:
    kind = kind.__name__
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.strip().lower() in ("true", "1", "yes", "on"):
                    return True
                if value.strip().lower() in ("false", "0", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            f = float(value)
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if kind == "float":
            return float(value)
        if kind == "str":
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError):
        what = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(kind, kind)
        raise ArgsError(f"PAL4VST {name} must be {what}, got {value!r}") from None
    return value
