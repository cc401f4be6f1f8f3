"""The auto-fix as the webui runs it after generation, with the inpainter injected."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from pal4vst.detect import Detects
from pal4vst.images import pil_to_rgb
from pal4vst.render import mask_to_uint8
from pal4vst.settings import RepairOptions
from pal4vst.zoom.inpaint import Inpainter
from pal4vst.zoom.refine import refine
from pal4vst.zoom.verify import RegionReport

from .args import PALArgs, infotext_key


@dataclass
class FixResult:
    """An auto-fix's outcome: the image, the mask of the regions whose repaint was kept, PAR before
    and after, the per-region report (every region of every pass, kept or reverted), the seed of
    the first candidate of its first crop (``first_seed``; the others count on from it by the
    seed rule) and the crop counter after it (``next_crop``)."""

    image: Image.Image
    mask: Image.Image
    par_before: float
    par_after: float
    report: list[RegionReport] = field(default_factory=list)
    first_seed: int = 0
    next_crop: int = 0

    @property
    def kept(self) -> int:
        """Region repaints kept."""
        return sum(r.accepted for r in self.report)

    @property
    def judged(self) -> int:
        """Region repaints judged, kept or reverted."""
        return len(self.report)

    @property
    def changed(self) -> bool:
        return self.kept > 0

    def report_dicts(self) -> list[dict]:
        return [r.to_dict() for r in self.report]

    def infotext(self) -> dict[str, str]:
        out = {
            infotext_key("PAR before"): f"{self.par_before:.4f}",
            infotext_key("PAR after"): f"{self.par_after:.4f}",
            infotext_key("regions kept"): str(self.kept),
            infotext_key("regions judged"): str(self.judged),
        }
        if self.report:
            out[infotext_key("fix seed")] = str(self.first_seed)
        return out


def auto_fix(image: Image.Image, args: PALArgs, detector: Detects, inpainter: Inpainter, *, seed: int = 0,
             first_crop: int = 0) -> FixResult:
    """Detect, zoom-crop, inpaint (``args.candidates`` per region), let the detector judge each
    region, composite; iterate as ``args`` says. Seeds by the core's rule from ``seed``, crops
    counted from ``first_crop``. The input is not modified."""
    res = refine(pil_to_rgb(image), detector, inpainter, args.options(RepairOptions), seed=seed,
                 first_crop=first_crop)
    changed = res.passes > 0
    out = Image.fromarray(res.image) if changed else image
    if changed and image.mode == "RGBA":  # keep the alpha channel of the generation
        out = out.convert("RGBA")
        out.putalpha(image.getchannel("A"))
    mask = Image.fromarray(mask_to_uint8(res.repaired))
    first = res.report[0].seeds[0] if res.report else seed
    return FixResult(out, mask, res.par_before, res.par_after, res.report, first, res.next_crop)
