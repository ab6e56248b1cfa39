"""The Chat tab: load a base model and an adapter, chat with streamed tokens, compare with the base.

The loaded model belongs to the app server (one `ChatModel` per app, guarded by a lock): every
browser connected to it talks to the same model, one answer at a time; the page says so.
Conversations are per browser session. Side by side answers one prompt twice from the same
weights: the base model (adapter switched off) on the left, base + adapter on the right.

Prompts are built by core.chat with the template the run trained with, so chat shows what the
model saw in training. torch is imported only when a model is loaded (core.chat is light).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from core import rundir
from core.errors import UserError
from webui import form
from webui.context import AppContext, display_path, resolve_path
from webui.i18n import I18N, t

GENERATION_CONTROLS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
QUANT_CHOICES = (form.NONE, "4", "8")
UPDATE_EVERY_S = 0.05  # streamed text reaches the page at most this often (tokens in between are batched)


# ---------------------------------------------------------------------------- server state


class ChatModel:
    """The app server's one loaded chat model, shared by every browser session.

    `_lock` serialises Load/Unload; core.chat's session lock serialises generations. Each
    browser session has its own stop event, so Stop (or a new message) ends only its answer.
    """

    def __init__(self) -> None:
        self.session = None  # core.chat.ChatSession
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}

    def load(self, model: str, adapter: Optional[str], template: Optional[str], quantization_bit: Optional[int],
             progress=None):
        from core.chat import load_chat_model

        with self._lock:
            self._release()
            self.session = load_chat_model(str(resolve_path(model)), str(resolve_path(adapter)) if adapter else None,
                                           template, quantization_bit, progress=progress)
            self.session.model_path, self.session.adapter_path = model, adapter or None  # as the user typed them
            return self.session

    def unload(self) -> bool:
        with self._lock:
            had = self.session is not None
            self._release()
            return had

    def _release(self) -> None:
        """Stop every answer, wait for the running one, then free the weights."""
        if self.session is None:
            return
        for event in list(self._stops.values()):
            event.set()
        session, self.session = self.session, None
        acquired = session.lock.acquire(timeout=60)  # the stopped answer ends within a token
        try:
            session.close()  # an answer still waiting for the lock then finds no model and says so
        finally:
            if acquired:
                session.lock.release()

    def new_stop(self, key: str) -> threading.Event:
        """A fresh stop event for this browser session, stopping its previous answer."""
        old = self._stops.get(key)
        if old is not None:
            old.set()
        event = threading.Event()
        self._stops[key] = event
        return event

    def stop(self, key: str) -> bool:
        event = self._stops.get(key)
        if event is None or event.is_set():
            return False
        event.set()
        return True


# ---------------------------------------------------------------------------- choices and proposals


def finished_adapters(ctx: AppContext) -> list[str]:
    """Finished LoRA runs under the saves folder, newest first (any other path can be typed)."""
    return [display_path(info.path) for info in rundir.find_runs(ctx.saves_dir)
            if info.state == "finished" and (info.path / "adapter_config.json").is_file()]


def local_models(ctx: AppContext) -> list[str]:
    from webui.tabs.train import local_models as train_models

    return train_models(ctx)


def proposal(model: Optional[str], adapter: Optional[str]) -> dict[str, Any]:
    """Base model, template and system prompt to preselect for an adapter (its run.yaml) or a model."""
    from core.chat import run_config
    from core.data.templates import _chat_template_text, propose_template

    out: dict[str, Any] = {"model": model, "template": None, "system": None}
    config = run_config(str(resolve_path(adapter))) if adapter else {}
    if config.get("model_name_or_path"):
        out["model"] = str(config["model_name_or_path"])
    model_dir = resolve_path(out["model"]) if out["model"] else None
    if config:
        # What the run trained with; an empty template meant "the tokenizer's own, else default".
        has_own = bool(model_dir and _chat_template_text(model_dir))
        out["template"] = config.get("template") or ("auto" if has_own else "default")
        out["system"] = config.get("system")
    elif model_dir is not None and model_dir.is_dir():
        out["template"] = propose_template(model_dir)
    return out


def content_text(content: Any) -> str:
    """A chat message's text, whether the chatbot holds a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(content_text(part) for part in content)
    return "" if content is None else str(content)


