"""The "PAL4VST" tab (gradio layout only; the work is in :mod:`extension.tab_actions`)."""

from __future__ import annotations

import gradio as gr

from pal4vst.learn.examples import ExampleError
from pal4vst.settings import ExampleOptions, TeachOptions

from .args import ArgsError, PALArgs
from .controls import build
from .tab_actions import (REPORT_COLUMNS, SET_COLUMNS, TEACH_COLUMNS, detect_image, example_sets, fix_image,
                          score_folder, teach_add, teach_add_file, teach_run, teach_show)


def _table(rows, columns: list[str]):
    """Table rows as a value every gradio shows under ``columns``: gradio 3 numbers the headers
    ("1 2 3 4") of a plain list that is empty; a DataFrame carries its column names."""
    import pandas as pd  # gradio's own dependency

    return pd.DataFrame([list(r) for r in rows], columns=columns)


def _safe(fn):
    def run(*a):
        try:
            return fn(*a)
        except (ValueError, ArgsError, OSError, ExampleError) as e:
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
            _teach_tab(services, model, threshold)

        detect_btn.click(_safe(lambda m, img, t: detect_image(services(), m, img, t)),
                         inputs=[model, image, threshold], outputs=[overlay, mask, summary])

        def do_fix(m, img, t, dn, ws, pr, k, v, g):
            args = PALArgs.parse({"enabled": True, "model": m, "threshold": t, "denoise": dn, "work_size": int(ws),
                                  "prompt": pr, "candidates": int(k), "verify": v, "min_gain": g})
            _, fixed, repaired, text, rows = fix_image(services(), args, img, standalone_inpainter(args))
            return fixed, repaired, text, _table(rows, REPORT_COLUMNS)

        fix_btn.click(_safe(do_fix), inputs=[model, image, threshold, denoise, work_size, prompt, candidates, verify,
                                             min_gain],
                      outputs=[after, mask, summary, report])

        def do_score(m, f, t, progress=gr.Progress()):
            return score_folder(services(), m, f, t, progress=progress.tqdm)

        score_btn.click(_safe(do_score), inputs=[model, folder, threshold], outputs=[gallery, csv_file, score_text])
    return tab


