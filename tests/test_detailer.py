"""PAL Detailer with ComfyUI's modules stood in for: the stand-in VAE is the identity on pixels,
the stand-in sampler paints each latent as the noise's seed says, so every candidate is known.
Checks verification, the conditioning switch for inpainting models, one sampling call of K
latents per crop, the seed rule over crops and images, passes and target_par, and the report."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from conftest import A, A_LEVEL, FAR_B, FAR_WIDTH, ROOT, centre_level, two_squares

sys.path.insert(0, str(ROOT))
from nodes.detailer import PALDetailer  # noqa: E402
from nodes.model_node import PALLoadModel  # noqa: E402

B = FAR_B
BASE_SEED = 40


class IdentityVAE:
    def encode(self, pixels):  # [B, H, W, 3] -> [B, 3, H, W]
        return pixels.permute(0, 3, 1, 2).clone()

    def decode(self, samples):
        return samples.permute(0, 2, 3, 1).clone()


class Comfy:
    """Stand-ins for ComfyUI's ``nodes`` and ``comfy.sample``, recording every call."""

    def __init__(self, dark_seeds=lambda seed: seed % 2 == 1) -> None:
        self.dark_seeds = dark_seeds
        self.sample_calls: list[dict] = []
        self.encodes: list[str] = []

    def modules(self) -> dict[str, types.ModuleType]:
        comfy_nodes = types.ModuleType("nodes")
        outer = self

        class VAEEncode:
            def encode(self, vae, pixels):
                outer.encodes.append("vae")
                return ({"samples": vae.encode(pixels)},)

        class SetLatentNoiseMask:
            def set_mask(self, latent, mask):
                return ({**latent, "noise_mask": mask.reshape(-1, 1, *mask.shape[-2:])},)

        class InpaintModelConditioning:
            def encode(self, positive, negative, pixels, vae, mask, noise_mask=True):
                outer.encodes.append("inpaint")
                return (("inpaint", positive), ("inpaint", negative),
                        {"samples": vae.encode(pixels), "noise_mask": mask.reshape(-1, 1, *mask.shape[-2:])})

        comfy_nodes.VAEEncode, comfy_nodes.SetLatentNoiseMask = VAEEncode, SetLatentNoiseMask
        comfy_nodes.InpaintModelConditioning = InpaintModelConditioning

        sample = types.ModuleType("comfy.sample")

        def prepare_noise(latent, seed, inds=None):
            return torch.full(latent.shape, float(seed))  # the noise carries its seed

        def fake_sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                        denoise=1.0, noise_mask=None, callback=None, disable_pbar=False, seed=None):
            seeds = [int(n.flatten()[0]) for n in noise]
            outer.sample_calls.append({"batch": latent_image.shape[0], "seeds": seeds, "positive": positive,
                                       "steps": steps, "denoise": denoise})
            for step in range(steps):
                if callback is not None:
                    callback(step, latent_image, latent_image, steps)
            out = latent_image.clone()
            m = noise_mask[0, 0] > 0.5
            for b, s in enumerate(seeds):
                is_a = abs(centre_level(out[b].permute(1, 2, 0).numpy()) - A_LEVEL) < 5
                if is_a and outer.dark_seeds(s):
                    out[b][:, m] = 25 / 255
            return out

        sample.prepare_noise, sample.sample = prepare_noise, fake_sample
        comfy = types.ModuleType("comfy")
        comfy.sample = sample
        return {"nodes": comfy_nodes, "comfy": comfy, "comfy.sample": sample}


class Model:
    def __init__(self, inpaint: bool) -> None:
        self.model = types.SimpleNamespace(concat_keys=("mask", "masked_image") if inpaint else ())


@pytest.fixture
def pal_model(bright_st, monkeypatch):
    monkeypatch.setenv("PAL4VST_MODELS", str(bright_st.parent))
    return PALLoadModel().load(bright_st.name, "cpu", "fp32")[0]


def settings(**over):
    base = dict(steps=2, cfg=7.0, denoise=0.5, threshold=0.5, context=1.5, work_size=64, grow=8, min_area=16,
                max_regions=0, feather=4, iterations=1, target_par=0.0)
    return {**base, **over}


def run(pal_model, comfy: Comfy, images: np.ndarray, monkeypatch, inpaint=True, **over):
    for name, module in comfy.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    batch = torch.from_numpy(images.astype(np.float32) / 255)
    return PALDetailer().detail(batch, pal_model, Model(inpaint), IdentityVAE(), "pos", "neg", BASE_SEED, "euler",
                                "normal", **settings(**over))


