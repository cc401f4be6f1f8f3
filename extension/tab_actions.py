"""What the PAL4VST tab does, free of gradio and the webui so that it is testable."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from pal4vst.images import ImageError, list_images, pil_to_rgb, read_image
from pal4vst.render import mask_to_uint8, overlay
from pal4vst.scoring.ranking import Scored, write_ranking

from .args import PALArgs
from .pipeline import auto_fix
from .services import Services


def detect_image(services: Services, model: str, image: Image.Image | None, threshold: float):
    """``(overlay, mask, summary)`` for the tab's Detect button."""
    if image is None:
        raise ValueError("upload an image first")
    rgb = pil_to_rgb(image)
    det = services.detector(model, threshold=threshold)(rgb)
    mask = Image.fromarray(mask_to_uint8(det.mask))
    text = (f"PAR {det.par:.4f} ({det.par * 100:.2f}% of the image), {len(det.regions())} region(s), "
            f"{det.size[0]}x{det.size[1]}, model {model}")
    return Image.fromarray(overlay(rgb, det.mask, det.prob)), mask, text


REPORT_COLUMNS = ["pass", "region", "box", "before", "candidates", "verdict"]


def report_rows(report) -> list[list]:
    """The per-region report as table rows (:data:`REPORT_COLUMNS`): scores are mean artifact
    probabilities; the verdict names the candidate kept."""
    return [[r.pass_index, r.region, "{},{}-{},{}".format(*r.bbox), f"{r.score_before:.3f}",
             " ".join(f"{s:.3f}" for s in r.scores), f"kept #{r.chosen}" if r.accepted else "reverted"]
            for r in report]


def fix_image(services: Services, args: PALArgs, image: Image.Image | None, inpainter):
    """``(before, after, repaired mask, summary, report rows)`` for the tab's Fix button."""
    if image is None:
        raise ValueError("upload an image first")
    res = auto_fix(image.convert("RGB"), args, services.detector(args.model, threshold=args.threshold), inpainter,
                   seed=max(args.seed, 0))
    if not res.report:
        text = f"PAR {res.par_before:.4f}: nothing to repair"
    else:
        text = (f"PAR {res.par_before:.4f} -> {res.par_after:.4f}; {res.kept} of {res.judged} region "
                f"repaint(s) kept, the others reverted (the detector found them no better)")
    return image, res.image, res.mask, text, report_rows(res.report)


