"""The Chat tab's event handlers: choose and load a model (and adapter), chat with streamed
answers, compare with the base model side by side.

Prompts are built by core.chat with the template the run trained with, so chat shows what the
model saw in training. Conversations are per browser session (gr.State); the loaded model is
the app server's (model.py). A handler takes the app's context or the ChatModel first (bound by
layout.py), then its inputs' values.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import gradio as gr  # at import: the Load handler's progress parameter defaults to a gr.Progress

from core.errors import UserError
from webui import choices, form
from webui.context import AppContext
from webui.i18n import t
from webui.tabs.chat.model import ChatModel

GENERATION_CONTROLS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
QUANT_CHOICES = (form.NONE, "4", "8")
UPDATE_EVERY_S = 0.05  # streamed text reaches the page at most this often (tokens in between are batched)
SESSION_KEY = "default"  # the stop events' key (gradio passes no request to these bound handlers)


# ---------------------------------------------------------------------------- choosing and loading


def status_text(holder: ChatModel, lang: str) -> str:
    session = holder.session
    if session is None:
        return t(lang, "chat.not_loaded")
    text = t(lang, "chat.loaded", what=session.describe())
    if session.notes:
        text += "\n\n" + "\n\n".join(f"> {note}" for note in session.notes)
    return text


def refresh_choices(ctx: AppContext, adapter: Optional[str]):
    """(adapter picker, model picker) with the runs and models made meanwhile. The value is left
    alone: this also runs when the tab is selected, maybe just as the Runs tab's Chat sets it."""
    return (gr.Dropdown(choices=[form.NONE, *choices.finished_adapters(ctx)]),
            gr.Dropdown(choices=choices.model_choices(ctx)))


def on_adapter(model: Optional[str], adapter: Optional[str]):
    """An adapter was picked: its run's base model, template and system prompt."""
    adapter = None if adapter in (None, "", form.NONE) else adapter
    if not adapter:
        return gr.skip(), gr.skip(), gr.skip()
    p = choices.proposal(model, adapter)
    return p["model"] or gr.skip(), p["template"] or gr.skip(), p["system"] if p["system"] is not None else gr.skip()


def on_model(model: Optional[str], adapter: Optional[str]):
    """A model was picked without an adapter: the template its own files suggest."""
    if adapter not in (None, "", form.NONE) or not model:
        return gr.skip()
    return choices.proposal(model, None)["template"] or gr.skip()


def load(holder: ChatModel, model: Optional[str], adapter: Optional[str], template: Optional[str], quant: Optional[str],
         lang: str, progress=gr.Progress()):
    """Load the model (and adapter); outputs (status, system prompt of the run)."""
    adapter = None if adapter in (None, "", form.NONE) else str(adapter).strip()
    template = None if template in (None, "", form.NONE) else template
    bits = None if quant in (None, "", form.NONE) else int(quant)
    try:
        if not model:
            raise UserError(t(lang, "chat.no_model"))
        holder.load(str(model).strip(), adapter, template, bits,
                    progress=lambda fraction, message: progress(fraction, desc=message))
    except UserError as err:
        gr.Warning(str(err))
        return t(lang, "chat.error", error=str(err)), gr.skip()
    except Exception as err:  # a bug: its traceback goes to the server log, the page gets one line
        import traceback

        traceback.print_exc()
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        gr.Warning(first)
        return t(lang, "chat.error", error=f"{type(err).__name__}: {first}"), gr.skip()
    session = holder.session
    return status_text(holder, lang), session.system if session.system else gr.skip()


def unload(holder: ChatModel, lang: str) -> str:
    holder.unload()
    return status_text(holder, lang)


def from_runs(ctx: AppContext, target: Optional[dict], lang: str):
    """The Runs tab's "Chat with its adapter": (model, adapter, template, system, status); the
    layout loads it next."""
    if not target:
        return (gr.skip(),) * 5
    adapter = target.get("adapter_name_or_path") or form.NONE
    p = choices.proposal(target.get("model_name_or_path"), target.get("adapter_name_or_path"))
    template = target.get("template") or p["template"] or form.NONE
    adapters = [form.NONE, *choices.finished_adapters(ctx)]
    if adapter not in adapters:
        adapters.append(adapter)
    return (target.get("model_name_or_path") or p["model"], gr.Dropdown(choices=adapters, value=adapter), template,
            p["system"] or "", t(lang, "chat.loading"))


