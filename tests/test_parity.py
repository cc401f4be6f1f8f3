"""The most important test: our model is MMSegmentation's model, number for number.

The fixture was written by tools/make_mmseg_parity_fixture.py with MMSegmentation 1.2.2 itself
(shrunken Swin + UPerHead + FCN head, every weight and BN statistic randomised, the artifact logit
centred so that label maps are mixed, inputs of odd sizes so that window padding and PatchMerging
padding are exercised), and its end2end.pt by mmdeploy 1.3.1's own TorchScript exporter.
"""

from __future__ import annotations

import pytest
import torch

from pal4vst.model.checkpoint import load_checkpoint

from conftest import FIXTURES

PARITY = FIXTURES / "mmseg_tiny"


@pytest.fixture(scope="module")
def fixture():
    if not (PARITY / "checkpoint.pth").is_file():
        pytest.fail("the committed MMSegmentation parity fixture is missing")
    return (load_checkpoint(PARITY / "checkpoint.pth"), torch.load(PARITY / "inputs.pt", weights_only=True),
            torch.load(PARITY / "logits.pt", weights_only=True))


def test_logits_match_mmsegmentation(fixture):
    model, inputs, logits = fixture
    assert len(inputs) == 3
    with torch.no_grad():
        for x, want in zip(inputs, logits):
            got = model.module(x)
            assert got.shape == want.shape
            diff = (got - want).abs().max().item()
            assert diff <= 1e-5, f"input {tuple(x.shape)}: max abs logit difference {diff}"  # as the README says
            assert want.abs().max().item() > 1.0  # the fixture is not trivially near zero


def test_checkpoint_with_training_leftovers_loads_without_mmengine(fixture):
    # The fixture carries MMEngine's message hub (HistoryBuffer, numpy arrays); mmengine is not
    # installed here, and the loader must neither import nor need it.
    import sys

    model, _, _ = fixture
    assert "mmengine" not in sys.modules
    assert model.config.depths == (2, 2, 2, 2) and model.config.window == 6


def test_aux_head_matches_when_kept(fixture):
    """The auxiliary head computes MMSegmentation's FCNHead (one 3x3 conv + BN + ReLU, no
    concat_input, a 1x1 classifier) on stage 3 with the file's own tensors, recomputed here with
    torch.nn.functional from the raw state dict."""
    import torch.nn.functional as F

    from pal4vst.model.checkpoint import read_file

    model = load_checkpoint(PARITY / "checkpoint.pth", with_aux=True)
    assert model.module.auxiliary_head is not None
    assert model.config.aux_channels == 16 and model.config.aux_index == 2
    raw = {k: v.float() for k, v in read_file(PARITY / "checkpoint.pth")[0].items()}
    p = "auxiliary_head."
    _, inputs, _ = fixture
    assert len(inputs) == 3
    with torch.no_grad():
        for x in inputs:
            feats = model.module.backbone(x)[2]
            h = F.conv2d(feats, raw[p + "convs.0.conv.weight"], padding=1)
            h = F.batch_norm(h, raw[p + "convs.0.bn.running_mean"], raw[p + "convs.0.bn.running_var"],
                             raw[p + "convs.0.bn.weight"], raw[p + "convs.0.bn.bias"], eps=1e-5)
            want = F.conv2d(F.relu(h), raw[p + "conv_seg.weight"], raw[p + "conv_seg.bias"])
            got = model.module.auxiliary_head(feats)
            assert got.shape == want.shape and want.abs().max() > 0.1
            assert (got - want).abs().max().item() <= 1e-5


def test_mmdeploy_end2end_loads_into_eager_model(fixture):
    """end2end.pt as mmdeploy writes it: MMSegmentation's EncoderDecoder traced by mmdeploy's own
    exporter (data_preprocessor buffers and auxiliary head included, argmax label map out)."""
    _, inputs, logits = fixture
    loaded = load_checkpoint(PARITY / "end2end.pt")
    assert loaded.kind == "torchscript" and loaded.output == "logits"
    assert loaded.config.mean == (123.675, 116.28, 103.53) and loaded.config.std == (58.395, 57.12, 57.375)
    assert len(inputs) == 3
    with torch.no_grad():
        for x, want in zip(inputs, logits):
            assert (loaded.module(x) - want).abs().max().item() <= 1e-5
        graph = torch.jit.load(str(PARITY / "end2end.pt"))
        labels = graph(inputs[0])  # traced at the first input's size
        ours = loaded.module(inputs[0]).argmax(1, keepdim=True)
    assert labels.shape == ours.shape and 0 < labels.float().mean() < 1
    assert torch.equal(labels, ours)


