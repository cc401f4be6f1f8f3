"""Detection speed and memory of the released architecture (swin_b at 512x512), side by side with
MMSegmentation's own model holding the same weights when mmseg is importable.

    python benchmarks/bench_detect.py                   # table on stdout, CSV with --csv
    python benchmarks/bench_detect.py --compile         # also torch.compile (slow to compile)

Weights are random (the math, not the values, sets the speed). Every variant runs on the same
input; the first call of each is reported separately and not counted in s/image.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from pal4vst.model.checkpoint import load_checkpoint, save_safetensors
from pal4vst.device import cpu_supports_bf16
from pal4vst.model.segmenter import build_model
from pal4vst.testing import randomise

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def peak_reset() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
    except OSError:
        pass


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_fn(fn, repeat: int, device: str) -> tuple[float, float, float]:
    """(first call s, best of repeat s, peak MiB)."""
    peak_reset()
    t0 = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return first, best, peak_mib(device)


def mmseg_model(state_dict: dict, device: str):
    """MMSegmentation's EncoderDecoder with the same weights, or None when mmseg is missing."""
    sys.path.insert(0, str(TOOLS))
    try:
        from make_mmseg_parity_fixture import PRESETS, mmseg_config, stub_mmcv_ops

        stub_mmcv_ops()
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    except ImportError:
        return None
    register_all_modules()
    model = MODELS.build(mmseg_config(PRESETS["swin_b"])).eval().to(device)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    assert not [k for k in missing if "relative_position_index" not in k], missing
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="swin_b")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile on a CPU)")
    ap.add_argument("--no-mmseg", action="store_true")
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args()
    dev = args.device

    model = randomise(build_model(args.preset), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_safetensors(model, Path(tmp) / "m.safetensors")
        t0 = time.perf_counter()
        loaded = load_checkpoint(path)
        load_s = time.perf_counter() - t0
    net = loaded.module.to(dev).eval()
    state = {k: v for k, v in model.state_dict().items()}

    rows = []
    gen = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, 3, args.size, args.size, generator=gen).to(dev) for b in map(int, args.batches.split(","))}
    bf16_ok = dev.startswith("cuda") or cpu_supports_bf16()

    def run(name: str, fn, batch: int, dtype: str) -> None:
        first, best, peak = time_fn(fn, args.repeat, dev)
        rows.append({"variant": name, "batch": batch, "dtype": dtype, "s_per_image": best / batch,
                     "first_call_s": first, "peak_mib": peak})
        print(f"  {name:<28} batch {batch}  {best / batch:7.3f} s/img   first call {first:6.2f} s   peak {peak:7.0f} MiB",
              flush=True)

    print(f"{args.preset} at {args.size}x{args.size} on {dev} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}); safetensors load {load_s:.2f} s")
    ref = mmseg_model(state, dev) if not args.no_mmseg else None
    with torch.inference_mode():
        for b, x in inputs.items():
            if ref is not None:
                meta = [dict(img_shape=x.shape[2:])] * b
                run("mmseg fp32", lambda: ref.encode_decode(x, meta), b, "fp32")
            run("pal4vst fp32", lambda: net(x), b, "fp32")
            if bf16_ok:
                with torch.autocast(dev.split(":")[0], dtype=torch.bfloat16):
                    run("pal4vst bf16 autocast", lambda: net(x), b, "bf16")
            net.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            run("pal4vst fp32 channels_last", lambda: net(xc), b, "fp32")
            if bf16_ok:
                with torch.autocast(dev.split(":")[0], dtype=torch.bfloat16):
                    run("pal4vst bf16 channels_last", lambda: net(xc), b, "bf16")
            net.to(memory_format=torch.contiguous_format)
            if args.compile:
                compiled = torch.compile(net)
                with torch.autocast(dev.split(":")[0], dtype=torch.bfloat16, enabled=bf16_ok):
                    run("pal4vst compiled", lambda: compiled(x), b, "bf16" if bf16_ok else "fp32")

    mm = {r["batch"]: r["s_per_image"] for r in rows if r["variant"] == "mmseg fp32"}
    print(f"\n{'variant':<28}{'batch':>6}{'s/img':>9}{'vs mmseg':>10}{'first s':>9}{'peak MiB':>10}")
    for r in rows:
        ratio = f"{r['s_per_image'] / mm[r['batch']]:.2f}x" if r["batch"] in mm else "-"
        r["vs_mmseg_fp32"] = ratio
        print(f"{r['variant']:<28}{r['batch']:>6}{r['s_per_image']:>9.3f}{ratio:>10}{r['first_call_s']:>9.2f}"
              f"{r['peak_mib']:>10.0f}")
    print(f"safetensors load of {args.preset}: {load_s:.2f} s")
    if args.csv:
        with args.csv.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
