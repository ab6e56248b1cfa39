"""Journeys of issue 13 in a real browser: lists that follow new runs, logs that follow their
newest line, form details, downloads. Each test fails if its defect comes back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e import test_webui_e2e as webui_e2e

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Bounds that come from the work: an event round trip of the app on a loaded 2-core machine
# (one handler that lists the saves folder), not a guess at a fixed delay.
EVENT_S = 60


def fake_finished_run(saves: Path, name: str) -> Path:
    """A finished LoRA run folder as the lists see it: status.json and adapter_config.json."""
    run = saves / name
    run.mkdir(parents=True)
    (run / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "updated": time.time()}))
    return run


def options_of(page, elem_id: str) -> list[str]:
    """The options a dropdown offers (opened, read, closed again)."""
    page.locator(f"#{elem_id} input").first.click()
    options = page.locator(f"#{elem_id} [role=option]")
    options.first.wait_for(state="attached", timeout=EVENT_S * 1000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return [t.strip().split("\n")[-1].strip() for t in texts]  # the chosen one starts with a ✓ line


def test_a_new_run_is_listed_in_chat_and_export_without_refresh(page, app):
    run = fake_finished_run(app.saves, "journey-new-run")
    shown = str(run)
    # The page was loaded before the run existed: selecting the tab lists it.
    for tab, elem_id in (("Chat", "chat-adapter"), ("Export", "export-adapter")):
        page.get_by_role("tab", name=tab).click()
        webui_e2e.wait_until(page, lambda: any(o.endswith("journey-new-run") for o in options_of(page, elem_id)),
                             EVENT_S, f"{shown} in the {tab} adapter list")
    # A page loaded afterwards lists it too (the server-side config was built before the run).
    page.reload()
    page.wait_for_selector("#tf-ready [data-ready]", state="attached")
    page.get_by_role("tab", name="Export").click()
    webui_e2e.wait_until(page, lambda: webui_e2e.read_value(page, "export-adapter").endswith("journey-new-run"),
                         EVENT_S, "the newest run picked in the Export tab")


def hint_of(page, elem_id: str) -> str:
    """The hint (info) text under a control's label."""
    return page.locator(f"#{elem_id} [data-testid='block-info'], #{elem_id} .info, #{elem_id} span.info").first.inner_text()


LABEL_CLIPPED_JS = """(id) => {
  const root = document.querySelector(`#${id}`);
  const label = root && Array.from(root.querySelectorAll('span, label')).find(e => e.innerText.trim() === 'Train on prompt');
  if (!label) return 'missing';
  return label.scrollWidth > label.clientWidth + 1 || label.getBoundingClientRect().height > 2.2 * parseFloat(getComputedStyle(label).lineHeight || 16) ? 'clipped' : 'ok';
}"""


def test_form_details_read_right(page, app):
    page.locator("#group-advanced").get_by_text("Advanced", exact=False).first.click()
    page.locator("#field-train_sampling_strategy").wait_for(timeout=EVENT_S * 1000)
    # Batch sampling: a dropdown holding the true default, and a hint that names it.
    assert page.locator("#field-train_sampling_strategy input[role=listbox], #field-train_sampling_strategy input").count()
    assert webui_e2e.read_value(page, "field-train_sampling_strategy") == "group_by_length"
    offered = options_of(page, "field-train_sampling_strategy")
    assert {"group_by_length", "batch_rebalance"} <= set(offered) and len(offered) >= 3, offered
    sampling_hint = page.locator("#field-train_sampling_strategy").inner_text()
    assert "Default: group_by_length" in sampling_hint and "'random' (default)" not in sampling_hint
    # The gradient accumulation hint keeps its × signs (markdown would turn * into italics).
    accumulation = page.locator("#field-gradient_accumulation_steps").inner_text()
    assert "per_device_train_batch_size × num_devices × gradient_accumulation_steps" in accumulation, accumulation
    # The Datasets picker is a multi-select: its hint does not ask for commas.
    assert "comma" not in page.locator("#field-dataset").inner_text().lower()
    # "Train on prompt" is shown whole.
    assert page.evaluate(LABEL_CLIPPED_JS, "field-train_on_prompt") == "ok"
    # The dataset preview measures against the Train tab's cutoff.
    webui_e2e.set_value(page, "field-cutoff_len", "384")
    page.get_by_role("tab", name="Datasets").click()
    page.locator("#data-preview-box").get_by_text("Preview", exact=False).first.click()
    webui_e2e.wait_until(page, lambda: page.locator("#data-preview-cutoff input").count()
                         and webui_e2e.read_value(page, "data-preview-cutoff") == "384",
                         EVENT_S, "the preview's cutoff taken from the Train tab")