def test_mmdeploy_preprocessing_is_taken_from_the_file(tmp_path, caplog):
    graph = torch.jit.load(str(PARITY / "end2end.pt"))
    graph.data_preprocessor.std.copy_(torch.tensor([50.0, 50.0, 50.0]).view(3, 1, 1))
    path = tmp_path / "end2end.pt"
    graph.save(str(path))
    with caplog.at_level("WARNING", logger="pal4vst.model.checkpoint"):
        loaded = load_checkpoint(path)
    assert loaded.output == "logits" and loaded.config.std == (50.0, 50.0, 50.0)
    assert loaded.config.mean == (123.675, 116.28, 103.53)
    assert "not the release's" in caplog.text and "std (50.0, 50.0, 50.0)" in caplog.text


class _Traced(torch.nn.Module):
    """An exporter wrapper around the parity model with one tensor that maps onto nothing."""

    def __init__(self, inner, argmax: bool):
        super().__init__()
        self.backbone, self.decode_head, self.argmax = inner.backbone, inner.decode_head, argmax
        self.calibration = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        logits = self.decode_head(self.backbone(x))
        logits = torch.nn.functional.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)
        return logits.argmax(1, keepdim=True) if self.argmax else logits


@pytest.mark.parametrize("argmax", [True, False])
def test_unmappable_torchscript_runs_its_own_graph(fixture, tmp_path, caplog, argmax):
    from pal4vst.detect import Detector

    model, inputs, logits = fixture
    path = tmp_path / "end2end.pt"
    torch.jit.trace(_Traced(model.module, argmax).eval(), torch.zeros(1, 3, 64, 64)).save(str(path))
    with caplog.at_level("WARNING", logger="pal4vst.model.checkpoint"):
        loaded = load_checkpoint(path)
    assert caplog.text.count("running the graph itself") == 1 and "calibration" in caplog.text
    assert loaded.output == ("labels" if argmax else "logits")
    x = inputs[0]
    with torch.no_grad():
        out = loaded.module(x)
    want = logits[0].argmax(1, keepdim=True)
    assert torch.equal(out.long(), want) if argmax else (out - logits[0]).abs().max().item() <= 1e-5
    img = (torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy()
    det = Detector(loaded, device="cpu", dtype="fp32")(img)
    assert det.mask.shape == (64, 64)
    if argmax:
        assert set(det.prob.flatten().tolist()) <= {0.0, 1.0}
        assert (det.prob == det.mask).all()
    else:
        assert ((det.prob > 0) & (det.prob < 1)).any()


def test_torchscript_that_is_no_segmenter_is_refused(tmp_path):
    from pal4vst.model.checkpoint import CheckpointError

    classifier = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                     torch.nn.Linear(4, 1000))
    path = tmp_path / "classifier.pt"
    torch.jit.trace(classifier.eval(), torch.zeros(1, 3, 32, 32)).save(str(path))
    with pytest.raises(CheckpointError, match=r"not a PAL4VST segmenter.*shape \(1, 1000\)"):
        load_checkpoint(path)


def test_convert_and_selfcheck_on_the_mmdeploy_file(fixture, tmp_path, capsys):
    """The commands a user runs on the authors' end2end.pt: convert keeps every number, and
    selfcheck reproduces the graph's own mask made the authors' way (official_deployment_test.py:
    512x512 input, normalised, label map saved as 0/255)."""
    import numpy as np
    from PIL import Image

    from pal4vst.cli.main import main

    _, inputs, logits = fixture
    out = tmp_path / "unified.safetensors"
    assert main(["convert", str(PARITY / "end2end.pt"), str(out)]) == 0
    converted = load_checkpoint(out, with_aux=True)
    assert converted.module.auxiliary_head is not None
    with torch.no_grad():
        assert (converted.module(inputs[1]) - logits[1]).abs().max().item() <= 1e-5

    rng = np.random.default_rng(3)
    img = np.clip(rng.normal(128, 60, (512, 512, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)) \
        / torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    with torch.no_grad():
        mask = torch.jit.load(str(PARITY / "end2end.pt"))(x)[0, 0].numpy().astype(np.uint8) * 255
    assert 0.01 < (mask > 0).mean() < 0.99  # a mask with something to agree on
    Image.fromarray(mask).save(tmp_path / "expected.png")
    code = main(["selfcheck", "--model", str(PARITY / "end2end.pt"), "--image", str(tmp_path / "img.png"),
                 "--expected", str(tmp_path / "expected.png"), "--min-iou", "0.99"])
    assert code == 0 and "PASS" in capsys.readouterr().out
