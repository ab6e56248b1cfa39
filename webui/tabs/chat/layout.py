"""The Chat tab's layout: model and adapter pickers, Load/Unload, one chat (or two side by side)
and the generation settings; `wire` binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from webui import build_banner, choices, form
from webui.context import AppContext
from webui.i18n import I18N, t
from webui.paths import display_path
from webui.tabs.chat import handlers
from webui.tabs.chat.model import ChatModel


def build(ctx: AppContext, lang, chat_target) -> dict[str, Any]:
    """The tab's components by name; `chat_target` is the state the Runs tab sets to chat with a run."""
    import gradio as gr

    holder = ChatModel()
    c: dict[str, Any] = {}
    gr.Markdown(I18N("chat.shared"), elem_id="chat-shared")
    c["real_outputs"] = build_banner.build(ctx.real_model, "real", lang, elem="chat-") if ctx.real_model is not None else []
    with gr.Row(equal_height=False):
        c["model"] = gr.Dropdown(choices=choices.model_choices(ctx), value=display_path(ctx.demo_model), allow_custom_value=True,
                                 label=I18N("field.model_name_or_path"), info=I18N("chat.model_info"),
                                 elem_id="chat-model", scale=3, interactive=True)
        c["adapter"] = gr.Dropdown(choices=[form.NONE, *choices.finished_adapters(ctx)], value=form.NONE, allow_custom_value=True,
                                   label=I18N("chat.adapter"), info=I18N("chat.adapter_info"),
                                   elem_id="chat-adapter", scale=3, interactive=True)
        c["refresh"] = gr.Button("↻", elem_id="chat-refresh", scale=0, min_width=48)
        c["template"] = form.build_control("template", form.NONE, elem_id="chat-template", scale=1, min_width=140)
        c["quant"] = gr.Dropdown(choices=list(handlers.QUANT_CHOICES), value=form.NONE, label=I18N("field.quantization_bit"),
                                 info=I18N("chat.quant_info"), elem_id="chat-quant", scale=1, min_width=140, interactive=True)
    with gr.Row():
        c["load"] = gr.Button(I18N("chat.load"), variant="primary", elem_id="chat-load")
        c["unload"] = gr.Button(I18N("chat.unload"), elem_id="chat-unload")
    c["status"] = gr.Markdown(t("en", "chat.not_loaded"), elem_id="chat-status")
    c["side"] = gr.Checkbox(value=False, label=I18N("chat.side_by_side"), info=I18N("chat.side_info"), elem_id="chat-side")
    with gr.Row(equal_height=True):
        c["base_bot"] = gr.Chatbot(value=[], label=I18N("chat.base_answer"), elem_id="chat-base", visible=False, height=420,
                                 buttons=["copy", "copy_all"])
        c["bot"] = gr.Chatbot(value=[], label=I18N("chat.answer"), elem_id="chat-bot", height=420,
                            buttons=["copy", "copy_all"])
    with gr.Row(equal_height=True):
        c["message"] = gr.Textbox(value="", placeholder=t("en", "chat.message_placeholder"), show_label=False,
                                  lines=2, max_lines=8, elem_id="chat-message", scale=5)
        c["send"] = gr.Button(I18N("chat.send"), variant="primary", elem_id="chat-send", scale=1, min_width=90)
        c["stop"] = gr.Button(I18N("chat.stop"), variant="stop", elem_id="chat-stop", scale=1, min_width=90)
    with gr.Row():
        c["regenerate"] = gr.Button(I18N("chat.regenerate"), elem_id="chat-regenerate", size="sm")
        c["clear"] = gr.Button(I18N("chat.clear"), elem_id="chat-clear", size="sm")
    with gr.Accordion(I18N("chat.settings"), open=False, elem_id="chat-settings"):
        c["system"] = gr.Textbox(value="", label=I18N("field.system"), info=I18N("chat.system_info"), lines=2,
                                 elem_id="chat-system")
        with gr.Row():
            gen = {}
            for name in handlers.GENERATION_CONTROLS:
                gen[name] = form.build_control(name, elem_id=f"chat-{name}", min_width=160)
            c["seed"] = gr.Number(value=-1, precision=0, label=I18N("chat.seed"), info=I18N("chat.seed_info"),
                                  elem_id="chat-seed", min_width=160)
    c["gen"] = gen
    c["history"] = gr.State([])
    c["base_history"] = gr.State([])
    wire(ctx, holder, c, lang, chat_target)
    return c


def wire(ctx: AppContext, holder: ChatModel, c: dict[str, Any], lang, chat_target) -> None:
    gen_inputs = [c["gen"][name] for name in handlers.GENERATION_CONTROLS]
    stop = partial(handlers.stop_current, holder)
    no_queue = dict(queue=False)
    # Also run on page load and when the tab is selected (webui/app.py): a new run is listed without ↻.
    c["refresh_event"] = (partial(handlers.refresh_choices, ctx), c["adapter"], [c["adapter"], c["model"]])
    c["refresh"].click(*c["refresh_event"])
    c["adapter"].input(handlers.on_adapter, [c["model"], c["adapter"]], [c["model"], c["template"], c["system"]])
    c["model"].input(handlers.on_model, [c["model"], c["adapter"]], c["template"])

    load = (partial(handlers.load, holder), [c["model"], c["adapter"], c["template"], c["quant"], lang],
            [c["status"], c["system"]])
    one_load_at_a_time = dict(concurrency_id="chat-load", concurrency_limit=1)
    c["load"].click(*load, **one_load_at_a_time)
    c["unload"].click(partial(handlers.unload, holder), lang, c["status"], **one_load_at_a_time)
    # The Runs tab's "Chat with its adapter": set model, adapter, template, then load.
    chat_target.change(partial(handlers.from_runs, ctx), [chat_target, lang],
                       [c["model"], c["adapter"], c["template"], c["system"], c["status"]]) \
        .then(*load, **one_load_at_a_time)

    respond = (partial(handlers.respond, holder),
               [c["history"], c["base_history"], c["side"], c["system"], c["seed"], lang, *gen_inputs],
               [c["bot"], c["base_bot"], c["history"], c["base_history"], c["status"]])
    # The streamed text is the progress indicator; an overlay on the outputs would shift the page under the cursor.
    streaming = dict(concurrency_id="chat-generate", concurrency_limit=4, show_progress="hidden")
    add = (handlers.add_message, [c["message"], c["history"], c["base_history"], c["side"]],
           [c["message"], c["history"], c["base_history"], c["bot"], c["base_bot"]])
    for trigger in (c["send"].click, c["message"].submit):
        # A new message first stops the running answer, then adds the turn and answers.
        trigger(stop, None, None, **no_queue).then(*add, **no_queue).then(*respond, **streaming)
    c["stop"].click(stop, None, None, **no_queue)
    c["regenerate"].click(stop, None, None, **no_queue) \
        .then(handlers.regenerate, [c["history"], c["base_history"]],
              [c["history"], c["base_history"], c["bot"], c["base_bot"]], **no_queue) \
        .then(*respond, **streaming)
    c["clear"].click(stop, None, None, **no_queue) \
        .then(handlers.clear, None, [c["history"], c["base_history"], c["bot"], c["base_bot"], c["message"]], **no_queue)
    c["side"].change(handlers.toggle_side, [c["side"], lang], [c["base_bot"], c["bot"]], **no_queue)