# ---------------------------------------------------------------------------- chatting


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


def add_message(message: str, history: Optional[list], base_history: Optional[list], side: bool):
    """The typed message as a new user turn: (message box, history, base history, both chatbots)."""
    text = (message or "").strip()
    if not text:
        return gr.skip(), history, base_history, gr.skip(), gr.skip()
    history = close_turn(list(history or []))
    history.append({"role": "user", "content": text})
    if side:
        base_history = close_turn(list(base_history or []))
        base_history.append({"role": "user", "content": text})
    return "", history, base_history, history, base_history


def respond(holder: ChatModel, history: list, base_history: list, side: bool, system: str, seed: Any, lang: str,
            *gen_values: Any):
    """Answer the last user message of `history` (and of `base_history` side by side), streaming:
    yields (chatbot, base chatbot, history, base history, status)."""
    from core.chat import stream_reply, stream_side_by_side

    if not history or history[-1]["role"] != "user":  # nothing to answer (Regenerate on an empty chat)
        yield history, base_history, history, base_history, gr.skip()
        return
    if side and (not base_history or base_history[-1] != history[-1]):
        # Side by side switched on mid-conversation: the base column answers the same question.
        base_history = close_turn(list(base_history or [])) + [dict(history[-1])]
    stop = holder.new_stop(SESSION_KEY)
    session = holder.session
    status = t(lang, "chat.generating")  # replaces a "Stopped." or an error of the previous answer
    try:
        if session is None:
            raise UserError(t(lang, "chat.load_first"))
        settings = generation_kwargs(dict(zip(GENERATION_CONTROLS, gen_values)), seed)
        system_text = system if (system or "").strip() else None
        if side and not session.has_adapter:
            raise UserError(t(lang, "chat.side_needs_adapter"))
        reply = {"role": "assistant", "content": ""}
        history.append(reply)
        replies = [reply]
        if side:  # both columns stream at once, one token each in turn (core.chat.stream_side_by_side)
            base_reply = {"role": "assistant", "content": ""}
            base_history.append(base_reply)
            replies = [base_reply, reply]
            stream = stream_side_by_side(session, plain(history[:-1]), system=system_text, stop_event=stop, **settings)
        else:
            stream = ((text,) for text in stream_reply(session, plain(history[:-1]), system=system_text,
                                                       stop_event=stop, **settings))
        shown = 0.0
        for texts in stream:
            for answer, text in zip(replies, texts):
                answer["content"] = text
            # The browser re-renders the whole message per update: send at most ~20 a second.
            if time.monotonic() - shown >= UPDATE_EVERY_S:
                shown = time.monotonic()
                yield history, base_history, history, base_history, status
                status = gr.skip()
        if not stop.is_set():  # an answer that ended without a word says so instead of an empty bubble
            for answer in replies:
                if not answer["content"].strip():
                    answer["content"] = t(lang, "chat.no_text")
        status = status_text(holder, lang)
        if stop.is_set() and holder.current_stop(SESSION_KEY) is stop:
            status = t(lang, "chat.stopped")  # by Stop (a new message replaces the event)
    except UserError as err:
        gr.Warning(str(err))
        status = t(lang, "chat.error", error=str(err))
        drop_empty_reply(history, base_history)
    finally:
        stop.set()
    yield history, base_history, history, base_history, status


def stop_current(holder: ChatModel) -> None:
    holder.stop(SESSION_KEY)


def regenerate(history: Optional[list], base_history: Optional[list]):
    """Drop the last answers, so that respond answers the last question again."""
    history, base_history = list(history or []), list(base_history or [])
    for hist in (history, base_history):
        if hist and hist[-1]["role"] == "assistant":
            hist.pop()
    return history, base_history, history, base_history


def clear():
    return [], [], [], [], ""


def toggle_side(side: bool, lang: str):
    label = t(lang, "chat.adapter_answer" if side else "chat.answer")
    return gr.Chatbot(visible=bool(side)), gr.Chatbot(label=label)


def close_turn(history: list) -> list:
    """A conversation that ended on an unanswered user turn (stopped before any token) drops it."""
    if history and history[-1]["role"] == "user":
        history.pop()
    return history


def drop_empty_reply(*histories: list) -> None:
    for hist in histories:
        if hist and hist[-1]["role"] == "assistant" and not content_text(hist[-1]["content"]):
            hist.pop()
