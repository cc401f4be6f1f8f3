"""Build the released PAL4VST architecture with MMSegmentation itself and save a parity fixture.

Dev-only (MMSegmentation and mmdeploy are never runtime or CI dependencies). Install on CPU, in a
separate venv:

    pip install torch==2.13.0 "numpy<2" mmengine==0.10.7 mmcv-lite==2.1.0 mmsegmentation==1.2.2 ftfy regex
    pip install --no-deps mmdeploy==1.3.1 && pip install aenum terminaltables prettytable multiprocess onnx six grpcio

Then:

    python tools/make_mmseg_parity_fixture.py --preset tiny --out tests/fixtures/mmseg_tiny
    python tools/make_mmseg_parity_fixture.py --preset swin_b --out /tmp/mmseg_swin_b   # full size, not committed

It writes ``checkpoint.pth`` (MMEngine layout: ``meta``, ``state_dict``, ``message_hub`` with
MMEngine objects, as training leaves it), ``inputs.pt`` (normalised inputs of several sizes) and
``logits.pt`` (``EncoderDecoder.encode_decode`` logits, resized to the input as MMSeg's
inference does) and ``end2end.pt``: the same model exported by mmdeploy's own TorchScript tracer
with its mmseg rewriters, as the authors' ``end2end.pt`` was (the whole ``EncoderDecoder``, its
``data_preprocessor`` buffers and auxiliary head included; normalised ``1x3xHxW`` input, argmax
label map out), traced at the first input's size. Every parameter and BatchNorm statistic is
randomised so that no part of the network can hide behind an identity-like initialisation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path


def stub_mmcv_ops() -> None:
    """mmseg imports a few compiled mmcv.ops at import time; Swin/UPerHead/FCNHead use none of them."""

    class _Missing:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("mmcv.ops is stubbed in the parity generator")

    ops = types.ModuleType("mmcv.ops")
    def _getattr(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing

    ops.__getattr__ = _getattr  # type: ignore[attr-defined]
    sys.modules["mmcv.ops"] = ops


PRESETS = {
    "swin_b": dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12,
                   channels=512, aux_channels=256, sizes=[(512, 512)]),
    "tiny": dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=6,
                 channels=32, aux_channels=16, sizes=[(64, 64), (72, 40), (50, 66)]),
}


def mmseg_config(p: dict) -> dict:
    norm_cfg = dict(type="BN", requires_grad=True)
    e = p["embed_dims"]
    return dict(
        type="EncoderDecoder",
        data_preprocessor=dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
        backbone=dict(
            type="SwinTransformer", pretrain_img_size=384, embed_dims=e, patch_size=4,
            window_size=p["window_size"], mlp_ratio=4, depths=p["depths"], num_heads=p["num_heads"],
            strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True, qk_scale=None, patch_norm=True,
            drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.3, use_abs_pos_embed=False,
            act_cfg=dict(type="GELU"), norm_cfg=dict(type="LN", requires_grad=True)),
        decode_head=dict(
            type="UPerHead", in_channels=[e, 2 * e, 4 * e, 8 * e], in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
            channels=p["channels"], dropout_ratio=0.1, num_classes=2, norm_cfg=norm_cfg, align_corners=False,
            loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
        auxiliary_head=dict(
            type="FCNHead", in_channels=4 * e, in_index=2, channels=p["aux_channels"], num_convs=1,
            concat_input=False, dropout_ratio=0.1, num_classes=2, norm_cfg=norm_cfg, align_corners=False,
            loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode="whole"))


def centre_artifact_logit(model, x) -> None:
    """Shift the classifier's artifact bias so that about half of ``x``'s pixels are artifacts:
    random weights otherwise favour one class everywhere, and a label map that is all one class
    agrees with anything."""
    import torch

    with torch.no_grad():
        logits = model.encode_decode(x, [dict(img_shape=x.shape[2:])])
        model.decode_head.conv_seg.bias[1] -= (logits[:, 1] - logits[:, 0]).median()


def trace_like_mmdeploy(model, x):
    """``tools/deploy.py``'s TorchScript step: mmdeploy's ``trace`` of the EncoderDecoder under its
    mmseg rewriters (``BaseSegmentor.forward`` -> ``predict`` -> argmax), with the deploy config of
    ``configs/mmseg/segmentation_torchscript.py``."""
    import mmdeploy.codebase.mmseg.models  # noqa: F401  (registers mmdeploy's mmseg rewriters)
    from mmdeploy.apis.torch_jit import trace
    from mmengine import Config
    from mmseg.structures import SegDataSample

    deploy_cfg = Config(dict(
        ir_config=dict(type="torchscript", save_file="end2end.pt", input_names=["input"], output_names=["output"],
                       input_shape=None),
        backend_config=dict(type="torchscript"),
        codebase_config=dict(type="mmseg", task="Segmentation")))
    h, w = x.shape[2:]
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    return trace(model, x, backend="torchscript", input_metas={"data_samples": [sample], "mode": "predict"},
                 context_info={"deploy_cfg": deploy_cfg}, check_trace=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=PRESETS, default="tiny")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    stub_mmcv_ops()
    import mmengine
    import mmseg
    import torch
    from mmengine.logging import MessageHub
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pal4vst.testing import randomise  # the same randomisation as the tests' checkpoints

    p = PRESETS[args.preset]
    model = randomise(MODELS.build(mmseg_config(p)).eval())

    g = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, 3, h, w, generator=g) for h, w in p["sizes"]]
    centre_artifact_logit(model, inputs[0])
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = [model.encode_decode(x, [dict(img_shape=x.shape[2:])]) for x in inputs]
    seconds = time.perf_counter() - t0

    hub = MessageHub.get_instance("parity")
    hub.update_scalar("train/loss", 0.5)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "meta": {
                "mmengine_version": mmengine.__version__, "mmseg_version": mmseg.__version__,
                "dataset_meta": {"classes": ("background", "artifact"), "palette": [[0, 0, 0], [255, 0, 255]]},
                "iter": 20000, "config": json.dumps(mmseg_config(p)),
            },
            "state_dict": model.state_dict(),
            "message_hub": hub.state_dict(),
        },
        args.out / "checkpoint.pth",
    )
    torch.save(inputs, args.out / "inputs.pt")
    torch.save(logits, args.out / "logits.pt")
    traced = trace_like_mmdeploy(model, inputs[0])
    traced.save(str(args.out / "end2end.pt"))
    with torch.no_grad():
        labels = traced(inputs[0])
    agree = float((labels == logits[0].argmax(1, keepdim=True)).float().mean())
    print(f"end2end.pt: output {tuple(labels.shape)} {labels.dtype}, agrees with argmax(logits) on {agree:.4%} "
          f"of pixels; state dict: {len(traced.state_dict())} tensors")
    print(f"wrote {args.out} (mmseg {mmseg.__version__}, forward {seconds:.2f}s for {len(inputs)} inputs)")


if __name__ == "__main__":
    main()
