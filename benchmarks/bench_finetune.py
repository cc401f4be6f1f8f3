"""Which weights should learn when an artist teaches PAL with ~10 images? Two measurements:

1. **Cost** of one training step of the real Swin-B at 512², per variant (``TrainConfig.tune``:
   all, late, heads, lora): seconds per step, the peak RSS the step adds on this machine, and the
   memory a GPU would need: the weights, the gradients and AdamW's two moments of what learns, and
   the activations autograd keeps for the backward pass (counted with ``saved_tensors_hooks``,
   the same bytes on any device), plus what the forward itself allocates at its peak.
2. **Gain** on an artifact kind the base never saw: a small model (the tiny preset) learns one
   synthetic kind ("noise"), then is taught a second ("solid": flat saturated patches) from 10
   examples, by the recipe and by each variant of what learns; artifact IoU over the examples
   (each judged by a fold that did not learn from it), on 40 test images of the new kind, and on
   40 of the old kind (is it still found?).
3. **Verdict** against the truth: two bases (tiny models that know different kinds) are each
   taught five kinds they never saw, from 10 examples, plus a control whose masks are moved off
   the artifacts; the truth is the IoU on 30 unseen images of the kind before and after. A
   confusion table says how often the project's verdict (cross-fitted, with its interval) agreed
   with it, beside the one-split verdict it replaced (the first fold alone, after > before).

    python benchmarks/bench_finetune.py cost [--batch 2] [--size 512] [--dtype auto]
    python benchmarks/bench_finetune.py gain [--lr 0]
    python benchmarks/bench_finetune.py verdict [--sets 2] [--rows rows.jsonl] [--bases noise]

Each configuration of ``cost`` runs in a fresh process (peak figures are per process).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pal4vst.learn.adapt import TUNES  # noqa: E402

from memory import in_fresh_process, reset_peak, status  # noqa: E402


def cost_one(tune: str, batch: int, size: int, dtype: str, steps: int) -> dict:
    """One variant in this process: a warm-up step, then ``steps`` timed steps."""
    from pal4vst.device import pick_dtype
    from pal4vst.learn.adapt import prepare
    from pal4vst.learn.engine import seg_loss
    from pal4vst.learn.config import TrainConfig
    from pal4vst.learn.optim import build_optimizer
    from pal4vst.model.segmenter import PALSegmenter, preset

    torch.manual_seed(0)
    model = PALSegmenter(preset("swin_b", aux=True, drop_path=0.1, input_size=size))
    learning = prepare(model, tune, 8)
    model.train()
    for m in model.modules():  # the recipe keeps BatchNorm's statistics (freeze_bn)
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    cfg = TrainConfig(tune=tune, batch=batch, crop=size)
    opt = build_optimizer(model, cfg)
    amp = pick_dtype(dtype, torch.device("cpu"))
    x = torch.randint(0, 255, (batch, 3, size, size), dtype=torch.uint8)
    y = (torch.rand(batch, size, size) > 0.8).long()
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    def step(count_saved: bool) -> None:
        ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if count_saved else nullcontext()
        with ctx, torch.autocast("cpu", dtype=amp, enabled=amp != torch.float32):
            main, aux = model(model.config.normalise(x), features=True)
            loss = seg_loss(main, aux, y, cfg)[0]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(True)  # warm-up; counts what autograd keeps
    base = status("VmRSS")
    reset_peak()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(False)
    seconds = (time.perf_counter() - t0) / steps
    peak = status("VmHWM") - base
    weights = sum(p.numel() * 4 for p in model.parameters())
    learn_bytes = learning * 4
    return {"tune": tune, "learning_m": learning / 1e6, "s_per_step": seconds, "peak_added_mib": peak / 2**20,
            "weights_mib": weights / 2**20, "grads_adam_mib": 3 * learn_bytes / 2**20,
            "activations_mib": saved[0] / 2**20, "dtype": str(amp).replace("torch.", ""), "batch": batch, "size": size}


def cost(args: argparse.Namespace) -> None:
    rows = []
    for tune in args.tunes:
        rows.append(in_fresh_process(__file__, ["cost-one", tune, "--batch", str(args.batch), "--size", str(args.size),
                                                "--dtype", args.dtype, "--steps", str(args.steps)]))
    r0 = rows[0]
    print(f"Swin-B + UPerNet + aux at {r0['size']}², batch {r0['batch']}, {r0['dtype']} autocast, AdamW, this CPU "
          f"({torch.get_num_threads()} threads); each variant in a fresh process")
    print("| tune | weights that learn | s / step (CPU) | peak RSS added (CPU) | GPU estimate: weights + grads & "
          "AdamW + kept activations |")
    print("|---|---|---|---|---|")
    for r in rows:
        gpu = r["weights_mib"] + r["grads_adam_mib"] + r["activations_mib"]
        print(f"| {r['tune']} | {r['learning_m']:.1f} M | {r['s_per_step']:.1f} | "
              f"{r['peak_added_mib'] / 1024:.2f} GiB | "
              f"{gpu / 1024:.2f} GiB ({r['weights_mib'] / 1024:.2f} + {r['grads_adam_mib'] / 1024:.2f} + "
              f"{r['activations_mib'] / 1024:.2f}) |")


#: (label, TeachOptions fields, TrainConfig overrides): the recipe, each variant of what learns
#: under it (LoRA's adapters start at zero: anchoring them holds them there, so it runs without),
#: and the recipe without what keeps the old kind.
GAIN_ROWS = [
    ("default recipe (all, anchored, BN frozen)", {}, {}),
    ("late (last two stages + heads)", {}, {"tune": "late"}),
    ("heads only", {}, {"tune": "heads"}),
    ("lora rank 8 + heads, no anchor", {}, {"tune": "lora", "anchor": 0.0}),
    ("all, no anchor", {}, {"anchor": 0.0}),
    ("all, no anchor, BN learning", {}, {"anchor": 0.0, "freeze_bn": False}),
    ("quick recipe", {"recipe": "quick"}, {}),
]


def gain(args: argparse.Namespace) -> None:
    from pal4vst.detect import Detector
    from pal4vst.learn.data import discover
    from pal4vst.learn.metrics import confusion
    from pal4vst.learn.teach import teach
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.settings import TeachOptions
    from pal4vst.testing import teaching_scenario

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        known = teaching_scenario(tmp, val=40)
        base, old, new_test, examples = known["base"], known["old"], known["new"], known["examples"]
        print(f"base: the tiny preset (0.3 M weights), 500 steps on 300 images of the 'noise' kind "
              f"(data and training {time.perf_counter() - t0:.0f} s); taught the 'solid' kind from 10 examples "
              f"(3 folds, then all), learning rate {args.lr or 'the model' + chr(39) + 's own'}")

        def iou(path, data):
            det = Detector(load_checkpoint(path), device="cpu", dtype="fp32")
            return confusion(det, discover(data, "val").samples).artifact_iou

        print(f"base model: new kind IoU {iou(base, new_test):.3f} (40 test images), old kind {iou(base, old):.3f}")
        print("| variant | s | examples (cross-fitted): IoU before -> after, verdict | new kind, 40 test images "
              "| old kind, 40 images |")
        print("|---|---|---|---|---|")
        for label, opts, overrides in GAIN_ROWS:
            t0 = time.perf_counter()
            res = teach(base, examples, tmp / "m.safetensors", TeachOptions(**{"lr": args.lr, **opts}), device="cpu",
                        overrides=overrides, overwrite=True)
            print(f"| {label} | {time.perf_counter() - t0:.0f} | {res.iou_before:.3f} -> {res.iou_after:.3f}, "
                  f"{res.report['verdict_kind']} | {iou(res.path, new_test):.3f} | {iou(res.path, old):.3f} |")


#: base name -> the kinds it learned; every base is taught TAUGHT (none of which it knows)
BASES = {"noise": ("noise",), "stripes+warp": ("stripes", "warp")}
TAUGHT = ("cast", "shuffle", "duplicate", "checker", "solid")
CONTROL = "cast, masks moved off"  # the cast examples with every mask rolled off its patch


def _truth(gain: float) -> str:
    from pal4vst.learn.verdict import BETTER, MIN_GAIN, NOT_SHOWN, WORSE

    return BETTER if gain >= MIN_GAIN else WORSE if gain <= -MIN_GAIN else NOT_SHOWN


def verdict(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from pal4vst.detect import Detector
    from pal4vst.learn import verdict as V
    from pal4vst.learn.config import TrainConfig
    from pal4vst.learn.data import discover
    from pal4vst.learn.engine import train
    from pal4vst.learn.metrics import confusion
    from pal4vst.learn.recipes import RECIPES
    from pal4vst.learn.synthetic import write_dataset, write_example_set
    from pal4vst.learn.teach import teach
    from pal4vst.model.checkpoint import load_checkpoint
    from pal4vst.settings import TeachOptions

    def iou(path, data):
        det = Detector(load_checkpoint(path), device="cpu", dtype="fp32")
        return confusion(det, discover(data, "val").samples).artifact_iou

    from pal4vst.learn.config import parse_sets

    overrides = parse_sets(args.set, TrainConfig())
    rows = []
    t_start = time.perf_counter()
    print(f"taught from 10 examples by the {args.recipe} recipe {overrides or ''}; truth: IoU on {args.unseen} unseen "
          "images of the kind")
    print("| base | kind | set | unseen: before -> after | base's kind: before -> after | verdict (gain, interval) "
          "| one split | truth | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for b, (base_name, known) in enumerate(BASES.items()):
            if args.bases and base_name not in args.bases:
                continue  # seeds stay the base's own, so a run split by base adds up to the whole
            data = write_dataset(tmp / f"old{b}", {"train": 300, "val": args.unseen}, size=96, seed=b, kinds=known)
            train(TrainConfig.from_dict({**RECIPES["scratch"], "data": str(data), "out": str(tmp / f"base{b}"),
                                         "preset": "tiny", "iters": 500, "batch": 8, "crop": 64, "scale": 80,
                                         "amp": "none", "workers": 0, "val_interval": 500, "ckpt_interval": 500,
                                         "device": "cpu"}))
            base = tmp / f"base{b}" / "last.safetensors"
            old_before = iou(base, data)
            for k, kind in enumerate((*TAUGHT, CONTROL)):
                real = kind.split(",")[0]
                unseen = write_dataset(tmp / f"unseen{b}_{k}", {"val": args.unseen}, size=96, seed=100 + k,
                                       kinds=(real,))
                before = iou(base, unseen)
                for n in range(args.sets):
                    ex = write_example_set(tmp / f"ex{b}_{k}_{n}", 10, size=96, seed=1000 * k + n, kinds=(real,))
                    if kind == CONTROL:
                        for m in ex.glob("*_mask.png"):
                            a = np.asarray(Image.open(m))
                            Image.fromarray(np.roll(a, (a.shape[0] // 2, a.shape[1] // 2), axis=(0, 1))).save(m)
                    t0 = time.perf_counter()
                    res = teach(base, ex, tmp / "m.safetensors", TeachOptions(recipe=args.recipe), device="cpu",
                                overwrite=True, overrides=overrides)
                    r = res.report
                    # the one-split verdict it replaced: fold 1's model on fold 1's examples, after > before
                    one = r["folds"][0]["iou_after"] > r["folds"][0]["iou_before"]
                    after = iou(res.path, unseen)
                    row = {"base": base_name, "kind": kind, "set": n, "unseen_before": round(before, 4),
                           "unseen_after": round(after, 4), "old_before": round(old_before, 4),
                           "old_after": round(iou(res.path, data), 4), "verdict": r["verdict_kind"],
                           "gain": r["gain"], "low": r["gain_low"], "high": r["gain_high"],
                           "one_split": V.BETTER if one else "not better", "truth": _truth(after - before),
                           "seconds": round(time.perf_counter() - t0, 1)}
                    rows.append(row)
                    if args.rows:
                        with open(args.rows, "a") as f:
                            f.write(json.dumps(row) + "\n")
                    print(f"| {base_name} | {kind} | {n} | {before:.3f} -> {after:.3f} | {row['old_before']:.3f} -> "
                          f"{row['old_after']:.3f} | {r['verdict_kind']} ({r['gain']:+.3f}, {r['gain_low']:+.3f} to "
                          f"{r['gain_high']:+.3f}) | {row['one_split']} | {row['truth']} | {row['seconds']:.0f} |",
                          flush=True)
    print_confusion(rows, time.perf_counter() - t_start)


def print_confusion(rows: list[dict], seconds: float) -> None:
    """Verdict against the truth on unseen images, for the cross-fitted verdict and the one-split one."""
    import numpy as np

    from pal4vst.learn.verdict import BETTER, NOT_SHOWN, WORSE

    truths = (BETTER, NOT_SHOWN, WORSE)
    print(f"\n{len(rows)} teachings in {seconds / 60:.0f} min on this CPU ({torch.get_num_threads()} threads)")
    for key, columns in (("verdict", (BETTER, NOT_SHOWN, WORSE)), ("one_split", (BETTER, "not better"))):
        print(f"\n{key}: rows = truth on unseen images (gain >= +0.02, within, <= -0.02), columns = what it said")
        print("| truth \\ said | " + " | ".join(columns) + " |")
        print("|---|" + "---|" * len(columns))
        for t in truths:
            print(f"| {t} | " + " | ".join(str(sum(r['truth'] == t and r[key] == c for r in rows)) for c in columns)
                  + " |")
        said = [r for r in rows if r[key] == BETTER]
        wrong = sum(r["truth"] != BETTER for r in said)
        print(f"said better {len(said)} times, {wrong} of them not better on unseen images")
    gains = [r["unseen_after"] - r["unseen_before"] for r in rows]
    kept = [r["old_after"] / r["old_before"] for r in rows if r["old_before"] > 0]
    real = sum(r["truth"] == BETTER for r in rows)
    print(f"\nreal gains {real} of {len(rows)}; mean unseen gain {np.mean(gains):+.3f}; "
          f"base's kind kept {np.mean(kept):.2f} of its IoU (worst {min(kept):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("cost", "gain", "verdict", "cost-one", "table"))
    ap.add_argument("tune", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--tunes", nargs="+", default=list(TUNES), choices=TUNES)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--steps", type=int, default=0, help="timed steps of cost (default 2)")
    ap.add_argument("--lr", type=float, default=0.0, help="gain: the learning rate (0: the model's own)")
    ap.add_argument("--sets", type=int, default=2, help="verdict: example sets (of 10) per base and kind")
    ap.add_argument("--unseen", type=int, default=30, help="verdict: unseen images per kind")
    ap.add_argument("--bases", nargs="+", choices=tuple(BASES), help="verdict: only these bases (one process "
                    "each, rows appended to one --rows file, then `table`)")
    ap.add_argument("--recipe", default="default", help="verdict: the teaching recipe")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="verdict: a TrainConfig field replacing the recipe's (iters=600, anchor=0, lr=1e-3, ...)")
    ap.add_argument("--rows", help="verdict: append each row to this JSON-lines file as it is measured; table: "
                    "print the confusion tables of such a file")
    args = ap.parse_args()
    if args.what == "cost-one":
        print(json.dumps(cost_one(args.tune, args.batch, args.size, args.dtype, args.steps or 2)))
    elif args.what == "cost":
        cost(args)
    elif args.what == "verdict":
        verdict(args)
    elif args.what == "table":
        rows = [json.loads(line) for line in open(args.rows) if line.strip()]
        print_confusion(rows, sum(r["seconds"] for r in rows))
    else:
        gain(args)


if __name__ == "__main__":
    main()
