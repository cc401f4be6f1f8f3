"""The AlwaysOn "PAL4VST" script, its settings and callbacks. Imports the webui: only loaded by
``scripts/pal4vst.py`` inside AUTOMATIC1111 / Forge.

UI code sticks to what gradio 3.41 (A1111 1.10) and gradio 4.40 (Forge) both accept: no
``.style()``, no ``source=``, no ``_js=``/``js=`` on events.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
from modules import paths, script_callbacks, scripts, shared

from .args import SCRIPT_TITLE, ArgsError, PALArgs, infotext_key
from .pipeline import auto_fix
from .services import Services
from .webui_inpaint import INNER_FLAG, WebuiInpainter

log = logging.getLogger("pal4vst")
SECTION = ("pal4vst", "PAL4VST")
_services: Services | None = None


def models_dir() -> Path:
    custom = getattr(shared.opts, "pal4vst_models_dir", "") if shared.opts else ""
    return Path(custom) if custom else Path(paths.models_path) / "pal4vst"


def services() -> Services:
    """One Services for the whole webui, following the settings."""
    global _services
    device = getattr(shared.opts, "pal4vst_device", "auto") or "auto"
    dtype = getattr(shared.opts, "pal4vst_dtype", "auto") or "auto"
    folder = models_dir()
    if _services is None or (_services.device, _services.dtype, _services.model_dirs) != (device, dtype, [folder]):
        folder.mkdir(parents=True, exist_ok=True)
        _services = Services(model_dirs=[folder], device=device, dtype=dtype)
    return _services


def default_model() -> str:
    return getattr(shared.opts, "pal4vst_default_model", "unified") or "unified"


def sampler_names() -> list[str]:
    try:
        from modules import sd_samplers

        return [""] + list(sd_samplers.visible_sampler_names())
    except Exception:  # noqa: BLE001 - an older webui: free text is fine
        return [""]


class PAL4VSTScript(scripts.Script):
    """Finds the broken regions after generation and re-inpaints each one zoomed in."""

    def title(self) -> str:
        return SCRIPT_TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        tab = "img2img" if is_img2img else "txt2img"
        d = PALArgs(model=default_model())
        with gr.Accordion("PAL4VST: fix artifacts", open=False, elem_id=f"pal4vst_{tab}"):
            with gr.Row():
                enabled = gr.Checkbox(label="Enable", value=False, elem_id=f"pal4vst_{tab}_enabled")
                skip_img2img = gr.Checkbox(label="Skip in img2img", value=False, visible=is_img2img)
                model = gr.Dropdown(label="PAL4VST model", choices=services().model_choices(), value=d.model)
            with gr.Row():
                threshold = gr.Slider(0.01, 0.99, value=d.threshold, step=0.01, label="Threshold")
                min_par = gr.Slider(0.0, 0.5, value=d.min_par, step=0.001, label="Only fix when PAR is above")
                target_par = gr.Slider(0.0, 0.5, value=d.target_par, step=0.001, label="Target PAR (0 = one pass)")
                iterations = gr.Slider(1, 5, value=d.iterations, step=1, label="Passes")
            with gr.Row():
                grow = gr.Slider(-64, 128, value=d.grow, step=1, label="Grow mask (px)")
                min_area = gr.Slider(0, 10000, value=d.min_area, step=1, label="Minimum region area (px)")
                max_regions = gr.Slider(0, 32, value=d.max_regions, step=1, label="Max regions (0 = all)")
            with gr.Row():
                context = gr.Slider(1.0, 4.0, value=d.context, step=0.05, label="Context (crop / region)")
                work_size = gr.Slider(256, 2048, value=d.work_size, step=64, label="Working size")
                feather = gr.Slider(0, 64, value=d.feather, step=1, label="Feather (px)")
                mask_blur = gr.Slider(0, 64, value=d.mask_blur, step=1, label="Mask blur")
            with gr.Row():
                prompt = gr.Textbox(label="Fix prompt (blank = main prompt)", lines=2)
                negative_prompt = gr.Textbox(label="Fix negative prompt (blank = main)", lines=2)
            with gr.Row():
                denoise = gr.Slider(0.0, 1.0, value=d.denoise, step=0.01, label="Denoising strength")
                steps = gr.Slider(1, 150, value=d.steps, step=1, label="Steps")
                cfg = gr.Slider(1.0, 30.0, value=d.cfg, step=0.5, label="CFG scale")
                sampler = gr.Dropdown(label="Sampler (blank = main)", choices=sampler_names(), value="")
                seed = gr.Number(label="Seed (-1 = image seed)", value=-1, precision=0)
        comps = dict(enabled=enabled, model=model, threshold=threshold, grow=grow, min_area=min_area,
                     max_regions=max_regions, context=context, work_size=work_size, min_par=min_par, prompt=prompt,
                     negative_prompt=negative_prompt, denoise=denoise, steps=steps, cfg=cfg, sampler=sampler,
                     mask_blur=mask_blur, feather=feather, seed=seed, iterations=iterations, target_par=target_par,
                     skip_img2img=skip_img2img)
        self.infotext_fields = [(enabled, lambda params: infotext_key("model") in params)]
        self.infotext_fields += [(comps[n], infotext_key(n)) for n in PALArgs.names() if n != "enabled"]
        self.paste_field_names = [infotext_key(n) for n in PALArgs.names() if n != "enabled"]
        return [comps[n] for n in PALArgs.names()]

    def postprocess_image(self, p, pp, *args):
        if getattr(p, INNER_FLAG, False):
            return  # our own inner img2img: never recurse
        try:
            a = PALArgs.parse(args)
        except ArgsError as e:
            log.error("PAL4VST: %s", e)
            return
        if not a.enabled or (a.skip_img2img and hasattr(p, "init_images")):
            return
        detector = services().detector(a.model, threshold=a.threshold)
        res = auto_fix(pp.image, a, detector, WebuiInpainter(p, a))
        p.extra_generation_params.update(a.infotext())
        p.extra_generation_params.update(res.infotext())
        if res.changed:
            pp.image = res.image


def on_ui_settings() -> None:
    opts = [
        ("pal4vst_default_model", shared.OptionInfo("unified", "Default PAL4VST model (release name or file)")),
        ("pal4vst_models_dir", shared.OptionInfo("", "PAL4VST models folder (blank = models/pal4vst)")),
        ("pal4vst_device", shared.OptionInfo("auto", "PAL4VST device", gr.Dropdown,
                                              {"choices": ["auto", "cpu", "cuda", "mps"]})),
        ("pal4vst_dtype", shared.OptionInfo("auto", "PAL4VST precision", gr.Dropdown,
                                             {"choices": ["auto", "fp32", "fp16", "bf16"]})),
    ]
    for key, info in opts:
        info.section = SECTION
        shared.opts.add_option(key, info)


def on_app_started(_demo, app) -> None:
    from .api import install_args_validator, register_routes

    from .webui_inpaint import standalone_inpainter

    register_routes(app, services(), standalone_inpainter)
    install_args_validator(app)


def on_ui_tabs():
    from .webui_tab import build_tab

    return [(build_tab(services, default_model), "PAL4VST", "pal4vst_tab")]


script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_app_started(on_app_started)
script_callbacks.on_ui_tabs(on_ui_tabs)
