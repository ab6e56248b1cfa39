"""The Chat tab's server state: the one model loaded in the app server, shared by every browser.

The loaded model belongs to the app server (one `ChatModel` per app, guarded by a lock): every
browser connected to it talks to the same model, one answer at a time; the page says so.
torch is imported only when a model is loaded (core.chat is light).
"""

from __future__ import annotations

import threading
from typing import Optional

from webui.paths import resolve_path


class ChatModel:
    """The app server's one loaded chat model, shared by every browser session.

    `_lock` serialises Load/Unload; core.chat's session lock serialises generations. Stop events
    are kept by key, so that Stop (or a new message) ends only the answer of that key; the Chat
    tab's handlers use one key today (see handlers.SESSION_KEY).
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

    def current_stop(self, key: str) -> Optional[threading.Event]:
        return self._stops.get(key)

    def stop(self, key: str) -> bool:
        event = self._stops.get(key)
        if event is None or event.is_set():
            return False
        event.set()
        return True