def plain(history: Optional[list]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": content_text(m.get("content"))} for m in history or []]


def generation_kwargs(values: dict[str, Any], seed: Any) -> dict[str, Any]:
    out = {name: form.from_ui(name, values[name]) for name in GENERATION_CONTROLS}
    try:
        seed_value = int(seed) if seed not in (None, "") else -1
    except (TypeError, ValueError):
        raise UserError(f"seed must be a whole number (-1 = random), got '{seed}'") from None
    out["seed"] = seed_value if seed_value >= 0 else None
    return out


# ---------------------------------------------------------------------------- the tab


def build(ctx: AppContext, lang, chat_target) -> dict[str, Any]:
    import gradio as gr

    holder = ChatModel()
    ctx.components["chat_model"] = holder
    c: dict[str, Any] = {}
    gr.Markdown(I18N("chat.shared"), elem_id="chat-shared")
    with gr.Row(equal_height=False):
        c["model"] = gr.Dropdown(choices=local_models(ctx), value=display_path(ctx.demo_model), allow_custom_value=True,
                                 label=I18N("field.model_name_or_path"), info=I18N("chat.model_info"),
                                 elem_id="chat-model", scale=3, interactive=True)
        c["adapter"] = gr.Dropdown(choices=[form.NONE, *finished_adapters(ctx)], value=form.NONE, allow_custom_value=True,
                                   label=I18N("chat.adapter"), info=I18N("chat.adapter_info"),
                                   elem_id="chat-adapter", scale=3, interactive=True)
        c["refresh"] = gr.Button("↻", elem_id="chat-refresh", scale=0, min_width=48)
        c["template"] = form.build_control("template", form.NONE, elem_id="chat-template", scale=1, min_width=140)
        c["quant"] = gr.Dropdown(choices=list(QUANT_CHOICES), value=form.NONE, label=I18N("field.quantization_bit"),
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
            for name in GENERATION_CONTROLS:
                gen[name] = form.build_control(name, elem_id=f"chat-{name}", min_width=160)
            c["seed"] = gr.Number(value=-1, precision=0, label=I18N("chat.seed"), info=I18N("chat.seed_info"),
                                  elem_id="chat-seed", min_width=160)
    c["gen"] = gen
    c["history"] = gr.State([])
    c["base_history"] = gr.State([])
    _wire(ctx, holder, c, lang, chat_target)
    return c


def _wire(ctx: AppContext, holder: ChatModel, c: dict[str, Any], lang, chat_target) -> None:
    import gradio as gr

    gen_inputs = [c["gen"][name] for name in GENERATION_CONTROLS]

    def status_text(lang_value: str) -> str:
        session = holder.session
        if session is None:
            return t(lang_value, "chat.not_loaded")
        text = t(lang_value, "chat.loaded", what=session.describe())
        if session.notes:
            text += "\n\n" + "\n\n".join(f"> {note}" for note in session.notes)
        return text

    # ------------------------------------------------------------------ choosing and loading

    def refresh(adapter):
        choices = [form.NONE, *finished_adapters(ctx)]
        return gr.Dropdown(choices=choices, value=adapter), gr.Dropdown(choices=local_models(ctx))

    c["refresh"].click(refresh, c["adapter"], [c["adapter"], c["model"]])

    def on_adapter(model, adapter):
        adapter = None if adapter in (None, "", form.NONE) else adapter
        if not adapter:
            return gr.skip(), gr.skip(), gr.skip()
        p = proposal(model, adapter)
        return (p["model"] or gr.skip(), p["template"] or gr.skip(), p["system"] if p["system"] is not None else gr.skip())

    c["adapter"].input(on_adapter, [c["model"], c["adapter"]], [c["model"], c["template"], c["system"]])

    def on_model(model, adapter):
        if adapter not in (None, "", form.NONE) or not model:
            return gr.skip()
        return proposal(model, None)["template"] or gr.skip()

    c["model"].input(on_model, [c["model"], c["adapter"]], c["template"])

    def load(model, adapter, template, quant, lang_value, progress=gr.Progress()):
        adapter = None if adapter in (None, "", form.NONE) else str(adapter).strip()
        template = None if template in (None, "", form.NONE) else template
        bits = None if quant in (None, "", form.NONE) else int(quant)
        try:
            if not model:
                raise UserError(t(lang_value, "chat.no_model"))
            holder.load(str(model).strip(), adapter, template, bits,
                        progress=lambda fraction, message: progress(fraction, desc=message))
        except UserError as err:
            gr.Warning(str(err))
            return t(lang_value, "chat.error", error=str(err)), gr.skip()
        except Exception as err:  # a bug: its traceback goes to the server log, the page gets one line
            import traceback

            traceback.print_exc()
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            gr.Warning(first)
            return t(lang_value, "chat.error", error=f"{type(err).__name__}: {first}"), gr.skip()
        session = holder.session
        return status_text(lang_value), session.system if session.system else gr.skip()

    load_io = ([c["model"], c["adapter"], c["template"], c["quant"], lang], [c["status"], c["system"]])
    c["load"].click(load, *load_io, concurrency_id="chat-load", concurrency_limit=1)

    def unload(lang_value):
        holder.unload()
        return status_text(lang_value)

    c["unload"].click(unload, lang, c["status"], concurrency_id="chat-load", concurrency_limit=1)

    # The Runs tab's "Chat with its adapter": set model, adapter, template, then load.
    def from_runs(target, lang_value):
        if not target:
            return (gr.skip(),) * 5
        adapter = target.get("adapter_name_or_path") or form.NONE
        p = proposal(target.get("model_name_or_path"), target.get("adapter_name_or_path"))
        template = target.get("template") or p["template"] or form.NONE
        choices = [form.NONE, *finished_adapters(ctx)]
        if adapter not in choices:
            choices.append(adapter)
        return (target.get("model_name_or_path") or p["model"], gr.Dropdown(choices=choices, value=adapter), template,
                p["system"] or "", t(lang_value, "chat.loading"))

    chat_target.change(from_runs, [chat_target, lang], [c["model"], c["adapter"], c["template"], c["system"], c["status"]]) \
        .then(load, *load_io, concurrency_id="chat-load", concurrency_limit=1)

    # ------------------------------------------------------------------ chatting

    def respond(history, base_history, side, system, seed, lang_value, *gen_values, request: gr.Request = None):
        """Answer the last user message of `history` (and of `base_history` side by side), streaming."""
        from core.chat import stream_reply

        key = getattr(request, "session_hash", None) or "default"
        if not history or history[-1]["role"] != "user":  # nothing to answer (Regenerate on an empty chat)
            yield history, base_history, history, base_history, gr.skip()
            return
        if side and (not base_history or base_history[-1] != history[-1]):
            # Side by side switched on mid-conversation: the base column answers the same question.
            base_history = _close_turn(list(base_history or [])) + [dict(history[-1])]
        stop = holder.new_stop(key)
        session = holder.session
        status = t(lang_value, "chat.generating")  # replaces a "Stopped." or an error of the previous answer
        try:
            if session is None:
                raise UserError(t(lang_value, "chat.load_first"))
            settings = generation_kwargs(dict(zip(GENERATION_CONTROLS, gen_values)), seed)
            system_text = system if (system or "").strip() else None
            columns = []
            if side:
                if not session.has_adapter:
                    raise UserError(t(lang_value, "chat.side_needs_adapter"))
                columns.append(("base", base_history, False))
            columns.append(("main", history, True))
            for which, hist, use_adapter in columns:
                reply = {"role": "assistant", "content": ""}
                hist.append(reply)
                shown = 0.0
                for text in stream_reply(session, plain(hist[:-1]), system=system_text, use_adapter=use_adapter,
                                         stop_event=stop, **settings):
                    reply["content"] = text
                    # The browser re-renders the whole message per update: send at most ~20 a second.
                    if time.monotonic() - shown >= UPDATE_EVERY_S:
                        shown = time.monotonic()
                        yield history, base_history, history, base_history, status
                        status = gr.skip()
                if stop.is_set():
                    break
            status = status_text(lang_value)
            if stop.is_set() and holder._stops.get(key) is stop:
                status = t(lang_value, "chat.stopped")  # by Stop (a new message replaces the event)
        except UserError as err:
            gr.Warning(str(err))
            status = t(lang_value, "chat.error", error=str(err))
            _drop_empty_reply(history, base_history)
        finally:
            stop.set()
        yield history, base_history, history, base_history, status

    respond_io = ([c["history"], c["base_history"], c["side"], c["system"], c["seed"], lang, *gen_inputs],
                  [c["bot"], c["base_bot"], c["history"], c["base_history"], c["status"]])

    def add_message(message, history, base_history, side):
        text = (message or "").strip()
        if not text:
            return gr.skip(), history, base_history, gr.skip(), gr.skip()
        history = _close_turn(list(history or []))
        history.append({"role": "user", "content": text})
        if side:
            base_history = _close_turn(list(base_history or []))
            base_history.append({"role": "user", "content": text})
        return "", history, base_history, history, base_history

    def stop_current(request: gr.Request = None):
        holder.stop(getattr(request, "session_hash", None) or "default")

    add_io = ([c["message"], c["history"], c["base_history"], c["side"]],
              [c["message"], c["history"], c["base_history"], c["bot"], c["base_bot"]])
    # The streamed text is the progress indicator; an overlay on the outputs would shift the page under the cursor.
    respond_opts = dict(concurrency_id="chat-generate", concurrency_limit=4, show_progress="hidden")
    for trigger in (c["send"].click, c["message"].submit):
        # A new message first stops this browser's running answer, then adds the turn and answers.
        trigger(stop_current, None, None, queue=False) \
            .then(add_message, *add_io, queue=False) \
            .then(respond, *respond_io, **respond_opts)

    c["stop"].click(stop_current, None, None, queue=False)

    def regenerate(history, base_history):
        history, base_history = list(history or []), list(base_history or [])
        for hist in (history, base_history):
            if hist and hist[-1]["role"] == "assistant":
                hist.pop()
        return history, base_history, history, base_history

    c["regenerate"].click(stop_current, None, None, queue=False) \
        .then(regenerate, [c["history"], c["base_history"]], [c["history"], c["base_history"], c["bot"], c["base_bot"]],
              queue=False) \
        .then(respond, *respond_io, **respond_opts)

    def clear():
        return [], [], [], [], ""

    c["clear"].click(stop_current, None, None, queue=False) \
        .then(clear, None, [c["history"], c["base_history"], c["bot"], c["base_bot"], c["message"]], queue=False)

    def toggle_side(side, lang_value):
        label = t(lang_value, "chat.adapter_answer" if side else "chat.answer")
        return gr.Chatbot(visible=bool(side)), gr.Chatbot(label=label)

    c["side"].change(toggle_side, [c["side"], lang], [c["base_bot"], c["bot"]], queue=False)


def _close_turn(history: list) -> list:
    """A conversation that ended on an unanswered user turn (stopped before any token) drops it."""
    if history and history[-1]["role"] == "user":
        history.pop()
    return history


def _drop_empty_reply(*histories: list) -> None:
    for hist in histories:
        if hist and hist[-1]["role"] == "assistant" and not content_text(hist[-1]["content"]):
            hist.pop()