AT_END_JS = """(id) => {
  const box = document.querySelector(`#${id} textarea`);
  return box && box.value.includes('line 299') && box.scrollHeight > box.clientHeight
      && box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
}"""


def test_the_runs_log_shows_its_newest_line(page, app):
    run = fake_finished_run(app.saves, "journey-long-log")
    (run / "console.log").write_text("".join(f"line {i}\n" for i in range(300)))
    webui_e2e.open_in_runs(page, run, EVENT_S)
    webui_e2e.wait_until(page, lambda: page.evaluate(AT_END_JS, "runs-log"), EVENT_S,
                         "the Runs log scrolled to its newest line")


TAB_LABELS_JS = """() => Array.from(document.querySelectorAll('#tf-tabs [role=tab]')).map(e => e.innerText.trim())"""
HAS_CJK = r"[\u4e00-\u9fff]"


def test_switching_to_chinese_translates_every_tab_and_label_at_once(page, app):
    import re

    webui_e2e.choose(page, "tf-lang", "中文")
    # Every tab's label at once, not only the current tab's.
    webui_e2e.wait_until(page, lambda: all(re.search(HAS_CJK, label) for label in page.evaluate(TAB_LABELS_JS)),
                         EVENT_S, f"every tab label in Chinese (shown: {page.evaluate(TAB_LABELS_JS)})")
    webui_e2e.wait_until(page, lambda: "暂无任务" in webui_e2e.status_text(page), EVENT_S,
                         "the idle status in Chinese")
    page.locator("#tf-tabs [role=tab]").nth(2).click()  # Datasets
    page.locator("#data-formatting").wait_for(timeout=EVENT_S * 1000)
    for elem_id in ("data-formatting", "data-ranking", "data-file"):
        text = page.locator(f"#{elem_id}").inner_text()
        assert re.search(HAS_CJK, text), f"#{elem_id} still English: {text!r}"
    upload = page.locator("#data-file").inner_text()
    assert "Drop File Here" not in upload and "Click to Upload" not in upload, upload
    assert re.search(HAS_CJK, page.locator("#data-upload-box").inner_text().split("\n")[0])


def download_from(page, button_id: str, file_id: str, tmp_path: Path) -> list[str]:
    """Click a download button, then the zip's link; the names inside the downloaded zip."""
    import zipfile

    page.locator(f"#{button_id}").click()
    link = page.locator(f"#{file_id} a[download], #{file_id} a[href*='.zip']").first
    link.wait_for(timeout=webui_e2e.work_bound(5, 1, EVENT_S) * 1000)
    with page.expect_download() as info:
        link.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    with zipfile.ZipFile(target) as zf:
        return zf.namelist()


