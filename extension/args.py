"""The PAL4VST auto-fix settings: one model shared by the UI, the API and the infotext.

Script args arrive as the UI's positional values, or from ``/sdapi/v1/txt2img`` as
``alwayson_scripts: {"PAL4VST": {"args": [...]}}`` where the list may be positional values, a
single dict, or ``[enabled, {dict}]``. Every path goes through :meth:`PALArgs.parse`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

SCRIPT_TITLE = "PAL4VST"
INFOTEXT_PREFIX = "PAL4VST"


class ArgsError(ValueError):
    """Script arguments that cannot be used; the message names the field and the allowed values."""


# name -> (min, max) for numbers
BOUNDS: dict[str, tuple[float, float]] = {
    "threshold": (0.01, 0.99), "grow": (-256, 256), "min_area": (0, 10_000_000), "max_regions": (0, 64),
    "context": (1.0, 4.0), "work_size": (64, 2048), "min_par": (0.0, 1.0), "denoise": (0.0, 1.0),
    "steps": (1, 150), "cfg": (1.0, 30.0), "mask_blur": (0, 64), "feather": (0, 128), "seed": (-1, 2**32 - 1),
    "iterations": (1, 5), "target_par": (0.0, 1.0),
}


@dataclass
class PALArgs:
    """Settings of one auto-fix run (defaults follow the paper: context 1.5, zoom to 512)."""

    enabled: bool = False
    model: str = "unified"
    threshold: float = 0.5
    grow: int = 8
    min_area: int = 64
    max_regions: int = 0
    context: float = 1.5
    work_size: int = 512
    min_par: float = 0.0
    prompt: str = ""
    negative_prompt: str = ""
    denoise: float = 0.5
    steps: int = 20
    cfg: float = 7.0
    sampler: str = ""
    mask_blur: int = 4
    feather: int = 4
    seed: int = -1
    iterations: int = 1
    target_par: float = 0.0
    skip_img2img: bool = False

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
        for f in fields(cls):
            if f.name not in data or data[f.name] is None:
                continue
            out[f.name] = _coerce(f.name, data[f.name], f.type)
        return cls(**out).validated()

    def validated(self) -> PALArgs:
        for name, (lo, hi) in BOUNDS.items():
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ArgsError(f"PAL4VST {name} must be between {lo} and {hi}, got {v}")
        if self.work_size % 8:
            raise ArgsError(f"PAL4VST work_size must be a multiple of 8, got {self.work_size}")
        if not self.model:
            raise ArgsError("PAL4VST model must not be empty")
        return self

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


def _coerce(name: str, value: Any, kind: Any) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
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