def test_each_region_keeps_its_best_candidate_or_its_own_pixels(pal_model, monkeypatch):
    img = two_squares(w=FAR_WIDTH, b=FAR_B)
    comfy = Comfy()
    out = run(pal_model, comfy, img[None], monkeypatch, candidates=2)
    image, mask, before, after, crops_before, crops_after, report = out["result"]
    fixed = np.rint(image[0].numpy() * 255).astype(np.uint8)
    # one sampling call per crop, with K latents whose seeds follow the rule base + k * K + j
    assert len(comfy.sample_calls) == 2 and all(c["batch"] == 2 for c in comfy.sample_calls)
    assert [c["seeds"] for c in comfy.sample_calls] == [[40, 41], [42, 43]]
    assert comfy.encodes == ["inpaint", "inpaint"] and all(c["positive"] == ("inpaint", "pos")
                                                           for c in comfy.sample_calls)
    regions = json.loads(report)[0]["report"]
    assert len(regions) == 2
    a = next(r for r in regions if r["bbox"][0] < 200)
    b = next(r for r in regions if r["bbox"][0] >= 200)
    assert a["accepted"] and a["chosen"] == 1 and not b["accepted"]
    assert fixed[(A[0] + A[2]) // 2, (A[1] + A[3]) // 2].max() <= 30
    assert np.array_equal(fixed[B[0]:B[2], B[1]:B[3]], img[B[0]:B[2], B[1]:B[3]])
    m = mask[0].numpy() > 0
    assert m.any() and not m[B[0]:B[2], B[1]:B[3]].any() and np.array_equal(fixed[~m], img[~m])
    assert after[0] < before[0]
    assert "1 of 2 regions kept" in out["ui"]["text"][0] and "reverted" in out["ui"]["text"][0]
    assert crops_before.shape == crops_after.shape == (2, 64, 64, 3)


def test_other_models_sample_under_a_latent_noise_mask(pal_model, monkeypatch):
    comfy = Comfy()
    run(pal_model, comfy, two_squares(w=FAR_WIDTH, b=FAR_B)[None], monkeypatch, inpaint=False, candidates=2)
    assert comfy.encodes == ["vae", "vae"] and all(c["positive"] == "pos" for c in comfy.sample_calls)


def test_saved_workflows_without_the_new_inputs_run_as_before(pal_model, monkeypatch):
    """No candidates/verify/min_gain given (a workflow saved before they existed): one candidate
    per crop, verified, seeds base + k counted over the images of the batch."""
    img = two_squares(w=FAR_WIDTH, b=FAR_B)
    comfy = Comfy(dark_seeds=lambda seed: True)
    out = run(pal_model, comfy, np.stack([img, img]), monkeypatch)
    assert [c["seeds"] for c in comfy.sample_calls] == [[40], [41], [42], [43]]
    reports = json.loads(out["result"][6])
    assert [len(r["report"]) for r in reports] == [2, 2]
    for r in reports:
        assert sorted(x["accepted"] for x in r["report"]) == [False, True]  # A darkened and kept, B unchanged


def test_verify_off_keeps_every_repaint(pal_model, monkeypatch):
    img = two_squares(w=FAR_WIDTH, b=FAR_B)
    out = run(pal_model, Comfy(dark_seeds=lambda seed: False), img[None], monkeypatch, verify=False)
    regions = json.loads(out["result"][6])[0]["report"]
    assert len(regions) == 2 and all(r["accepted"] for r in regions)


def test_passes_stop_at_target_par(pal_model, monkeypatch):
    """The sampler darkens A (never B): pass 0 fixes A, B stays; with target_par above what B
    leaves the repair stops there, without it a second pass repaints B, which is reverted."""
    img = two_squares(w=FAR_WIDTH, b=FAR_B)
    b_par = (B[2] - B[0]) * (B[3] - B[1]) / img[..., 0].size
    comfy = Comfy(dark_seeds=lambda seed: True)
    out = run(pal_model, comfy, img[None], monkeypatch, iterations=3, target_par=b_par * 1.3)
    assert len(comfy.sample_calls) == 2  # one pass only
    comfy = Comfy(dark_seeds=lambda seed: True)
    out = run(pal_model, comfy, img[None], monkeypatch, iterations=3)
    assert len(comfy.sample_calls) == 3  # pass 1 repaints B once more, is reverted, and the repair ends
    assert [r["pass_index"] for r in json.loads(out["result"][6])[0]["report"]] == [0, 0, 1]


def test_optional_inputs_come_after_the_saved_widgets():
    spec = PALDetailer.INPUT_TYPES()
    assert list(spec["optional"]) == ["candidates", "verify", "min_gain"]
    assert PALDetailer.RETURN_NAMES[-1] == "report" and PALDetailer.RETURN_TYPES[-1] == "STRING"
    assert len(PALDetailer.RETURN_TYPES) == len(PALDetailer.OUTPUT_IS_LIST) == len(PALDetailer.OUTPUT_TOOLTIPS)
