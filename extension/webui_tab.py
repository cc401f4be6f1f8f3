"""The "PAL4VST" tab (gradio layout only; the work is in :mod:`extension.tab_actions`)."""

from __future__ import annotations

import gradio as gr

from .args import ArgsError, PALArgs
from .controls import build
from .tab_actions import REPORT_COLUMNS, detect_image, fix_image, score_folder


def _safe(fn):
    def run(*a):
        try:
            return fn(*a)
        except (ValueError, ArgsError, OSError) as e:
            raise gr.Error(str(e)) from None
    return run


def build_tab(services, model_dropdown):
    """The tab; ``model_dropdown()`` makes its model control (one that follows the Setting)."""
    from .webui_inpaint import standalone_inpainter

    with gr.Blocks(analytics_enabled=False) as tab:
        with gr.Row():
            model = model_dropdown()
            threshold = build(gr, "threshold")
        with gr.Tabs():
            with gr.Tab("Detect and fix"):
                with gr.Row():
                    with gr.Column():
                        image = gr.Image(label="Image", type="pil", elem_id="pal4vst_input")
                        with gr.Row():
                            detect_btn = gr.Button("Detect", variant="primary")
                            fix_btn = gr.Button("Fix (zoom-in inpaint)")
                        with gr.Row():
                            denoise, work_size = build(gr, "denoise"), build(gr, "work_size")
                        with gr.Row():
                            candidates, min_gain = build(gr, "candidates"), build(gr, "min_gain")
                            verify = build(gr, "verify")
                        prompt = build(gr, "prompt")
                    with gr.Column():
                        summary = gr.Textbox(label="Result", interactive=False)
                        overlay = gr.Image(label="Artifacts (magenta)", type="pil", interactive=False)
                        mask = gr.Image(label="Mask", type="pil", interactive=False, elem_id="pal4vst_mask")
                        after = gr.Image(label="Fixed", type="pil", interactive=False, elem_id="pal4vst_after")
                        _send_buttons(after)
                        report = gr.Dataframe(headers=REPORT_COLUMNS, label="Each region's repair, as the detector "
                                              "judged it", interactive=False, elem_id="pal4vst_report")
            with gr.Tab("Score a folder"):
                folder = gr.Textbox(label="Folder", placeholder="/path/to/images")
                score_btn = gr.Button("Rank by PAR", variant="primary")
                score_text = gr.Textbox(label="Summary", interactive=False)
                gallery = gr.Gallery(label="Fewest artifacts first", columns=6, elem_id="pal4vst_gallery")
                csv_file = gr.File(label="Ranking (CSV)", interactive=False)

        detect_btn.click(_safe(lambda m, img, t: detect_image(services(), m, img, t)),
                         inputs=[model, image, threshold], outputs=[overlay, mask, summary])

        def do_fix(m, img, t, dn, ws, pr, k, v, g):
            args = PALArgs.parse({"enabled": True, "model": m, "threshold": t, "denoise": dn, "work_size": int(ws),
                                  "prompt": pr, "candidates": int(k), "verify": v, "min_gain": g})
            _, fixed, repaired, text, rows = fix_image(services(), args, img, standalone_inpainter(args))
            return fixed, repaired, text, rows

        fix_btn.click(_safe(do_fix), inputs=[model, image, threshold, denoise, work_size, prompt, candidates, verify,
                                             min_gain],
                      outputs=[after, mask, summary, report])

        def do_score(m, f, t, progress=gr.Progress()):
            return score_folder(services(), m, f, t, progress=progress.tqdm)

        score_btn.click(_safe(do_score), inputs=[model, folder, threshold], outputs=[gallery, csv_file, score_text])
    return tab


def _send_buttons(image_component) -> None:
    """The webui's own "send to img2img / inpaint" buttons for the fixed image, where available."""
    try:
        from modules import infotext_utils as iu
    except ImportError:  # AUTOMATIC1111 before 1.8
        try:
            from modules import generation_parameters_copypaste as iu
        except ImportError:
            return
    with gr.Row():
        buttons = iu.create_buttons(["img2img", "inpaint"])
    for tabname, button in buttons.items():
        iu.register_paste_params_button(iu.ParamBinding(paste_button=button, tabname=tabname,
                                                        source_image_component=image_component))
