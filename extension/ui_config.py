"""Keep the webui's ``ui-config.json`` from contradicting the declarations after an upgrade.

The webui saves every control's value, and a slider's minimum, maximum and step, in
``ui-config.json`` on its first start and restores them on every later one, so a user who
upgrades would keep an old range (grow -64..128) and an old default (minimum area 64) that the
declarations have since changed. Before the UI is built (``on_before_ui``), :func:`refresh`
removes from that file the entries of PAL4VST's own controls that are stale:

* a range or step that differs from the declaration (and the value saved with it);
* a value outside the declared range or choices;
* a value equal to the default declared when it was saved, when the default has changed since:
  the webui wrote it, the user did not choose it. Which defaults were in force is recorded beside
  the file (``pal4vst-ui-defaults.json``); without a record, the first release's are assumed.

A value the user chose stays. The webui then writes the declared ones back. The model dropdowns
are never saved (``do_not_save_to_config``), so they follow Settings → PAL4VST → Default model.

Free of gradio and the webui, to be testable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pal4vst.files import atomic_write

from .args import PALArgs
from .controls import control

SCRIPT_FILE = "pal4vst.py"  # scripts/pal4vst.py: the webui keys a script's controls by its file name
TAB = "pal4vst_tab"
SCRIPT_TABS = ("txt2img", "img2img")
TAB_CONTROLS = ("threshold", "denoise", "work_size", "candidates", "min_gain", "verify", "prompt")
TAB_MODEL_LABEL = "Model"
RECORD = "pal4vst-ui-defaults.json"
FIRST_RELEASE_DEFAULTS = {"min_area": 64}  # the only default the first release declared otherwise


def expected_fields(names: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """``{label: fields}`` of the webui controls of ``names``: the declared ``minimum``, ``maximum``
    and ``step`` of sliders, and ``_check`` (gradio kind, keyword arguments) and ``_name``."""
    out = {}
    for name in names:
        kind, kw = control(PALArgs, name)
        fields: dict[str, Any] = {"_check": (kind, kw), "_name": name}
        if kind == "Slider":
            fields.update(minimum=kw["minimum"], maximum=kw["maximum"], step=kw["step"])
        out[kw["label"]] = fields
    return out


def declared_defaults() -> dict[str, Any]:
    """The declared default of every auto-fix setting, as recorded beside ui-config.json."""
    return PALArgs().to_dict()


def _value_allowed(kind: str, kw: dict[str, Any], value: Any) -> bool:
    if kind in ("Slider", "Number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        lo, hi = kw.get("minimum"), kw.get("maximum")
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    if kind == "Dropdown":
        return value in kw.get("choices", [])
    if kind == "Checkbox":
        return isinstance(value, bool)
    return True


def stale_keys(saved: dict[str, Any], previous: dict[str, Any] | None = None) -> list[str]:
    """The keys of ``saved`` (a ui-config) that belong to PAL4VST's controls and contradict a
    declaration; ``previous``: the defaults declared when it was saved (None: the first release's)."""
    previous = {**declared_defaults(), **FIRST_RELEASE_DEFAULTS} if previous is None else previous
    current = declared_defaults()
    script_names = [n for n in PALArgs.names() if n not in ("enabled", "model", "sampler")]
    prefixes = [(f"customscript/{SCRIPT_FILE}/{tab}/", expected_fields(script_names)) for tab in SCRIPT_TABS]
    prefixes.append((f"{TAB}/", expected_fields(TAB_CONTROLS)))
    models = {f"customscript/{SCRIPT_FILE}/{tab}/{control(PALArgs, 'model')[1]['label']}/value" for tab in SCRIPT_TABS}
    models.add(f"{TAB}/{TAB_MODEL_LABEL}/value")
    stale = [key for key in saved if key in models]  # saved by versions before the dropdowns followed the Setting
    for key, value in saved.items():
        for prefix, labels in prefixes:
            if not key.startswith(prefix):
                continue
            label, _, field = key[len(prefix):].rpartition("/")
            want = labels.get(label)
            if want is None:
                continue
            name = want["_name"]
            if field in ("minimum", "maximum", "step") and field in want:
                if not isinstance(value, (int, float)) or float(value) != float(want[field]):
                    stale.append(key)
            elif field == "value":
                old_default = previous.get(name, current[name])
                if not _value_allowed(*want["_check"], value) or (value == old_default != current[name]):
                    stale.append(key)
    # a slider whose range is stale loses its saved value too: it was chosen within the old range
    ranged = {k.rpartition("/")[0] for k in stale if k.rpartition("/")[2] in ("minimum", "maximum", "step")}
    stale += [f"{base}/value" for base in sorted(ranged) if f"{base}/value" in saved and f"{base}/value" not in stale]
    return stale


def refresh(path: str | os.PathLike) -> list[str]:
    """Remove :func:`stale_keys` from the ui-config file at ``path`` (atomically; nothing else in
    it changes) and record the defaults in force beside it. Returns the keys removed; a missing
    or unreadable file is left alone."""
    path = Path(path)
    record = path.with_name(RECORD)
    try:
        saved = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return []
    if not isinstance(saved, dict):
        return []
    try:
        previous = json.loads(record.read_text(encoding="utf8"))
    except (OSError, ValueError):
        previous = None
    stale = stale_keys(saved, previous if isinstance(previous, dict) else None)
    if stale:
        kept = {k: v for k, v in saved.items() if k not in set(stale)}
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(kept, indent=4, ensure_ascii=False), encoding="utf8"))
    if previous != declared_defaults():
        atomic_write(record, lambda tmp: tmp.write_text(json.dumps(declared_defaults(), indent=1), encoding="utf8"))
    return stale
