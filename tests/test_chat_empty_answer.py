"""An answer that ends without text (an adapter that emits end-of-sequence at once) shows a line
saying so, in its own column, not an empty bubble (issue 13, item 5)."""

from __future__ import annotations

from types import SimpleNamespace

import core.chat
from webui.i18n import t
from webui.tabs.chat import handlers
from webui.tabs.chat.model import ChatModel


def test_an_empty_answer_says_the_model_generated_no_text(monkeypatch):
    holder = ChatModel()
    holder.session = SimpleNamespace(has_adapter=True, notes=[], describe=lambda: "model demo")
    # The base answers, the adapter ends at once.
    monkeypatch.setattr(core.chat, "stream_side_by_side",
                        lambda *a, **k: iter([("Hello", ""), ("Hello there", "")]))
    history = [{"role": "user", "content": "Hi"}]
    base_history = [{"role": "user", "content": "Hi"}]
    gen = ["64", True, "0.7", "0.9", "50", "1.0"]
    *_, last = handlers.respond(holder, history, base_history, True, "", -1, "en", *gen)
    history, base_history = last[2], last[3]
    assert base_history[-1]["content"] == "Hello there"
    assert history[-1]["content"] == t("en", "chat.no_text")