def test_a_runs_adapter_and_an_exported_model_download_as_zips(page, app, tmp_path):
    run = fake_finished_run(app.saves, "journey-download")
    (run / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
    (run / "checkpoint-5").mkdir()
    (run / "checkpoint-5" / "optimizer.pt").write_bytes(b"\0" * 64)
    webui_e2e.open_in_runs(page, run, EVENT_S)
    names = download_from(page, "runs-download", "runs-download-file", tmp_path)
    assert "journey-download/adapter_model.safetensors" in names and "journey-download/adapter_config.json" in names
    assert not any("checkpoint-" in n for n in names), names  # the adapter, not the training states

    exported = app.saves / "exports" / "journey-merged"
    exported.mkdir(parents=True)
    (exported / "config.json").write_text("{}")
    (exported / "model.safetensors").write_bytes(b"\0" * 2048)
    page.get_by_role("tab", name="Export").click()
    webui_e2e.set_value(page, "export-dir", str(exported))
    names = download_from(page, "export-download", "export-download-file", tmp_path)
    assert sorted(names) == ["journey-merged/config.json", "journey-merged/model.safetensors"], names


def test_a_reload_mid_run_shows_the_runs_settings_and_command(page, app):
    webui_e2e.setup_run(page, 400)
    webui_e2e.set_value(page, "field-learning_rate", "0.0007")
    previewed, run_dir = webui_e2e.preview_and_start(page, app)
    webui_e2e.wait_until(page, lambda: (run_dir / "launch.json").exists(), EVENT_S, "launch.json")
    try:
        page.reload()  # a new session: the form and the command box come back from the live run
        page.wait_for_selector("#tf-ready [data-ready]", state="attached")
        webui_e2e.wait_until(page, lambda: webui_e2e.read_value(page, "train-command") == previewed, EVENT_S,
                             "the running run's command in the command box")
        assert webui_e2e.read_value(page, "field-max_steps") == "400"
        assert float(webui_e2e.read_value(page, "field-learning_rate")) == 0.0007
    finally:
        page.locator("#train-abort").click()
        launch = json.loads((run_dir / "launch.json").read_text())
        webui_e2e.wait_until(page, lambda: not webui_e2e.group_alive(launch["pgid"]), 2 * EVENT_S,
                             "every process of the aborted run to end")


BOTS_JS = """() => ['chat-base', 'chat-bot'].map(id => {
  const msgs = document.querySelectorAll(`#${id} .message.bot, #${id} [data-testid="bot"]`);
  return msgs.length ? msgs[msgs.length - 1].innerText.trim() : '';
})"""


@pytest.fixture(scope="module")
def random_adapter_run(app):
    """A finished run whose adapter is random LoRA weights on the demo model (answers differ)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = fake_finished_run(app.saves, "journey-random-adapter")
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(app.demo_model)),
                           LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(str(run))
    (run / "run.yaml").write_text(f"model_name_or_path: {app.demo_model}\ntemplate: llama2\n")
    return run


def test_side_by_side_streams_base_and_adapter_at_once(page, app, random_adapter_run):
    page.get_by_role("tab", name="Chat").click()
    webui_e2e.set_value(page, "chat-adapter", str(random_adapter_run))
    page.locator("#chat-load").click()
    started = time.time()
    webui_e2e.wait_until(page, lambda: "Loaded:" in page.locator("#chat-status").inner_text(), 120, "the adapter to load")
    load_s = time.time() - started
    page.locator("#chat-side input").check()
    page.wait_for_selector("#chat-base", state="visible")
    page.locator("#chat-settings").get_by_text("System prompt and generation settings").click()
    webui_e2e.set_value(page, "chat-max_new_tokens", "200")
    webui_e2e.set_value(page, "chat-temperature", "50")  # near-uniform sampling: long answers, rarely an early end
    webui_e2e.set_value(page, "chat-top_p", "1")
    webui_e2e.set_value(page, "chat-top_k", "0")
    webui_e2e.set_value(page, "chat-message", "Tell me a long story.")
    page.locator("#chat-send").click()
    # Both columns show text while the answer is still being generated (before: the adapter's
    # answer began only after the base model's had ended).
    both = webui_e2e.wait_until(page, lambda: all(page.evaluate(BOTS_JS)) and page.evaluate(BOTS_JS),
                                max(60, 2 * load_s), "both columns to show text")
    # The base column still grows once the adapter's has begun.
    webui_e2e.wait_until(page, lambda: len(page.evaluate(BOTS_JS)[0]) > len(both[0]), max(30, load_s),
                         "the base column to keep growing after the adapter's began")
    page.locator("#chat-stop").click()
