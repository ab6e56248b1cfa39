"""The Evaluate tab's layout: a run (or a base model alone) and a dataset, the progress of predict,
the metrics table (base, adapter, delta) and the per-sample table sorted by score change; `wire`
binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from webui import choices
from webui.context import AppContext
from webui.form import NONE
from webui.i18n import I18N, headers
from webui.paths import display_path
from webui.tabs.evaluate import handlers
from webui.tabs.evaluate.handlers import METRIC_COLUMNS, SAMPLE_COLUMNS, SAMPLE_WIDTHS, EvalJob


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    gr.Markdown(I18N("evaluate.intro"))
    adapters = choices.finished_adapters(ctx)
    newest = adapters[0] if adapters else None
    datasets = choices.dataset_names(ctx, "sft")
    with gr.Row(equal_height=False):
        c["adapter"] = gr.Dropdown(choices=[NONE, *adapters], value=newest or NONE, allow_custom_value=True,
                                   label=I18N("evaluate.adapter"), info=I18N("evaluate.adapter_info"),
                                   elem_id="evaluate-adapter", scale=3, interactive=True)
        model = (choices.proposal(None, newest)["model"] if newest else None) or display_path(ctx.demo_model)
        c["model"] = gr.Dropdown(choices=choices.model_choices(ctx), value=model, allow_custom_value=True,
                                 label=I18N("field.model_name_or_path"), info=I18N("chat.model_info"),
                                 elem_id="evaluate-model", scale=3, interactive=True)
        c["refresh"] = gr.Button("↻", elem_id="evaluate-refresh", scale=0, min_width=48)
    with gr.Row(equal_height=False):
        c["dataset"] = gr.Dropdown(choices=datasets, value="demo_sft" if "demo_sft" in datasets else (datasets[0] if datasets else None),
                                   label=I18N("evaluate.dataset"), info=I18N("evaluate.dataset_info"),
                                   elem_id="evaluate-dataset", scale=3, interactive=True)
        c["max_samples"] = gr.Number(value=20, precision=0, minimum=1, label=I18N("field.max_samples"),
                                     info=I18N("evaluate.max_samples_info"), elem_id="evaluate-max-samples", scale=1)
        c["max_new_tokens"] = gr.Number(value=64, precision=0, minimum=1, label=I18N("evaluate.max_new_tokens"),
                                        elem_id="evaluate-max-new-tokens", scale=1)
    c["start"] = gr.Button(I18N("evaluate.start"), variant="primary", elem_id="evaluate-start")
    c["progress"] = gr.HTML("", elem_id="evaluate-progress")
    c["status"] = gr.Markdown("", elem_id="evaluate-status")
    c["metrics"] = gr.Dataframe(value=[], headers=headers("en", METRIC_COLUMNS), interactive=False,
                                elem_id="evaluate-metrics", label=I18N("evaluate.metrics"))
    c["samples"] = gr.Dataframe(value=[], headers=headers("en", SAMPLE_COLUMNS), interactive=False, wrap=True,
                                column_widths=SAMPLE_WIDTHS,
                                elem_id="evaluate-samples", label=I18N("evaluate.samples"))
    wire(ctx, EvalJob(), c, lang)
    return c


def wire(ctx: AppContext, job: EvalJob, c: dict[str, Any], lang) -> None:
    c["refresh"].click(partial(handlers.refresh_choices, ctx), [c["adapter"], c["dataset"]],
                       [c["adapter"], c["model"], c["dataset"]])
    c["adapter"].input(handlers.on_adapter, [c["model"], c["adapter"]], c["model"])
    c["start"].click(partial(handlers.evaluate, job, ctx),
                     [c["model"], c["adapter"], c["dataset"], c["max_samples"], c["max_new_tokens"], lang],
                     [c["progress"], c["status"], c["metrics"], c["samples"]], concurrency_id="evaluate")
    c["refresh_event"] = (partial(handlers.refresh_choices, ctx), [c["adapter"], c["dataset"]],
                          [c["adapter"], c["model"], c["dataset"]])
