"""``pal4vst teach | examples``: teach a model your generator from the command line, as the hosts'
PAL Fine-Tune and Teach tab do, and build the example sets it learns from.

    pal4vst examples add my_gen image.png image_mask.png [...]   # pairs of image and mask
    pal4vst examples add my_gen --detected out/                   # a `pal4vst detect --out out` folder
    pal4vst examples list
    pal4vst teach my_gen --from unified --name my_gen_pal          # -> <models>/my_gen_pal.safetensors

Sets live where the hosts keep theirs: ``<models>/examples/<set>``, ``<models>`` being the first
model folder (``$PAL4VST_MODELS``, else the user cache; ``--models-dir`` chooses another).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from .common import EXIT_INPUT_FAILED, EXIT_INTERRUPTED, SetupError, add_debug

EXIT_NOT_BETTER = 3
TEACH_STATUSES = ("exit status: 0 the new model is better, 3 it was written but is not shown better (or is worse): "
                  "keep using the base, 2 usage or setup (nothing written), 130 interrupted twice (nothing written)")


def add_parsers(sub) -> None:
    from ..options import add_arguments
    from ..settings import ModelSource, TeachOptions

    p = sub.add_parser("teach", help="teach a model your generator from an example set (what PAL Fine-Tune does)",
                       description="Fine-tune a model on an example set and judge it: every example is judged by a "
                       "model that never learned from it (folds), with an interval; the model written then learns "
                       "from all of them. Ctrl-C stops between steps and keeps the best so far.",
                       epilog=TEACH_STATUSES)
    p.add_argument("set", help="an example set: its name under <models>/examples, or a folder")
    p.add_argument("--from", "--model", dest="source", default="unified", metavar="MODEL",
                   help="the model to teach: a release name, a file in the model folders or a path; default unified")
    p.add_argument("--name", dest="new_name", metavar="NAME", help="the new model: <models>/NAME.safetensors, never "
                   "over an existing file (NAME_2 and so on); default: the set's name")
    add_arguments(p.add_argument_group("recipe"), TeachOptions, ["recipe", "steps", "lr", "held_out", "seed"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps; default auto")
    add_models_dir(p)
    add_arguments(p, ModelSource, ["download"])
    add_debug(p)
    p.set_defaults(func=teach)

    p = sub.add_parser("examples", help="add image + mask pairs to an example set, or list the sets")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    a = verbs.add_parser("add", help="add pairs (IMAGE MASK ...) or a detect --out folder to a set",
                         description="Adds examples to a set, never overwriting one. A mask is white (bright) where "
                         "the image is broken; palette, alpha-only, 16-bit, RGB and 0/1 masks are read by what they "
                         "show, JPEG masks at half-way (with a note). An all-dark mask adds a clean example.")
    a.add_argument("set", help="the set's name (made when new) under <models>/examples")
    a.add_argument("pairs", nargs="*", type=Path, metavar="IMAGE MASK", help="image and mask files, in pairs")
    a.add_argument("--detected", type=Path, metavar="DIR", help="a `pal4vst detect --out DIR` folder: each input "
                   "image with its (corrected) DIR/<stem>_mask.png, as results.jsonl pairs them; overlays are left out")
    a.add_argument("--name", default="example", help="file name prefix of the examples; default example")
    add_models_dir(a)
    add_debug(a)
    a.set_defaults(func=examples_add)
    ls = verbs.add_parser("list", help="the sets and how many examples they hold")
    add_models_dir(ls)
    add_debug(ls)
    ls.set_defaults(func=examples_list)


def add_models_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", type=Path, metavar="DIR",
                   help="the model folder (new models, examples/ sets); default $PAL4VST_MODELS, else the user cache")


def models_dir(args: argparse.Namespace) -> Path:
    from ..model.weights import preferred_dir

    return args.models_dir or preferred_dir()


def set_folder(args: argparse.Namespace) -> Path:
    """The set ``args.set`` names: ``<models>/examples/<name>`` when there is one, else a folder given by path."""
    from ..learn.examples import examples_root

    named = examples_root(models_dir(args)) / args.set
    given = Path(args.set).expanduser()
    return named if named.is_dir() or not given.is_dir() else given


class _StopOnCtrlC:
    """The first Ctrl-C asks the run to stop between two steps (the best so far is kept and
    written, as Stop does in the hosts); a second one interrupts at once."""

    def __init__(self) -> None:
        self.asked = False

    def __enter__(self) -> _StopOnCtrlC:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, *_) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        print("\nstopping after this step: the best model so far will be written (Ctrl-C again to abandon it)",
              file=sys.stderr)

    def __exit__(self, *_) -> None:
        signal.signal(signal.SIGINT, self.previous)


def teach(args: argparse.Namespace) -> int:
    from ..learn.examples import ExampleError
    from ..learn.errors import LearnError
    from ..learn.teach import teach as run
    from ..model.weights import resolve
    from ..options import options_from
    from ..settings import TeachOptions

    folder = set_folder(args)
    if not folder.is_dir():
        raise SetupError(f"there is no example set {args.set!r} (looked in {folder.parent}); add examples with "
                         "`pal4vst examples add`, or give the set's folder")
    options = options_from(args, TeachOptions, model_name=args.new_name or folder.name)
    out = models_dir(args) / f"{options.model_name}.safetensors"
    base = resolve(args.source, download=args.download)
    last = [0.0]

    def progress(step: int, total: int, loss: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or step == total:
            last[0] = now
            print(f"\r{stage}: step {step}/{total}, loss {loss:.4f}   ", end="", file=sys.stderr, flush=True)

    made = not out.parent.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SetupError(f"cannot make the model folder {out.parent}: {e.strerror}") from None
    with _StopOnCtrlC() as ctrl_c:
        try:
            res = run(base, folder, out, options, device=args.device, on_step=progress,
                      should_stop=lambda: ctrl_c.asked, base_name=args.source)
        except BaseException as e:
            if made and not any(out.parent.iterdir()):
                out.parent.rmdir()  # a failed run leaves no folder behind
            if isinstance(e, (ExampleError, LearnError)):
                print(file=sys.stderr)
                raise SetupError(str(e)) from None
            if isinstance(e, KeyboardInterrupt):
                print("\ninterrupted: no model was written", file=sys.stderr)
                return EXIT_INTERRUPTED
            raise
    print(file=sys.stderr)
    print(res.summary())
    print(f"wrote {res.path} and {res.path.with_suffix('.json').name}")
    if res.better:
        print(f"use it: --model {res.path.stem}")
    return 0 if res.better else EXIT_NOT_BETTER


def _detected_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """``(input image, mask)`` of each record of a detect ``--out`` folder's ``results.jsonl``."""
    from .common import RESULTS, read_results

    if not (folder / RESULTS).is_file():
        raise SetupError(f"{folder} has no {RESULTS}: give the --out folder of `pal4vst detect`")
    pairs = []
    for record in read_results(folder):
        masks = [Path(p) for p in record.get("outputs", []) if p.endswith("_mask.png")]
        if "input" in record and masks:
            mask = folder / masks[0].name  # the folder may have moved since
            pairs.append((Path(record["input"]), mask))
    if not pairs:
        raise SetupError(f"{folder / RESULTS} names no image with its mask (was it written by `pal4vst detect`?)")
    return pairs


