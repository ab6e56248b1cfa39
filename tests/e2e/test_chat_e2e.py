"""The Chat tab in a real browser: a run's Chat button loads its adapter, answers stream in and
stop on Stop, and side by side shows the base model's answer next to the adapter's."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.e2e import test_webui_e2e as webui_e2e
from tests.test_chat import identity_records

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_NAME = "chat-run"


def set_value(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(value)
    box.press("Tab")


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def read_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first.input_value()


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


BOT_MESSAGES_JS = """(id) => Array.from(document.querySelectorAll(`#${id} .message.bot, #${id} [data-testid="bot"]`))
    .map(el => el.innerText.trim())"""


# Records every length the last bot message is rendered at (a poll from Python could miss all
# but the last render of a short stream).
RECORD_LENGTHS_JS = """(id) => {
    window.__answerLengths = [];
    const root = document.getElementById(id);
    new MutationObserver(() => {
        const messages = root.querySelectorAll('.message.bot, [data-testid="bot"]');
        const n = messages.length ? messages[messages.length - 1].innerText.trim().length : 0;
        const seen = window.__answerLengths;
        if (n && seen[seen.length - 1] !== n) seen.push(n);
    }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def bot_messages(page, elem_id: str) -> list[str]:
    """The bot messages of a chatbot, read in one go (streaming re-renders them many times a second)."""
    return page.evaluate(BOT_MESSAGES_JS, elem_id)


def answer_text(page, elem_id: str) -> str:
    """The last bot message of a chatbot ('' when none yet)."""
    messages = bot_messages(page, elem_id)
    return messages[-1] if messages else ""


def chat_status(page) -> str:
    return text_of(page, "chat-status") if page.locator("#chat-status").count() else ""


def wait_until(page, predicate, timeout_s: float, what: str):
    return webui_e2e.wait_until(page, predicate, timeout_s, what, status=chat_status, poll_ms=100)


@pytest.fixture(scope="module")
def chat_run(app, demo_sft_run) -> Path:
    """The shared demo SFT run, placed in the app's saves/ as a finished run."""
    target = app.saves / RUN_NAME
    shutil.copytree(demo_sft_run, target)
    return target


@pytest.fixture(scope="module")
def training_answer(app) -> tuple[str, str]:
    record = identity_records(app.data)[0]
    return record["instruction"], record["output"].strip()


def open_from_runs(page, run: Path) -> None:
    webui_e2e.open_in_runs(page, run)
    page.locator("#runs-chat").click()
    page.wait_for_selector("#chat-send")
    started = time.time()
    wait_until(page, lambda: "Loaded:" in text_of(page, "chat-status"), 120, "the adapter to load")
    # Later waits on this page are bounded by this load's time on this machine, not by a guess.
    page.load_model_s = time.time() - started
    page.set_default_timeout(webui_e2e.work_bound(page.load_model_s, 3, 30) * 1000)


def test_chat_button_loads_the_adapter_streams_and_stops(page, app, chat_run):
    open_from_runs(page, chat_run)
    status = text_of(page, "chat-status")
    assert RUN_NAME in status and "llama2" in status
    # A second Load replaces the model: the same run in 4 bits, whose slower CPU generation
    # (~30 tokens/s) leaves time to press Stop midway.
    choose(page, "chat-quant", "4")
    page.locator("#chat-load").click()
    wait_until(page, lambda: "4-bit" in text_of(page, "chat-status"), max(120, 4 * page.load_model_s), "the 4-bit load")
    assert RUN_NAME in text_of(page, "chat-status")
    page.locator("#chat-settings").get_by_text("System prompt and generation settings").click()
    set_value(page, "chat-max_new_tokens", "1000")
    # Nearly uniform sampling over the 8000-token vocabulary: end-of-sequence comes about once in
    # 8000 tokens, so the answer runs towards max_new_tokens and Stop lands midway.
    set_value(page, "chat-temperature", "50")
    set_value(page, "chat-top_p", "1")
    set_value(page, "chat-top_k", "0")
    set_value(page, "chat-message", "Tell me a very long story about the sea.")
    page.evaluate(RECORD_LENGTHS_JS, "chat-bot")
    page.locator("#chat-send").click()

    asked = time.time()
    # The first tokens come with "Generating…" in the status (an empty bubble shows while the
    # request waits; pressing Stop then would stop nothing).
    wait_until(page, lambda: "Generating" in text_of(page, "chat-status") and answer_text(page, "chat-bot"),
               max(60, 2 * page.load_model_s), "the first tokens")
    first_token_s = time.time() - asked
    # Stop as soon as the page shows tokens: on a loaded machine the browser shows them late, and
    # a Stop pressed after waiting for more could land after the answer's 1000 tokens are done.
    # force=True: Playwright's own wait before a click (the button still over two animation
    # frames, a hit test) stretches while the page re-renders the stream 20 times a second; it
    # once lasted until the answer had ended. A user's click is an input event sent at once.
    page.locator("#chat-stop").click(force=True)
    wait_until(page, lambda: "Stopped." in text_of(page, "chat-status"), max(30, 3 * first_token_s),
               "the stop to be confirmed")
    # Streamed: the page rendered the answer at two lengths at least before it ended.
    lengths = page.evaluate("window.__answerLengths")
    assert len(lengths) >= 2, lengths
    stopped = answer_text(page, "chat-bot")
    page.wait_for_timeout(1500)
    assert answer_text(page, "chat-bot") == stopped, "no token arrives after Stop"
    assert 0 < len(stopped.split()) < 900, "generation ended long before max_new_tokens"

    # The tab keeps working: the next message gets an answer.
    set_value(page, "chat-message", "Who are you?")
    page.locator("#chat-send").click()
    wait_until(page, lambda: len(bot_messages(page, "chat-bot")) >= 2, 60, "a second answer")


def test_side_by_side_shows_the_base_and_the_adapter_answers(page, app, chat_run, training_answer):
    prompt, expected = training_answer
    open_from_runs(page, chat_run)
    page.locator("#chat-side input").check()
    page.wait_for_selector("#chat-base", state="visible")
    page.locator("#chat-settings").get_by_text("System prompt and generation settings").click()
    page.locator("#chat-do_sample input").uncheck()
    set_value(page, "chat-max_new_tokens", "48")
    set_value(page, "chat-message", prompt)
    page.locator("#chat-send").click()
    wait_until(page, lambda: answer_text(page, "chat-bot") == expected, 90, "the adapter's training answer")
    base = answer_text(page, "chat-base")
    assert base and base != expected, f"the base model should answer differently: {base!r}"


def test_export_asks_before_writing_into_a_non_empty_folder_then_merges(page, app, chat_run):
    target = app.data / "models" / "e2e-merged"
    target.mkdir(parents=True, exist_ok=True)
    (target / "old.txt").write_text("keep me", encoding="utf-8")
    page.get_by_role("tab", name="Export").click()
    page.wait_for_selector("#export-start")
    page.locator("#export-refresh").click()
    page.wait_for_timeout(500)
    choose(page, "export-adapter", str(chat_run))
    # Choosing the adapter proposes a folder next to the demo model; then type our own.
    wait_until(page, lambda: read_value(page, "export-dir").endswith(f"{RUN_NAME}-merged"), 30, "the proposed folder")
    set_value(page, "export-dir", str(target))
    set_value(page, "export-size", "10MB")
    page.locator("#export-start").click()
    page.wait_for_selector("#export-confirm", state="visible")
    assert "not empty" in text_of(page, "export-confirm-row")
    assert not (target / "config.json").exists(), "nothing is written before the confirmation"
    page.locator("#export-confirm").click()
    wait_until(page, lambda: "Exported to" in text_of(page, "export-status") or "failed" in text_of(page, "export-status"),
               240, "the export to finish")
    assert "Exported to" in text_of(page, "export-status"), text_of(page, "export-log")
    bar = page.locator("#export-progress .tf-progress")
    assert bar.get_attribute("data-state") == "done" and bar.get_attribute("data-percent") == "100"
    assert (target / "model.safetensors.index.json").is_file() and (target / "old.txt").read_text() == "keep me"
