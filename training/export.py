"""Export a checkpoint for deployment, each format checked against the eager model.

    python -m training.export CKPT [--out DIR] [--formats safetensors,torchscript,onnx] [--opset 17]

* safetensors: for the ComfyUI nodes, the webui extension and the CLI (carries the config);
* TorchScript: normalised ``1x3xSxS`` in, logits ``1x2xSxS`` out (``torch.jit.load`` and run);
* ONNX (opset >= 17): same signature, checked with onnxruntime when it is installed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pal4vst.model.checkpoint import load_checkpoint, save_safetensors
from pal4vst.model.weights import resolve


def _input(size: int) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def export_torchscript(model, size: int, path: Path) -> float:
    x = _input(size)
    with torch.inference_mode():
        ts = torch.jit.trace(model, x)
        ts.save(str(path))
        return float((torch.jit.load(str(path))(x) - model(x)).abs().max())


def export_onnx(model, size: int, path: Path, opset: int) -> float | None:
    x = _input(size)
    try:
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"], opset_version=opset,
                          dynamo=False)
    except (TypeError, RuntimeError):
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"], opset_version=opset)
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.inference_mode():
        return float((torch.from_numpy(out) - model(x)).abs().max())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--formats", default="safetensors,torchscript,onnx")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--report", type=Path, help="also write the report as JSON here")
    args = ap.parse_args(argv)
    src = Path(resolve(args.checkpoint))
    out = args.out or src.parent
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(src)
    model = loaded.module.eval()
    size = loaded.config.input_size
    report: dict[str, object] = {}
    for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
        if fmt == "safetensors":
            p = save_safetensors(model, out / f"{src.stem}.safetensors")
            report[fmt] = {"path": str(p), "max_abs_diff": float(
                (load_checkpoint(p).module(_input(size)) - model(_input(size))).abs().max().detach())}
        elif fmt == "torchscript":
            p = out / f"{src.stem}.torchscript.pt"
            report[fmt] = {"path": str(p), "max_abs_diff": export_torchscript(model, size, p)}
        elif fmt == "onnx":
            if args.opset < 17:
                raise SystemExit("ONNX export needs opset >= 17")
            p = out / f"{src.stem}.onnx"
            report[fmt] = {"path": str(p), "max_abs_diff": export_onnx(model, size, p, args.opset)}
        else:
            raise SystemExit(f"unknown format {fmt!r}")
    bad = {k: v for k, v in report.items() if v["max_abs_diff"] is not None and v["max_abs_diff"] > args.tolerance}
    print(json.dumps(report, indent=2))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2))
    if bad:
        raise SystemExit(f"exported outputs differ from eager beyond {args.tolerance}: {sorted(bad)}")
    return report


if __name__ == "__main__":
    main()