def score_folder(services: Services, model: str, folder: str, threshold: float,
                 progress: Callable[[Iterable], Iterable] = lambda x: x):
    """Rank a folder by PAR: ``(gallery [(image, caption)], csv path, summary)``; the CSV is the
    CLI's ``score`` ranking (rank, path, par, width, height, regions, status)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    files, _ = list_images([root])
    if not files:
        raise ValueError(f"no images in {root}")
    detector = services.detector(model, threshold=threshold)
    scored, thumbs = [], []
    for path in progress(files):
        try:
            rgb = read_image(path)
        except ImageError as e:
            scored.append(Scored(str(path), None, status=f"failed: {e}"))
            continue
        det = detector(rgb)
        scored.append(Scored(str(path), det.par, det.size[0], det.size[1], len(det.regions())))
        thumb = Image.fromarray(overlay(rgb, det.mask, det.prob))
        thumb.thumbnail((384, 384))
        thumbs.append(thumb)
    out = Path(tempfile.mkdtemp(prefix="pal4vst_")) / f"{root.name or 'folder'}_par.csv"
    ranking = write_ranking(out, scored)
    ok = [s for s in scored if s.ok]
    failed = [f"{Path(s.path).name}: {s.status[len('failed: '):]}" for s in scored if not s.ok]
    gallery = [(thumbs[r.index], f"#{r.rank} PAR {r.par:.4f} {Path(ok[r.index].path).name}") for r in ranking]
    summary = f"ranked {len(ok)} image(s) from {root}" + (f"; {len(failed)} unreadable: " + "; ".join(failed[:5])
                                                            if failed else "")
    return gallery, str(out), summary


# ------------------------------------------------------------------------------------------ teach

SET_COLUMNS = ["set", "examples", "with artifacts", "clean"]
TEACH_COLUMNS = ["example", "fold", "base", "fine-tuned"]


def example_sets(services: Services) -> list[list]:
    """The example sets of the models folder as table rows (:data:`SET_COLUMNS`)."""
    from pal4vst.learn.examples import examples_root, list_sets

    return [[s.name, s.count, s.with_artifacts, s.count - s.with_artifacts]
            for s in list_sets(examples_root(services.model_dirs[0])) if s.count]


def teach_show(services: Services, model: str, image: Image.Image | None, threshold: float):
    """``(editor value, PAL's mask, overlay, text)`` for "Show PAL's mask": the image with PAL's mask
    as an editable layer, the mask itself (kept for the gradio 3 pads), and the overlay."""
    from .mask_editing import editor_value

    if image is None:
        raise ValueError("upload an image first")
    rgb = pil_to_rgb(image)
    det = services.detector(model, threshold=threshold)(rgb)
    text = (f"PAL ({model}) marks {det.par:.2%} of the image in {len(det.regions())} region(s). Paint what it "
            "missed, erase what it marked wrongly, then Add to set")
    shown = Image.fromarray(overlay(rgb, det.mask, det.prob))
    return editor_value(Image.fromarray(rgb), det.mask), det.mask, shown, text


def teach_add(services: Services, set_name: str, image: Image.Image | None, mask) -> tuple[str, list[list]]:
    """Save the image with the artist's mask into ``set_name``: ``(text, set rows)``."""
    import numpy as np

    from pal4vst.learn.examples import examples_root, save_example, set_info

    if image is None:
        raise ValueError("upload an image and show PAL's mask first")
    rgb = pil_to_rgb(image)
    root = examples_root(services.model_dirs[0])
    saved = save_example(root, set_name, rgb, np.asarray(mask, bool))
    info = set_info(root / saved.parent.name)
    return f"saved {saved.name} ({'marks something' if np.any(mask) else 'nothing is broken'}); {info.describe()}", \
        example_sets(services)


def teach_add_file(services: Services, set_name: str, image: Image.Image | None, mask_file) -> tuple[str, list[list]]:
    """Save the image with a mask file drawn elsewhere (read as :mod:`pal4vst.mask_files` reads
    every mask) into ``set_name``: ``(text, set rows)``. ``mask_file``: a path, or gradio 3's
    uploaded file object."""
    from pal4vst.mask_files import read_mask_file

    if image is None:
        raise ValueError("upload the image the mask belongs to first")
    read = read_mask_file(getattr(mask_file, "name", mask_file))
    text, rows = teach_add(services, set_name, image, read.marked)
    return (f"{text}\nnote: {read.note}" if read.note else text), rows


def teach_run(services: Services, base_model: str, set_name: str, options, *, on_step=None, should_stop=None,
              make_room: Callable[[], None] = lambda: None):
    """Fine-tune ``base_model`` on ``set_name`` (:func:`pal4vst.learn.teach.teach`):
    ``(summary, per-example rows, report, new model's file name)``."""
    from pal4vst.learn.examples import examples_root
    from pal4vst.learn.teach import teach

    folder = examples_root(services.model_dirs[0]) / (set_name or "")
    if not set_name or not folder.is_dir():
        raise ValueError(f"there is no example set {set_name!r}: add examples to a set first")
    base = services._path(base_model)
    services.unload()
    make_room()
    res = teach(base, folder, services.model_dirs[0] / f"{options.model_name}.safetensors", options,
                device=services.device, on_step=on_step, should_stop=should_stop, base_name=base_model)
    rows = [[e["example"], e["fold"], *(("clean, marks " + format(e[f"marked_{w}"], ".1%")) if e["iou_before"] is None
                             else format(e[f"iou_{w}"], ".3f") for w in ("before", "after"))]
            for e in res.report["per_example"]]
    return res.summary(), rows, res.report, res.path.name
