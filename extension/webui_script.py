"""The AlwaysOn "PAL4VST" script, its settings and callbacks. Imports the webui: only loaded by
``scripts/pal4vst.py`` inside AUTOMATIC1111 / Forge.

UI code sticks to what gradio 3.41 (A1111 1.10) and gradio 4.40 (Forge) both accept: no
``.style()``, no ``source=``, no ``_js=``/``js=`` on events.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
from modules import paths, script_callbacks, scripts, shared

from pal4vst.options import declaration
from pal4vst.settings import DetectOptions, ModelSource

from .args import SCRIPT_TITLE, ArgsError, PALArgs, infotext_key
from .controls import build
from .pipeline import auto_fix
from .services import Services
from .ui_config import TAB, TAB_MODEL_LABEL, refresh
from .webui_inpaint import INNER_FLAG, NEXT_CROP, WebuiInpainter, fix_seed

log = logging.getLogger("pal4vst")
SECTION = ("pal4vst", "PAL4VST")
_DEFAULT_MODEL = declaration(ModelSource, "model").default
_services: Services | None = None


def models_dir() -> Path:
    custom = getattr(shared.opts, "pal4vst_models_dir", "") if shared.opts else ""
    return Path(custom) if custom else Path(paths.models_path) / "pal4vst"


def services() -> Services:
    """One Services for the whole webui, following the settings."""
    global _services
    device = getattr(shared.opts, "pal4vst_device", "") or declaration(DetectOptions, "device").default
    dtype = getattr(shared.opts, "pal4vst_dtype", "") or declaration(DetectOptions, "dtype").default
    folder = models_dir()
    if _services is None or (_services.device, _services.dtype, _services.model_dirs) != (device, dtype, [folder]):
        folder.mkdir(parents=True, exist_ok=True)
        _services = Services(model_dirs=[folder], device=device, dtype=dtype)
    return _services


def default_model() -> str:
    return getattr(shared.opts, "pal4vst_default_model", _DEFAULT_MODEL) or _DEFAULT_MODEL


def sampler_names() -> list[str]:
    try:
        from modules import sd_samplers

        return [""] + list(sd_samplers.visible_sampler_names())
    except Exception:  # noqa: BLE001 - an older webui: free text is fine
        return [""]


def _row(*names: str) -> list:
    return [build(gr, n) for n in names]


ACCORDION_LABEL = "PAL4VST: fix artifacts"


@contextmanager
def _accordion(tab: str):
    """The accordion, its enable checkbox in the header where the webui has ``InputAccordion``
    (A1111 1.7+, Forge), as FreeU, SAG and ADetailer do; else a plain accordion (yields None)."""
    try:
        from modules.ui_components import InputAccordion
    except ImportError:
        InputAccordion = None
    if InputAccordion is None:
        with gr.Accordion(ACCORDION_LABEL, open=False, elem_id=f"pal4vst_{tab}"):
            yield None
        return
    with InputAccordion(declaration(PALArgs, "enabled").default, label=ACCORDION_LABEL,
                        elem_id=f"pal4vst_{tab}") as enabled:
        yield enabled


def _model_dropdown(choices: list[str], label: str | None = None, elem_id: str | None = None):
    """A model dropdown that opens on Settings → PAL4VST → Default model on every start (the webui
    neither saves it to nor restores it from ui-config.json), with the webui's refresh button
    beside it where the webui has one: a model fine-tuned in the tab appears without a restart."""
    dropdown = gr.Dropdown(label=label or declaration(PALArgs, "model").label, choices=choices,
                           value=default_model(), elem_id=elem_id)
    dropdown.do_not_save_to_config = True
    try:
        from modules.ui_common import create_refresh_button
    except ImportError:
        return dropdown
    create_refresh_button(dropdown, lambda: None, lambda: {"choices": services().model_choices()},
                          f"{elem_id or 'pal4vst_model'}_refresh")
    return dropdown


class PAL4VSTScript(scripts.Script):
    """Finds the broken regions after generation and re-inpaints each one zoomed in."""

    def title(self) -> str:
        return SCRIPT_TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        tab = "img2img" if is_img2img else "txt2img"
        with _accordion(tab) as enabled:
            with gr.Row():
                if enabled is None:  # a webui without InputAccordion (A1111 1.6 and older)
                    enabled = build(gr, "enabled", elem_id=f"pal4vst_{tab}_enabled")
                skip_img2img = build(gr, "skip_img2img", visible=is_img2img)
                model = _model_dropdown(services().model_choices(), elem_id=f"pal4vst_{tab}_model")
            with gr.Row():
                threshold, min_par, target_par, iterations = _row("threshold", "min_par", "target_par", "iterations")
            with gr.Row():
                candidates, verify, min_gain = _row("candidates", "verify", "min_gain")
            with gr.Row():
                grow, min_area, max_regions = _row("grow", "min_area", "max_regions")
            with gr.Row():
                context, work_size, feather, mask_blur = _row("context", "work_size", "feather", "mask_blur")
            with gr.Row():
                prompt, negative_prompt = _row("prompt", "negative_prompt")
            with gr.Row():
                denoise, steps, cfg = _row("denoise", "steps", "cfg")
                sampler = gr.Dropdown(label=declaration(PALArgs, "sampler").label, choices=sampler_names(), value="")
                seed = build(gr, "seed")
        comps = dict(enabled=enabled, model=model, threshold=threshold, grow=grow, min_area=min_area,
                     max_regions=max_regions, context=context, work_size=work_size, min_par=min_par, prompt=prompt,
                     negative_prompt=negative_prompt, denoise=denoise, steps=steps, cfg=cfg, sampler=sampler,
                     mask_blur=mask_blur, feather=feather, seed=seed, iterations=iterations, target_par=target_par,
                     skip_img2img=skip_img2img, candidates=candidates, verify=verify, min_gain=min_gain)
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
        seed, first_crop = fix_seed(p, pp, a)
        res = auto_fix(pp.image, a, detector, WebuiInpainter(p, a), seed=seed, first_crop=first_crop)
        setattr(p, NEXT_CROP, res.next_crop)
        # read by this image's own infotext (the webui writes it right after this call)
        p.extra_generation_params.update(a.infotext())
        p.extra_generation_params.update(res.infotext())
        if res.changed:
            pp.image = res.image


def update_accepts(component: type, name: str) -> bool:
    """Whether this gradio takes ``name`` in an update of ``component``. gradio 3 checks every
    update against the component's own ``update()`` (A1111 1.10 and Forge Classic pass each
    setting's component args through ``gr.update`` on every page load, so an argument that
    ``update()`` lacks fails the whole page); gradio 4 has no ``update()`` and takes any
    constructor argument."""
    update = getattr(component, "update", None)
    if update is None:
        return True
    params = inspect.signature(update).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def default_model_args() -> dict:
    """The Settings dropdown of the default model: the models there are, and the value in force
    among them (a name typed into config.json stays selectable on every gradio)."""
    try:
        choices = services().model_choices()
    except Exception as e:  # noqa: BLE001 - the webui calls this on every page load: never fail its page
        log.error("PAL4VST: the models could not be listed (%s: %s); check Settings -> PAL4VST -> models folder",
                  type(e).__name__, e)
        choices = []
    if default_model() not in choices:
        choices.append(default_model())
    args = {"choices": choices}
    if update_accepts(gr.Dropdown, "allow_custom_value"):
        args["allow_custom_value"] = True
    return args


def on_ui_settings() -> None:
    device, dtype = declaration(DetectOptions, "device"), declaration(DetectOptions, "dtype")
    opts = [
        ("pal4vst_default_model", shared.OptionInfo(_DEFAULT_MODEL, "Default PAL4VST model (release name or file)",
                                                     gr.Dropdown, default_model_args, refresh=lambda: None)),
        ("pal4vst_models_dir", shared.OptionInfo("", "PAL4VST models folder (blank = models/pal4vst)")),
        ("pal4vst_device", shared.OptionInfo(device.default, "PAL4VST device", gr.Dropdown,
                                              {"choices": list(device.spec.choices)})),
        ("pal4vst_dtype", shared.OptionInfo(dtype.default, "PAL4VST precision", gr.Dropdown,
                                             {"choices": list(dtype.spec.choices)})),
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

    def dropdown():
        return _model_dropdown(services().model_choices(), TAB_MODEL_LABEL, "pal4vst_tab_model")

    return [(build_tab(services, dropdown), "PAL4VST", TAB)]


def on_before_ui() -> None:
    """Drop ui-config.json entries of our controls that a declaration no longer allows (see
    :mod:`extension.ui_config`), before the webui reads the file."""
    from modules import shared as webui_shared

    path = getattr(getattr(webui_shared, "cmd_opts", None), "ui_config_file", None)
    if path:
        removed = refresh(path)
        if removed:
            log.warning("PAL4VST: %d setting(s) in %s were saved by an older version and no longer fit its ranges; "
                        "the current defaults are used instead (%s)", len(removed), path, ", ".join(removed[:4]))


script_callbacks.on_ui_settings(on_ui_settings)
if hasattr(script_callbacks, "on_before_ui"):
    script_callbacks.on_before_ui(on_before_ui)
script_callbacks.on_app_started(on_app_started)
script_callbacks.on_ui_tabs(on_ui_tabs)