def examples_add(args: argparse.Namespace) -> int:
    from ..images import read_image
    from ..learn.examples import ExampleError, check_name, examples_root, save_example, set_info
    from ..mask_files import read_mask_file

    try:
        args.set, args.name = check_name(args.set), check_name(args.name, "example")
    except ExampleError as e:
        raise SetupError(str(e)) from None
    if len(args.pairs) % 2:
        raise SetupError(f"{len(args.pairs)} file(s) given: give each image followed by its mask")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2]))
    if args.detected:
        pairs += _detected_pairs(args.detected)
    if not pairs:
        raise SetupError("nothing to add: give IMAGE MASK pairs or --detected DIR")
    root = examples_root(models_dir(args))
    failed = 0
    for image, mask in pairs:
        try:
            rgb = read_image(image)
            drawn = read_mask_file(mask)
            saved = save_example(root, args.set, rgb, drawn.marked, args.name)
        except (OSError, ValueError) as e:  # an unreadable image, no mask, sizes that differ
            failed += 1
            print(f"error: {image} + {mask}: {e}", file=sys.stderr)
            continue
        what = "marks something" if drawn.marked.any() else "clean: nothing is broken"
        print(f"added {saved.name} ({what}) from {image.name} + {mask.name}")
        if drawn.note:
            print(f"  note: {drawn.note}")
    info = set_info(root / args.set)
    print(f"set {info.describe()} in {root / args.set}")
    return EXIT_INPUT_FAILED if failed else 0


def examples_list(args: argparse.Namespace) -> int:
    from ..learn.examples import examples_root, list_sets

    root = examples_root(models_dir(args))
    sets = list_sets(root)
    if not sets:
        print(f"no example sets in {root} yet: pal4vst examples add SET IMAGE MASK")
    for s in sets:
        print(s.describe())
    return 0
