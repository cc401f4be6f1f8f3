"""The auto-fix as the webui runs it after generation, with the inpainter injected."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from pal4vst.detect import Detector
from pal4vst.images import pil_to_rgb
from pal4vst.render import mask_to_uint8
from pal4vst.settings import CropOptions, PasteOptions, RefineOptions, RegionOptions
from pal4vst.zoom.inpaint import Inpainter
from pal4vst.zoom.refine import refine
from pal4vst.zoom.verify import RegionReport

from .args import PALArgs, infotext_key


@dataclass
class FixResult:
    """An auto-fix's outcome: the image, the mask of the regions whose repaint was kept, PAR before
    and after, and the per-region report (every region of every pass, accepted or reverted)."""

    image: Image.Image
    mask: Image.Image
    par_before: float
    par_after: float
    report: list[RegionReport] = field(default_factory=list)

    @property
    def regions(self) -> int:
        """Regions whose repaint was kept."""
        return sum(r.accepted for r in self.report)

    @property
    def changed(self) -> bool:
        return self.regions > 0

    def report_dicts(self) -> list[dict]:
        return [r.to_dict() for r in self.report]

    def infotext(self) -> dict[str, str]:
        return {
            infotext_key("PAR before"): f"{self.par_before:.4f}",
            infotext_key("PAR after"): f"{self.par_after:.4f}",
            infotext_key("regions"): f"{self.regions}/{len(self.report)}",
        }


def auto_fix(image: Image.Image, args: PALArgs, detector: Detector, inpainter: Inpainter) -> FixResult:
    """Detect, zoom-crop, inpaint (``args.candidates`` per region), let the detector judge each
    region, composite; iterate as ``args`` says. The input is not modified."""
    res = refine(pil_to_rgb(image), detector, inpainter,
                 *(args.options(cls) for cls in (RegionOptions, CropOptions, PasteOptions, RefineOptions)))
    changed = res.passes > 0
    out = Image.fromarray(res.image) if changed else image
    if changed and image.mode == "RGBA":  # keep the alpha channel of the generation
        out = out.convert("RGBA")
        out.putalpha(image.getchannel("A"))
    mask = Image.fromarray(mask_to_uint8(res.repaired))
    return FixResult(out, mask, res.par_before, res.par_after, res.report)
