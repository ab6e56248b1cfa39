"""The Runs tab's layout: the run table, overlaid loss curves, one run's details with Resume,
Chat and Delete, and its newest saved evaluation's tables; `wire` binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from webui import downloads
from webui.context import AppContext
from webui.i18n import I18N, headers
from webui.tabs.evaluate.handlers import METRIC_COLUMNS, SAMPLE_COLUMNS, SAMPLE_WIDTHS
from webui.tabs.runs import handlers
from webui.tabs.runs.handlers import COLUMNS


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Row():
        c["refresh"] = gr.Button(I18N("runs.refresh"), elem_id="runs-refresh", scale=0, min_width=120)
        c["summary"] = gr.Markdown("", elem_id="runs-summary")
    c["table"] = gr.Dataframe(value=[], headers=headers("en", COLUMNS), interactive=False, elem_id="runs-table", wrap=True)
    with gr.Row():
        c["compare"] = gr.Dropdown(choices=[], value=[], multiselect=True, label=I18N("runs.compare"),
                                   elem_id="runs-compare", scale=3)
        c["compare_log"] = gr.Checkbox(value=False, label=I18N("train.log_scale"), scale=0, min_width=120)
    c["overlay"] = gr.Plot(elem_id="runs-overlay", label=I18N("train.chart"))
    c["pick"] = gr.Dropdown(choices=[], value=None, label=I18N("runs.open"), elem_id="runs-pick")
    c["details"] = gr.Markdown("", elem_id="runs-details")
    # The newest saved evaluation, as the Evaluate tab showed it (shown when the run has one).
    c["eval_metrics"] = gr.Dataframe(value=[], headers=headers("en", METRIC_COLUMNS), interactive=False, visible=False,
                                     elem_id="runs-eval-metrics", label=I18N("runs.eval_metrics"))
    c["eval_samples"] = gr.Dataframe(value=[], headers=headers("en", SAMPLE_COLUMNS), interactive=False, visible=False,
                                     wrap=True, column_widths=SAMPLE_WIDTHS,
                                     elem_id="runs-eval-samples", label=I18N("evaluate.samples"))
    with gr.Row():
        c["resume"] = gr.Button(I18N("runs.resume"), elem_id="runs-resume")
        c["chat"] = gr.Button(I18N("runs.chat"), elem_id="runs-chat")
        c["delete"] = gr.Button(I18N("runs.delete"), variant="stop", elem_id="runs-delete")
        c["download"] = gr.Button(I18N("runs.download"), elem_id="runs-download")
    c["download_file"] = gr.File(label=I18N("runs.download_file"), visible=False, interactive=False,
                                 elem_id="runs-download-file")
    with gr.Row(visible=False, elem_id="runs-confirm-row") as c["confirm_row"]:
        c["confirm_text"] = gr.Markdown("")
        c["confirm"] = gr.Button(I18N("runs.delete_confirm"), variant="stop", elem_id="runs-delete-confirm")
        c["cancel"] = gr.Button(I18N("runs.delete_cancel"), elem_id="runs-delete-cancel")
    with gr.Row():
        c["config"] = gr.Code(value="", language="yaml", label=I18N("runs.config"), interactive=False, elem_id="runs-config")
        c["log"] = gr.Textbox(value="", label=I18N("runs.log"), lines=16, max_lines=16, interactive=False,
                              elem_id="runs-log", autoscroll=True)
    wire(ctx, c, lang)
    return c


def wire(ctx: AppContext, c: dict[str, Any], lang) -> None:
    """Bind the events; c["refresh_event"] is what the app also runs on page load and tab select.
    Needs the tabs, the Train tab's timer and the Chat target in ctx.components."""
    tabs, chat_target = ctx.components["tabs"], ctx.components["chat_target"]
    train_timer = ctx.components["train"]["timer"]
    c["refresh_event"] = refresh = (partial(handlers.refresh, ctx), [c["pick"], c["compare"], lang],
                                    [c["table"], c["summary"], c["pick"], c["compare"]])
    c["refresh"].click(*refresh)
    lang.change(*refresh)
    for trigger in (c["compare"], c["compare_log"]):
        trigger.change(handlers.overlay, [c["compare"], c["compare_log"]], c["overlay"])
    c["pick"].change(partial(handlers.open_run, ctx), [c["pick"], lang], [c["details"], c["config"], c["log"]])
    c["pick"].change(partial(handlers.open_evaluation, ctx), [c["pick"], lang], [c["eval_metrics"], c["eval_samples"]])
    c["resume"].click(partial(handlers.resume, ctx), [c["pick"], lang], [tabs, train_timer])
    c["delete"].click(handlers.ask_delete, [c["pick"], lang], [c["confirm_row"], c["confirm_text"]])
    c["cancel"].click(handlers.cancel_delete, None, c["confirm_row"])
    c["confirm"].click(partial(handlers.delete, ctx), [c["pick"], c["compare"], lang],
                       [c["confirm_row"], c["table"], c["summary"], c["pick"], c["compare"]])
    c["chat"].click(partial(handlers.chat, ctx), [c["pick"], lang], [chat_target, tabs])
    c["download"].click(partial(downloads.download, downloads.adapter_zip, ctx.saves_dir), c["pick"], c["download_file"])
