"""The AlwaysOn fix over a webui batch (issue #23): each image repairs with seeds counted from its
own seed (``p.all_seeds`` at its index, as Forge's ``process_images`` hands it over), seeds count
on over passes, and each image's infotext says where its seeds started. The webui's modules are
stood in for; the script, the pipeline, the inpainter and the core are the real ones."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import A, A_LEVEL, FAR_B, FAR_WIDTH, centre_level, load_extension, two_squares


class Img2Img:
    """Stands in for StableDiffusionProcessingImg2Img: records its seed and batch size."""

    jobs: list[tuple[int, int]] = []

    def __init__(self, init_images, mask, seed, batch_size, **_):
        self.crop, self.mask, self.seed, self.batch_size = init_images[0], mask, seed, batch_size
        Img2Img.jobs.append((seed, batch_size))

    def close(self):
        pass


def process_images(job):
    """Square A's crop comes back dark inside its mask (a repair the detector accepts); every other
    crop comes back as it went (reverted), so a second pass finds square B again."""
    crop = np.asarray(job.crop).copy()
    if abs(centre_level(crop) - A_LEVEL) < 5:
        crop[np.asarray(job.mask) > 0] = 25
    return types.SimpleNamespace(images=[Image.fromarray(crop)] * job.batch_size)


@pytest.fixture
def webui(tmp_path, monkeypatch, bright_st):
    (tmp_path / "models" / "pal4vst").mkdir(parents=True)
    (tmp_path / "models" / "pal4vst" / "bright.safetensors").write_bytes(bright_st.read_bytes())
    register = lambda *a, **k: None  # noqa: E731
    stubs = {
        "paths": types.SimpleNamespace(models_path=str(tmp_path / "models")),
        "script_callbacks": types.SimpleNamespace(on_ui_settings=register, on_app_started=register,
                                                  on_ui_tabs=register, on_before_ui=register),
        "scripts": types.SimpleNamespace(Script=object, AlwaysVisible=object()),
        "shared": types.SimpleNamespace(opts=types.SimpleNamespace(pal4vst_device="cpu", pal4vst_dtype="fp32"),
                                        state=types.SimpleNamespace(interrupted=False, skipped=False)),
        "processing": types.SimpleNamespace(StableDiffusionProcessingImg2Img=Img2Img, process_images=process_images),
    }
    modules = types.ModuleType("modules")
    for name, mod in stubs.items():
        setattr(modules, name, mod)
        monkeypatch.setitem(sys.modules, f"modules.{name}", mod)
    monkeypatch.setitem(sys.modules, "modules", modules)
    monkeypatch.setitem(sys.modules, "gradio", types.ModuleType("gradio"))  # imported, not used, by the script
    for m in [m for m in sys.modules if m.startswith("pal4vst_extension")]:
        monkeypatch.delitem(sys.modules, m)
    load_extension()
    import pal4vst_extension.webui_script as script_module

    monkeypatch.setattr(script_module, "_services", None)
    Img2Img.jobs = []
    return script_module


def generate(script_module, seeds: list[int], fix: dict, batch_size: int = 3):
    """Forge's loop over one job's images (modules/processing.py): for image i, ``p.batch_index``,
    then ``postprocess_image(p, PostprocessImageArgs(image, i + iteration * batch_size))``, then
    that image's infotext from ``p.extra_generation_params`` as they are then. Returns, per image,
    the img2img seeds its fix used and its infotext's PAL4VST entries."""
    from pal4vst_extension.args import PALArgs

    args = PALArgs.parse({"enabled": True, "model": "bright.safetensors", "work_size": 64, "iterations": 2, **fix})
    p = types.SimpleNamespace(all_seeds=list(seeds), seed=seeds[0], batch_size=batch_size, iteration=0, prompt="x",
                              negative_prompt="", extra_generation_params={}, scripts=None, script_args=[])
    script = script_module.PAL4VSTScript()
    out = []
    for n in range(len(seeds) // batch_size):
        p.iteration = n
        for i in range(batch_size):
            p.batch_index = i
            before = len(Img2Img.jobs)
            pp = types.SimpleNamespace(image=Image.fromarray(two_squares(w=FAR_WIDTH, b=FAR_B)),
                                       index=i + n * batch_size)
            script.postprocess_image(p, pp, *[getattr(args, name) for name in PALArgs.names()])
            info = {k: str(v) for k, v in p.extra_generation_params.items() if k.startswith("PAL4VST")}
            out.append(([s for s, _ in Img2Img.jobs[before:]], info, pp.image))
    return out


def test_each_image_of_a_batch_repairs_with_its_own_seed(webui):
    seeds = [1000, 2000, 3000]
    made = generate(webui, seeds, {})
    assert len(made) == 3
    for (used, info, image), own in zip(made, seeds):
        # pass 0: crops 0 and 1 (A kept, B reverted); pass 1: crop 2, square B again, counting on
        assert used and sorted(used) == [own, own + 1, own + 2], used
        assert info["PAL4VST fix seed"] == str(own)
        assert (info["PAL4VST regions kept"], info["PAL4VST regions judged"]) == ("1", "3")
        assert np.asarray(image)[(A[0] + A[2]) // 2, (A[1] + A[3]) // 2].max() <= 30  # A was repaired


def test_a_fixed_fix_seed_counts_on_over_the_batch(webui):
    made = generate(webui, [1000, 2000, 3000, 4000, 5000, 6000], {"seed": 50})  # two iterations of 3
    used = [u for u, _, _ in made]
    assert len(used) == 6 and all(len(u) == 3 for u in used)
    assert sorted(s for u in used for s in u) == list(range(50, 50 + 18))  # no image repeats another's seeds
    assert [info["PAL4VST fix seed"] for _, info, _ in made] == [str(50 + 3 * i) for i in range(6)]


def test_candidates_are_one_job_of_consecutive_seeds(webui):
    made = generate(webui, [700, 800, 900], {"candidates": 2, "iterations": 1})
    for (used, info, _), own in zip(made, [700, 800, 900]):
        assert sorted(used) == [own, own + 2]  # crop k: one job of batch 2, seeds own + 2k + j
        assert Img2Img.jobs and all(size == 2 for _, size in Img2Img.jobs)


@dataclass
class Img2ImgWithoutScheduler:
    """StableDiffusionProcessingImg2Img as a webui before A1111 1.9 (and Forge Classic) declares it:
    a dataclass of named fields, no ``scheduler`` among them, no ``**kwargs``."""

    init_images: list = None
    mask: Any = None
    mask_blur: int = None
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    denoising_strength: float = 0.75
    resize_mode: int = 0
    inpainting_mask_invert: int = 0
    sd_model: object = None
    outpath_samples: str = None
    outpath_grids: str = None
    prompt: str = ""
    negative_prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    sampler_name: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    override_settings: dict = None
    extra_generation_params: dict = None

    def __post_init__(self):
        self.crop = self.init_images[0]
        Img2Img.jobs.append((self.seed, self.batch_size))

    def close(self):
        pass


def test_the_fix_runs_on_a_webui_without_a_scheduler_field(webui, monkeypatch):
    """Forge Classic answered every fix with ``__init__() got an unexpected keyword argument
    'scheduler'``: the job now carries only the fields the host's class has."""
    monkeypatch.setattr(sys.modules["modules.processing"], "StableDiffusionProcessingImg2Img", Img2ImgWithoutScheduler)
    made = generate(webui, [1000, 2000, 3000], {})
    assert len(made) == 3
    for (used, info, image), own in zip(made, [1000, 2000, 3000]):
        assert used and min(used) == own
        assert info["PAL4VST regions kept"] == "1"
        assert np.asarray(image)[(A[0] + A[2]) // 2, (A[1] + A[3]) // 2].max() <= 30  # A was repaired


def test_a_webui_lacking_an_essential_field_is_named(webui, monkeypatch):
    from pal4vst_extension.webui_inpaint import host_kwargs

    @dataclass
    class NoMask:
        init_images: list = None

    with pytest.raises(RuntimeError, match="has no mask"):
        host_kwargs(NoMask, {"init_images": [], "mask": None, "scheduler": None})
    assert host_kwargs(NoMask, {"init_images": [1], "scheduler": "x"}) == {"init_images": [1]}
