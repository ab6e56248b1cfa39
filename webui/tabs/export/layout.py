"""The Export tab's layout: base model, adapter, export folder and shard size, the confirmation
for a non-empty folder, and the merge's progress; `wire` binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from webui import choices, downloads
from webui.context import AppContext
from webui.i18n import I18N
from webui.paths import display_path
from webui.tabs.export import handlers
from webui.tabs.export.handlers import ExportJob


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    gr.Markdown(I18N("export.intro"))
    adapters = choices.finished_adapters(ctx)
    newest = adapters[0] if adapters else None
    with gr.Row(equal_height=False):
        model = (choices.proposal(None, newest)["model"] if newest else None) or display_path(ctx.demo_model)
        c["model"] = gr.Dropdown(choices=choices.model_choices(ctx), value=model, allow_custom_value=True,
                                 label=I18N("field.model_name_or_path"), info=I18N("chat.model_info"),
                                 elem_id="export-model", scale=3, interactive=True)
        c["adapter"] = gr.Dropdown(choices=adapters, value=newest, allow_custom_value=True,
                                   label=I18N("export.adapter"), info=I18N("export.adapter_info"),
                                   elem_id="export-adapter", scale=3, interactive=True)
        c["refresh"] = gr.Button("↻", elem_id="export-refresh", scale=0, min_width=48)
    with gr.Row(equal_height=False):
        c["dir"] = gr.Textbox(value=handlers.default_export_dir(ctx, newest) if newest else "", label=I18N("export.dir"),
                              info=I18N("export.dir_info"), elem_id="export-dir", scale=3)
        c["size"] = gr.Textbox(value="2GB", label=I18N("export.size"), info=I18N("export.size_info"),
                               elem_id="export-size", scale=1)
    c["start"] = gr.Button(I18N("export.start"), variant="primary", elem_id="export-start")
    with gr.Row(visible=False, elem_id="export-confirm-row") as c["confirm_row"]:
        c["confirm_text"] = gr.Markdown("")
        c["confirm"] = gr.Button(I18N("export.confirm"), variant="stop", elem_id="export-confirm")
        c["cancel"] = gr.Button(I18N("export.cancel"), elem_id="export-cancel")
    c["progress"] = gr.HTML("", elem_id="export-progress")
    c["status"] = gr.Markdown("", elem_id="export-status")
    with gr.Row():
        c["download"] = gr.Button(I18N("export.download"), elem_id="export-download", scale=0, min_width=240)
        c["download_file"] = gr.File(label=I18N("runs.download_file"), visible=False, interactive=False,
                                     elem_id="export-download-file")
    c["log"] = gr.Textbox(value="", label=I18N("export.log"), lines=8, max_lines=8, interactive=False,
                          autoscroll=True, elem_id="export-log")
    c["go"] = gr.State(False)
    wire(ctx, ExportJob(), c, lang)
    return c


def wire(ctx: AppContext, job: ExportJob, c: dict[str, Any], lang) -> None:
    # Also run on page load and when the tab is selected (webui/app.py): a new run is listed without ↻.
    c["refresh_event"] = (partial(handlers.refresh_choices, ctx), c["adapter"], [c["adapter"], c["model"]])
    c["refresh"].click(*c["refresh_event"])
    c["adapter"].input(partial(handlers.on_adapter, ctx), [c["model"], c["adapter"]], [c["model"], c["dir"]])
    inputs = [c["model"], c["adapter"], c["dir"], c["size"], c["go"], lang]
    outputs = [c["progress"], c["status"], c["log"]]
    c["start"].click(handlers.check, [c["model"], c["adapter"], c["dir"], lang], [c["confirm_row"], c["confirm_text"], c["go"]]) \
        .then(partial(handlers.export, job), inputs, outputs, concurrency_id="export")
    c["confirm"].click(handlers.confirm, None, [c["confirm_row"], c["go"]]) \
        .then(partial(handlers.export_replacing, job), inputs, outputs, concurrency_id="export")
    c["cancel"].click(handlers.cancel, None, [c["confirm_row"], c["go"]])
    c["download"].click(partial(downloads.download, downloads.export_zip, ctx.saves_dir), c["dir"], c["download_file"])
