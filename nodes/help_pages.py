"""The nodes' help pages (``web/docs/<NodeClass>.md``, which ComfyUI's front-end shows in the node
library and the selection panel). Each page is prose written by hand, then a reference of every
input and output generated from the node itself: the settings' help, defaults and ranges come from
:mod:`pal4vst.settings` through the node's inputs, so a page cannot drift from the node.

    python -m nodes.help_pages          # rewrite the generated part of every page
    python -m nodes.help_pages --check  # exit 1 when a page is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PAGES = Path(__file__).resolve().parents[1] / "web" / "docs"
MARKER = "<!-- generated from the node's inputs (pal4vst/settings.py) by `python -m nodes.help_pages`; edit the text above -->"

# Inputs that are connections or the host's own widgets: they have no declaration to read.
LINKS: dict[str, str] = {
    "pal_model": "the model from **PAL Load Model**",
    "image": "the images (a batch)",
    "images": "the images to rank (a batch)",
    "mask": "any MASK: PAL Detect's, the mask editor's (Load Image), SAM's, CropAndStitch's",
    "inpainted": "the sampler's output for **crops** (same batch, same size)",
    "pal_crops": "the `pal_crops` of the PAL Zoom Crop these crops came from",
    "model": "the diffusion model that repaints the crops (an inpainting model is conditioned as "
             "InpaintModelConditioning does; any other model samples under a latent noise mask)",
    "vae": "the VAE of that model",
    "positive": "the prompt of the repaint",
    "negative": "the negative prompt of the repaint",
    "seed": "base seed: candidate j of crop k gets seed + k x candidates + j (crops counted over passes and images)",
    "sampler_name": "ComfyUI's sampler, as in KSampler",
    "scheduler": "ComfyUI's scheduler, as in KSampler",
    "detailer_hook": "Impact Pack's DETAILER_HOOK (optional): its post_crop_region / post_detection are honoured",
}
HOST_WIDGETS = {"seed": "INT", "sampler_name": "choice", "scheduler": "choice"}  # KSampler's, as ComfyUI has them
FILE_CHOICES = {("PALLoadModel", "model"): "choice: a release (`unified`, `stylegan2`, `portrait_shadow_removal`) "
                                           "or a file in `models/pal4vst`"}  # the list depends on the machine
OVERRIDES: dict[tuple[str, str], str] = {
    ("PALComposite", "image"): "the original images PAL Zoom Crop cut the crops from",
    ("PALDetailer", "image"): "the images to repair (a batch)",
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _describe_input(node: str, name: str, spec: tuple) -> tuple[str, str, str]:
    """``(type, default and range, description)`` of one input; KeyError when nothing describes it."""
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if name in HOST_WIDGETS:  # ComfyUI's own lists and ranges, not known outside it
        return HOST_WIDGETS[name], "as in KSampler", OVERRIDES.get((node, name)) or LINKS[name]
    if (node, name) in FILE_CHOICES:
        kind_text = FILE_CHOICES[(node, name)]
    elif isinstance(kind, list):
        kind_text = "choice: " + ", ".join(f"`{c}`" for c in kind[:8]) + (", ..." if len(kind) > 8 else "")
    else:
        kind_text = str(kind)
    default = opts.get("default")
    bounds = ""
    if "min" in opts and "max" in opts:
        bounds = f" ({opts['min']:g} to {opts['max']:g})" if isinstance(opts["min"], float) else \
            f" ({opts['min']} to {opts['max']})"
    value = "" if default is None else f"`{default}`{bounds}"
    text = OVERRIDES.get((node, name)) or opts.get("tooltip") or LINKS[name]
    return kind_text, value, text


def reference(node: str, cls: Any) -> str:
    """The generated part of ``node``'s page: every input and output."""
    spec = cls.INPUT_TYPES()
    lines = ["## Inputs", "", "| input | type | default | what it does |", "|---|---|---|---|"]
    for group in ("required", "optional"):
        for name, s in spec.get(group, {}).items():
            try:
                kind, value, text = _describe_input(node, name, s)
            except KeyError:
                raise KeyError(f"{node}: input {name!r} has no tooltip and no entry in nodes.help_pages.LINKS") from None
            suffix = " *(optional)*" if group == "optional" else ""
            lines.append(f"| `{name}`{suffix} | {_cell(kind)} | {_cell(value)} | {_cell(text)} |")
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
    names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
    if tips is None or len(tips) != len(names):
        raise KeyError(f"{node}: every output needs an OUTPUT_TOOLTIPS entry")
    lines += ["", "## Outputs", "", "| output | type | what it is |", "|---|---|---|"]
    for name, kind, tip in zip(names, cls.RETURN_TYPES, tips):
        lines.append(f"| `{name}` | {kind} | {_cell(tip)} |")
    return "\n".join(lines) + "\n"


def render(node: str, cls: Any, current: str) -> str:
    """``current`` (a page) with its generated part replaced by today's."""
    prose = current.split(MARKER)[0].rstrip() if MARKER in current else current.rstrip()
    return f"{prose}\n\n{MARKER}\n\n{reference(node, cls)}"


def pages() -> dict[str, tuple[Path, Any]]:
    from . import NODE_CLASS_MAPPINGS

    return {name: (PAGES / f"{name}.md", cls) for name, cls in NODE_CLASS_MAPPINGS.items()}


def main(argv: list[str]) -> int:
    stale = []
    for name, (path, cls) in pages().items():
        current = path.read_text(encoding="utf8") if path.exists() else f"# {name}\n"
        want = render(name, cls, current)
        if want != current:
            stale.append(path.name)
            if "--check" not in argv:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(want, encoding="utf8")
    verb = "out of date" if "--check" in argv else "written"
    print(f"{len(stale)} page(s) {verb}: {', '.join(stale)}" if stale else "every page is up to date")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
