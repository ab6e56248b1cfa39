"""The Datasets tab's layout: the registry table, the upload with its column mapping, managing
registered files, and the tokenized preview; `wire` binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from core.args import TEMPLATE_NAMES, option_spec
from webui.context import AppContext
from webui.form import NONE, default_value
from webui.i18n import I18N, headers, t
from webui.paths import display_path
from webui.tabs.datasets import handlers
from webui.tabs.datasets.handlers import ALPACA_KEYS, COLUMN_KEYS, DATA_SUFFIXES, TABLE_COLUMNS


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Row():
        c["refresh"] = gr.Button(I18N("data.refresh"), elem_id="data-refresh", scale=0, min_width=120)
        c["message"] = gr.Markdown("", elem_id="data-message")
    c["table"] = gr.Dataframe(value=[], headers=headers("en", TABLE_COLUMNS), interactive=False,
                              elem_id="data-table", label=I18N("data.table"), wrap=True)
    with gr.Accordion(I18N("data.upload"), open=True, elem_id="data-upload-box"):
        with gr.Row():
            c["file"] = gr.File(label=I18N("data.upload"), file_types=list(DATA_SUFFIXES), elem_id="data-file", scale=2)
            with gr.Column(scale=3):
                c["detected"] = gr.Markdown("", elem_id="data-detected")
                with gr.Row():
                    c["name"] = gr.Textbox(label=I18N("data.name"), elem_id="data-name")
                    c["formatting"] = gr.Dropdown(choices=["alpaca", "sharegpt"], value="alpaca", label=I18N("data.formatting"),
                                                  elem_id="data-formatting")
                    c["ranking"] = gr.Checkbox(value=False, label=I18N("data.ranking_label"), elem_id="data-ranking")
        with gr.Row():
            c["cols"] = {key: gr.Dropdown(choices=[NONE], value=NONE, label=I18N(f"data.col.{key}"),
                                          elem_id=f"data-col-{key}", allow_custom_value=False, min_width=160,
                                          visible=key in ALPACA_KEYS)
                         for key in COLUMN_KEYS}
        with gr.Row():
            c["register"] = gr.Button(I18N("data.register"), variant="primary", elem_id="data-register")
            c["replace"] = gr.Button(I18N("data.replace"), variant="stop", visible=False, elem_id="data-replace")
        c["errors"] = gr.Markdown("", elem_id="data-errors")
    with gr.Accordion(I18N("data.manage"), open=False, elem_id="data-manage-box"):
        with gr.Row():
            c["existing_file"] = gr.Dropdown(choices=[], label=I18N("data.existing_file"), elem_id="data-existing-file")
            c["existing_name"] = gr.Textbox(label=I18N("data.name"), elem_id="data-existing-name")
            c["register_existing"] = gr.Button(I18N("data.register_existing"), elem_id="data-register-existing")
        with gr.Row():
            c["remove_pick"] = gr.Dropdown(choices=[], label=I18N("data.pick"), elem_id="data-remove-pick")
            c["delete_file"] = gr.Checkbox(value=False, label=I18N("data.delete_file"))
            c["remove"] = gr.Button(I18N("data.unregister"), variant="stop", elem_id="data-remove")
    with gr.Accordion(I18N("data.preview"), open=False, elem_id="data-preview-box"):
        with gr.Row():
            c["preview_pick"] = gr.Dropdown(choices=[], label=I18N("data.pick"), elem_id="data-preview-pick")
            c["preview_model"] = gr.Textbox(value=display_path(ctx.demo_model), label=I18N("field.model_name_or_path"),
                                            elem_id="data-preview-model")
            c["preview_template"] = gr.Dropdown(choices=[NONE, *TEMPLATE_NAMES], value="llama2",
                                                label=I18N("field.template"), elem_id="data-preview-template")
            c["preview_cutoff"] = gr.Number(value=default_value("cutoff_len"), precision=0,  # the Train tab's; app.py follows it
                                            label=I18N("field.cutoff_len"), elem_id="data-preview-cutoff")
            c["preview_train_on_prompt"] = gr.Checkbox(value=option_spec("train_on_prompt").default,
                                                       label=I18N("field.train_on_prompt"),
                                                       elem_id="data-preview-train-on-prompt")
            c["preview_n"] = gr.Slider(1, 20, value=3, step=1, label=I18N("data.preview_records"))
        c["preview_run"] = gr.Button(I18N("data.preview_run"), elem_id="data-preview-run")
        c["preview_stats"] = gr.Markdown("", elem_id="data-preview-stats")
        c["preview_html"] = gr.HTML("", elem_id="data-preview-html")
        c["preview_hist"] = gr.Plot(label=I18N("data.histogram"), elem_id="data-preview-hist")
    c["upload_path"] = gr.State(None)
    c["translated"] = [c["formatting"], c["ranking"], c["file"]]
    wire(ctx, c, lang)
    return c


def wire(ctx: AppContext, c: dict[str, Any], lang) -> None:
    """Bind the events; c["refresh_event"] is what the app also runs on page load and tab select."""
    col_boxes = [c["cols"][k] for k in COLUMN_KEYS]
    refresh_outputs = [c["table"], c["remove_pick"], c["preview_pick"], c["existing_file"], c["message"]]
    c["refresh_event"] = refresh = (partial(handlers.refresh, ctx), lang, refresh_outputs)
    c["refresh"].click(*refresh)
    lang.change(partial(handlers.retitle, ctx), lang, c["table"])
    c["file"].upload(handlers.on_upload, [c["file"], lang],
                     [c["upload_path"], c["detected"], c["name"], c["formatting"], c["ranking"], *col_boxes])
    c["formatting"].input(handlers.on_formatting, c["formatting"], col_boxes)
    register_inputs = [c["upload_path"], c["name"], c["formatting"], c["ranking"], lang, *col_boxes]
    register_outputs = [c["errors"], c["replace"], *refresh_outputs]
    c["register"].click(partial(handlers.register, ctx), register_inputs, register_outputs)
    c["replace"].click(partial(handlers.replace, ctx), register_inputs, register_outputs)
    c["register_existing"].click(partial(handlers.register_existing_file, ctx),
                                 [c["existing_file"], c["existing_name"], lang], refresh_outputs)
    c["remove"].click(partial(handlers.unregister, ctx), [c["remove_pick"], c["delete_file"], lang], refresh_outputs)
    c["preview_run"].click(partial(handlers.preview, ctx),
                           [c["preview_pick"], c["preview_model"], c["preview_template"], c["preview_cutoff"],
                            c["preview_train_on_prompt"], c["preview_n"], lang],
                           [c["preview_stats"], c["preview_html"], c["preview_hist"]])


def labels(lang: str) -> list[Any]:
    """The labels gradio does not re-translate when the language changes (app.py's lang.change)."""
    import gradio as gr

    return [gr.Dropdown(label=t(lang, "data.formatting")), gr.Checkbox(label=t(lang, "data.ranking_label")),
            gr.File(label=t(lang, "data.upload"))]
