"""The most important test: our model is MMSegmentation's model, number for number.

The fixture was written by tools/make_mmseg_parity_fixture.py with MMSegmentation 1.2.2 itself
(shrunken Swin + UPerHead + FCN head, every weight and BN statistic randomised, inputs of odd
sizes so that window padding and PatchMerging padding are exercised).
"""

from __future__ import annotations

import pytest
import torch

from pal4vst.checkpoint import load_checkpoint

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
            assert diff <= 1e-4, f"input {tuple(x.shape)}: max abs logit difference {diff}"
            assert want.abs().max().item() > 1.0  # the fixture is not trivially near zero


def test_checkpoint_with_training_leftovers_loads_without_mmengine(fixture):
    # The fixture carries MMEngine's message hub (HistoryBuffer, numpy arrays); mmengine is not
    # installed here, and the loader must neither import nor need it.
    import sys

    model, _, _ = fixture
    assert "mmengine" not in sys.modules
    assert model.config.depths == (2, 2, 2, 2) and model.config.window == 6


def test_aux_head_matches_when_kept():
    model = load_checkpoint(PARITY / "checkpoint.pth", with_aux=True)
    assert model.module.auxiliary_head is not None
    assert model.config.aux_channels == 16 and model.config.aux_index == 2


def test_torchscript_release_layout_loads_into_eager_model(tmp_path, fixture):
    """mmdeploy's end2end.pt: a traced EncoderDecoder, normalised input, argmax label map out."""
    model, inputs, logits = fixture

    class End2End(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.backbone = inner.backbone
            self.decode_head = inner.decode_head
            self.inner = [inner]

        def forward(self, x):
            return self.inner[0](x).argmax(1, keepdim=True)

    x = inputs[0]
    traced = torch.jit.trace(End2End(model.module).eval(), x)
    path = tmp_path / "end2end.pt"
    traced.save(str(path))
    loaded = load_checkpoint(path)
    assert loaded.kind == "torchscript" and loaded.output == "logits"
    with torch.no_grad():
        assert (loaded.module(x) - logits[0]).abs().max().item() <= 1e-4