def _mask_editor():
    """``(editor, added, removed)``: gradio 4's ImageEditor (PAL's mask as a layer to paint on and
    erase from), or on gradio 3 two sketch pads over the overlay (paint what PAL missed / what it
    marked wrongly)."""
    if hasattr(gr, "ImageEditor"):
        editor = gr.ImageEditor(label="PAL's mask (magenta): paint what it missed, erase what it marked wrongly",
                                type="numpy", sources=(), layers=False, elem_id="pal4vst_teach_editor",
                                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"), eraser=gr.Eraser())
        return editor, None, None
    added = gr.Image(label="Paint what PAL missed", tool="sketch", source="upload", type="pil",
                     elem_id="pal4vst_teach_added")
    removed = gr.Image(label="Paint what PAL marked wrongly", tool="sketch", source="upload", type="pil",
                       elem_id="pal4vst_teach_removed")
    return None, added, removed


def _make_room() -> None:
    """Unload the webui's diffusion model from the GPU before a fine-tune (Forge, then A1111)."""
    try:
        from backend import memory_management as mm

        mm.unload_all_models()
        mm.soft_empty_cache()
        return
    except Exception:  # noqa: BLE001 - not Forge
        pass
    try:
        from modules import sd_models

        sd_models.unload_model_weights()
    except Exception:  # noqa: BLE001 - nothing loaded, or an older webui
        pass


def _teach_tab(services, model, threshold) -> None:
    """The "Teach" tab: correct PAL's mask, keep the example, fine-tune on a set."""
    from .mask_editing import mask_from_editor, mask_from_sketches

    with gr.Tab("Teach"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="An image PAL got wrong", type="pil", elem_id="pal4vst_teach_input")
                show_btn = gr.Button("Show PAL's mask", variant="primary")
                editor, added, removed = _mask_editor()
                pal_mask = gr.State(None)
                mask_file = gr.File(label="...or a mask file drawn elsewhere (white = broken; used instead of the "
                                    "editor when given)", file_types=["image"], elem_id="pal4vst_teach_mask_file")
                with gr.Row():
                    set_name = build(gr, "set_name", ExampleOptions)
                    add_btn = gr.Button("Add to set")
                teach_text = gr.Textbox(label="Teach", interactive=False, elem_id="pal4vst_teach_text")
                sets = gr.Dataframe(headers=SET_COLUMNS, value=lambda: _table(example_sets(services()), SET_COLUMNS),
                                    label="Example sets",
                                    interactive=False, elem_id="pal4vst_teach_sets")
            with gr.Column():
                ft_set = gr.Dropdown(label="Example set to learn from", elem_id="pal4vst_teach_set",
                                     choices=[r[0] for r in example_sets(services())])
                with gr.Row():
                    model_name = build(gr, "model_name", TeachOptions)
                    recipe = build(gr, "recipe", TeachOptions)
                with gr.Row():
                    steps, lr = build(gr, "steps", TeachOptions), build(gr, "lr", TeachOptions)
                    held_out, seed = build(gr, "held_out", TeachOptions), build(gr, "seed", TeachOptions)
                with gr.Row():
                    ft_btn = gr.Button("Fine-tune the model chosen above", variant="primary",
                                       elem_id="pal4vst_teach_go")
                    stop_btn = gr.Button("Stop (keep the best so far)")
                ft_text = gr.Textbox(label="Fine-tune: the verdict of examples it never learned from", lines=6,
                                     interactive=False, elem_id="pal4vst_teach_result")
                ft_rows = gr.Dataframe(headers=TEACH_COLUMNS,
                                       label="Each example, judged by a model that never learned from it: artifact IoU",
                                       interactive=False, elem_id="pal4vst_teach_rows")

        def show(m, img, t):
            value, mask, over, text = teach_show(services(), m, img, t)
            return ([value] if editor is not None else [over, over]) + [mask, text]

        edit_outputs = [editor] if editor is not None else [added, removed]
        show_btn.click(_safe(show), inputs=[model, image, threshold], outputs=edit_outputs + [pal_mask, teach_text])

        def add(name, img, mask, drawn, *edits):
            if drawn is not None:
                text, rows = teach_add_file(services(), name, img, drawn)
                return text, _table(rows, SET_COLUMNS), gr.update(choices=[r[0] for r in rows], value=name.strip())
            if mask is None:
                raise ValueError("show PAL's mask first (then correct it), or give a mask file")
            if editor is not None:
                size = img.size if img is not None else (mask.shape[1], mask.shape[0])
                corrected = mask_from_editor(edits[0], size)
            else:
                corrected = mask_from_sketches(mask, *edits)
            text, rows = teach_add(services(), name, img, corrected)
            return text, _table(rows, SET_COLUMNS), gr.update(choices=[r[0] for r in rows], value=name.strip())

        add_btn.click(_safe(add), inputs=[set_name, image, pal_mask, mask_file] + edit_outputs,
                      outputs=[teach_text, sets, ft_set])

        def finetune(m, s, name, rec, n, rate, held, sd, progress=gr.Progress()):
            svc = services()
            svc.stop_teaching.clear()
            options = TeachOptions(model_name=name, recipe=rec, steps=int(n), lr=float(rate), held_out=float(held),
                                   seed=int(sd))
            progress(0, desc="preparing the fine-tune")

            def on_step(step, total, loss, stage):
                progress((step, total), desc=f"fine-tuning ({stage}): step {step} of {total}, loss {loss:.4f}")

            summary, rows, report, new = teach_run(svc, m, s, options, on_step=on_step,
                                                   should_stop=svc.stop_teaching.is_set, make_room=_make_room)
            chosen = new if report["better"] else m  # only a model judged better replaces the one in use
            return summary, _table(rows, TEACH_COLUMNS), gr.update(choices=svc.model_choices(), value=chosen)

        ft_btn.click(_safe(finetune), inputs=[model, ft_set, model_name, recipe, steps, lr, held_out, seed],
                     outputs=[ft_text, ft_rows, model])
        stop_btn.click(lambda: services().stop_teaching.set(), inputs=[], outputs=[])


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
