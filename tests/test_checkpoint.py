"""Checkpoint loading: every supported layout, and a distinct clear error for each wrong file."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import pytest
import torch

from pal4vst.model.checkpoint import CheckpointError, convert, load_checkpoint, read_file, sniff
from pal4vst.model.layouts import infer_config
from pal4vst.model.segmenter import build_model, preset
from pal4vst.testing import randomise, write_mmseg_checkpoint


def _same_outputs(a, b, size=64):
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return (a.module(x) - b.module(x)).abs().max().item()


def test_mmseg_and_safetensors_agree(tiny_pth, tmp_path):
    src = load_checkpoint(tiny_pth)
    out = convert(tiny_pth, tmp_path / "tiny.safetensors")
    st = load_checkpoint(out)
    assert st.kind == "safetensors" and src.kind == "torch"
    assert _same_outputs(src, st) == 0.0
    _, meta, _ = read_file(out)
    assert meta["format"] == "pal4vst" and len(meta["source_sha256"]) == 64
    assert json.loads(meta["classes"]) == ["background", "artifact"]


def test_safetensors_keeps_preprocessing(tiny_st):
    m = load_checkpoint(tiny_st)
    assert m.config.input_size == 64 and m.config.mean == (123.675, 116.28, 103.53)


@pytest.mark.parametrize("overrides", [
    dict(embed_dim=24, depths=(2, 2, 4, 2), num_heads=(2, 3, 6, 12), window=7),
    dict(embed_dim=16, depths=(1, 1, 3, 1), num_heads=(1, 2, 2, 4), window=4, head_channels=24, aux_channels=8),
])
def test_architecture_is_inferred_from_shapes(tmp_path, overrides):
    cfg = preset("tiny", **overrides)
    model = randomise(build_model(cfg), seed=1)
    path = write_mmseg_checkpoint(model, tmp_path / "variant.pth")
    loaded = load_checkpoint(path, with_aux=True)
    for k, v in overrides.items():
        assert getattr(loaded.config, k) == v, k


def test_swin_b_shapes_give_the_released_architecture():
    sd = {k: torch.empty(v.shape) for k, v in build_model("swin_b").state_dict().items()}
    cfg = infer_config(sd)
    assert dataclasses.replace(cfg, input_size=512) == preset("swin_b")


def test_prefixed_and_wrapped_state_dicts(tiny_pth, tmp_path):
    sd = torch.load(tiny_pth, weights_only=True)["state_dict"]
    path = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, path)
    assert _same_outputs(load_checkpoint(path), load_checkpoint(tiny_pth)) == 0.0


# ---------------------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.pth"
    p.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(p)


def test_truncated_file(tiny_pth, tmp_path):
    data = tiny_pth.read_bytes()
    p = tmp_path / "cut.pth"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(p)


def test_truncated_safetensors(tiny_st, tmp_path):
    data = tiny_st.read_bytes()
    p = tmp_path / "cut.safetensors"
    p.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(p)


def test_not_a_model_file(tmp_path):
    p = tmp_path / "notes.pth"
    p.write_text("hello, this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a model file"):
        load_checkpoint(p)


def test_random_pth(tmp_path):
    p = tmp_path / "random.pth"
    torch.save({"weight": torch.randn(3, 3), "fc.bias": torch.randn(3)}, p)
    with pytest.raises(CheckpointError, match="no PAL4VST segmenter weights"):
        load_checkpoint(p)


@pytest.mark.parametrize("layout", ["timm", "mmseg_pretrain"])
def test_imagenet_swin_backbone(tmp_path, layout):
    if layout == "timm":
        sd = {"patch_embed.proj.weight": torch.randn(16, 3, 4, 4), "layers.0.blocks.0.attn.qkv.weight": torch.randn(48, 16),
              "head.fc.weight": torch.randn(1000, 128)}
    else:
        sd = {f"backbone.{k}": v for k, v in build_model("tiny").backbone.state_dict().items()}
    p = tmp_path / "swin_in22k.pth"
    torch.save({"state_dict": sd}, p)
    with pytest.raises(CheckpointError, match="ImageNet classification"):
        load_checkpoint(p)


def test_nineteen_class_segmenter(tmp_path):
    model = randomise(build_model(preset("tiny", num_classes=19)))
    p = write_mmseg_checkpoint(model, tmp_path / "cityscapes.pth")
    with pytest.raises(CheckpointError, match="segments 19 classes"):
        load_checkpoint(p)


def test_mismatched_keys_are_named(tiny_pth, tmp_path):
    sd = torch.load(tiny_pth, weights_only=True)["state_dict"]
    sd.pop("decode_head.fpn_bottleneck.conv.weight")
    sd["decode_head.lateral_convs.0.conv.weight"] = torch.randn(7, 16, 1, 1)
    p = tmp_path / "broken.pth"
    torch.save({"state_dict": sd}, p)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    assert "decode_head.fpn_bottleneck.conv.weight" in str(e.value)
    assert "decode_head.lateral_convs.0.conv.weight" in str(e.value)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['PAL4VST_TEST_MARKER']}",))


def test_code_in_a_checkpoint_is_never_run(tiny_pth, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PAL4VST_TEST_MARKER", str(marker))
    sd = torch.load(tiny_pth, weights_only=True)["state_dict"]
    p = tmp_path / "evil.pth"
    torch.save({"state_dict": sd, "payload": _Evil()}, p)
    with pytest.raises(CheckpointError, match="asks to run code.*posix.system"):
        load_checkpoint(p)
    assert not marker.exists()


class Leftover:  # stands for training objects (MMEngine's HistoryBuffer) saved beside the weights
    def __init__(self):
        self.history = [1.0, 2.0]


def test_unknown_training_objects_become_inert(tiny_pth, tmp_path):
    sd = torch.load(tiny_pth, weights_only=True)["state_dict"]
    p = tmp_path / "leftovers.pth"
    torch.save({"state_dict": sd, "message_hub": {"log": Leftover()}}, p)
    assert load_checkpoint(p).output == "logits"


def test_pickled_module_is_refused(tmp_path):
    p = tmp_path / "whole_model.pth"
    torch.save(build_model("tiny"), p)
    with pytest.raises(CheckpointError, match="pickled Python object"):
        load_checkpoint(p)


def test_legacy_pickle_format(tiny_pth, tmp_path):
    sd = torch.load(tiny_pth, weights_only=True)["state_dict"]
    p = tmp_path / "legacy.pth"
    torch.save({"state_dict": sd}, p, _use_new_zipfile_serialization=False)
    assert sniff(p) == "torch-legacy"
    assert load_checkpoint(p).output == "logits"


def test_torchscript_with_foreign_names_runs_as_label_map(tmp_path):
    class Other(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return self.conv(x).argmax(1, keepdim=True)

    p = tmp_path / "end2end.pt"
    torch.jit.trace(Other().eval(), torch.randn(1, 3, 8, 8)).save(str(p))
    loaded = load_checkpoint(p)
    assert loaded.output == "labels"
    out = loaded.module(torch.randn(1, 3, 16, 16))
    assert out.shape == (1, 1, 16, 16) and set(out.unique().tolist()) <= {0, 1}


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "data.pkl"
    p.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match=r"data\.pkl is truncated or corrupt"):
        load_checkpoint(p)
