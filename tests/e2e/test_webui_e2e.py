"""The web UI in a real browser, driving the real trainer (`accelerate launch launch.py train`).

Runs use the demo model with small max_steps and logging every step, so each takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from webui.runner import group_alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POINTS_JS = """() => {
  const el = document.querySelector('#train-plot .js-plotly-plot') || document.querySelector('#train-plot [data-testid="plotly"]');
  return el && el.data && el.data[0] && el.data[0].x ? el.data[0].x.length : 0;
}"""


# ---------------------------------------------------------------------------- helpers


def set_value(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(value)
    box.press("Tab")


def read_value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first.input_value()


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.locator(f"#{elem_id}").get_by_role("option", name=option, exact=True).click()


def points(page) -> int:
    return page.evaluate(POINTS_JS)


def progress_step(page) -> int:
    return int(page.locator("#train-progress .tf-progress").get_attribute("data-step") or 0)


def status_text(page) -> str:
    return page.locator("#train-status").inner_text()


def load_factor() -> float:
    """How much slower than an idle machine this one runs now: runnable processes per core (at
    least 1). A load average of 6 on 2 cores makes every step of the app about 3 times slower."""
    import os

    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def work_bound(measured_s: float, times: float, floor_s: float) -> float:
    """A wait's bound from work this test already measured on this machine (a page load, a model
    load): `times` that long, never under floor_s, stretched by the machine's load."""
    return max(floor_s, times * measured_s) * load_factor()


def wait_until(page, predicate, timeout_s: float, what: str, status=None, poll_ms: int = 250):
    """Poll predicate until it is truthy; on time-out name what was awaited and the page's status.
    timeout_s is the bound on an idle machine: it stretches with the load (load_factor)."""
    timeout_s *= load_factor()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(poll_ms)  # keeps the page's events flowing (time.sleep would not)
    shown = (status or status_text)(page)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; status: {shown!r}")


def open_in_runs(page, run: Path, bound_s: float = 60) -> None:
    """The Runs tab with `run` picked: its table refreshed, the run awaited there, chosen by its folder."""
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-refresh").click()
    wait_until(page, lambda: run.name in page.locator("#runs-table").inner_text(), bound_s,
               f"{run.name} in the Runs table")
    page.locator("#runs-pick input").first.click()
    page.locator("#runs-pick").get_by_role("option", name=str(run), exact=True).click()


def run_dir_of(page, app) -> Path:
    text = read_value(page, "field-output_dir")
    path = Path(text)
    return path if path.is_absolute() else ROOT / path


def setup_run(page, max_steps: int) -> None:
    set_value(page, "field-max_steps", str(max_steps))
    set_value(page, "field-logging_steps", "1")
    set_value(page, "field-save_steps", "1000")


def preview_and_start(page, app) -> tuple[str, Path]:
    """Preview the command, then click Start: (the previewed command, the run folder)."""
    page.locator("#train-preview").click()
    page.wait_for_function("() => document.querySelector('#train-command textarea').value.includes('launch.py train')")
    previewed = read_value(page, "train-command")
    run_dir = run_dir_of(page, app)
    page.locator("#train-start").click()
    return previewed, run_dir


def state_of(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "status.json").read_text()).get("state", "")
    except (OSError, ValueError):
        return ""


# ---------------------------------------------------------------------------- tests


def test_upload_a_dataset_with_a_custom_column_mapping(page, app, tmp_path):
    records = [{"question": f"What is {i} plus {i}?", "context": "arithmetic", "reply": str(2 * i)} for i in range(12)]
    upload = tmp_path / "my qa set.json"
    upload.write_text(json.dumps(records), encoding="utf-8")
    page.get_by_role("tab", name="Datasets").click()
    page.locator("#data-file input[type=file]").set_input_files(str(upload))
    page.wait_for_function("() => document.querySelector('#data-detected').innerText.includes('question')")
    assert read_value(page, "data-name") == "my_qa_set"
    set_value(page, "data-name", "my_qa")
    choose(page, "data-col-prompt", "question")
    choose(page, "data-col-query", "context")
    choose(page, "data-col-response", "reply")
    page.locator("#data-register").click()
    page.wait_for_function("() => document.querySelector('#data-table').innerText.includes('my_qa')")
    info = json.loads((app.data / "dataset_info.json").read_text())
    assert info["my_qa"]["columns"] == {"prompt": "question", "query": "context", "response": "reply"}
    assert (app.data / info["my_qa"]["file_name"]).is_file() and info["my_qa"]["file_sha1"]
    # The Train tab offers it for sft.
    page.get_by_role("tab", name="Train").click()
    page.locator("#field-dataset input").click()
    page.locator("#field-dataset").get_by_role("option", name="my_qa", exact=True).wait_for()
    page.keyboard.press("Escape")


def test_a_demo_run_streams_survives_a_reload_and_aborts_cleanly(page, app):
    setup_run(page, 400)
    previewed, run_dir = preview_and_start(page, app)
    wait_until(page, lambda: (run_dir / "launch.json").exists(), 30, "launch.json")
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["command"] == previewed  # what was shown is what runs
    first = wait_until(page, lambda: progress_step(page) or None, 120, "the first logged step")
    wait_until(page, lambda: points(page) >= 3, 60, "three points on the chart")
    wait_until(page, lambda: progress_step(page) > first, 30, "the progress bar to move")

    page.reload()  # a new session: the live run is found again and keeps streaming
    page.wait_for_selector("#tf-ready [data-ready]", state="attached")
    wait_until(page, lambda: points(page) >= 3, 30, "the chart restored after reload")
    before = points(page)
    wait_until(page, lambda: points(page) > before, 30, "new points after reload")
    assert run_dir.name in status_text(page)

    page.locator("#train-abort").click()
    wait_until(page, lambda: "aborted" in status_text(page), 90, "the aborted state")
    assert state_of(run_dir) == "aborted"
    # The trainer writes `aborted` just before it exits; every process of the run ends soon after.
    pgid = json.loads((run_dir / "launch.json").read_text())["pgid"]
    wait_until(page, lambda: not group_alive(pgid), 30, "every process of the aborted run to end")
    assert any(run_dir.glob("checkpoint-*")), "the trainer saves a checkpoint on abort"


def test_a_queued_run_starts_by_itself(page, app):
    setup_run(page, 4)
    first = run_dir_of(page, app)
    page.locator("#train-start").click()
    wait_until(page, lambda: (first / "status.json").exists(), 30, "the first run")
    # Start proposes a fresh output folder for the next run.
    second = wait_until(page, lambda: run_dir_of(page, app) != first and run_dir_of(page, app), 10, "a new output folder")
    setup_run(page, 2)
    page.locator("#train-start").click()
    page.wait_for_function(f"() => document.querySelector('#train-queue').innerText.includes('{second.name}')")
    assert not (second / "status.json").exists()
    wait_until(page, lambda: state_of(first) in ("finished", "failed", "aborted"), 180, "the first run to end")
    assert state_of(first) == "finished", (first / "console.log").read_text()[-2000:]
    wait_until(page, lambda: state_of(second) == "finished", 180, "the queued run to start and finish")
    wait_until(page, lambda: second.name in status_text(page), 10, "the page to follow the second run")
    assert second.name not in page.locator("#train-queue").inner_text()


def test_a_cli_run_appears_in_the_runs_tab(page, app):
    out = app.saves / "cli-run"
    argv = [sys.executable, str(ROOT / "launch.py"), "train", "--model_name_or_path", str(app.demo_model),
            "--dataset", "demo_sft", "--dataset_dir", str(app.data), "--template", "llama2", "--do_train",
            "--output_dir", str(out), "--max_steps", "2", "--logging_steps", "1"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert result.returncode == 0, result.stderr[-2000:]
    # Open it: its state, config and log come from its folder like any UI run's.
    open_in_runs(page, out)
    page.wait_for_function("() => document.querySelector('#runs-details').innerText.includes('cli-run')")
    assert "finished" in page.locator("#runs-details").inner_text()
    page.wait_for_function("() => document.querySelector('#runs-log textarea').value.includes('[step 2/2]')")
    assert "demo_sft" in page.locator("#runs-config").inner_text()


def test_options_follow_the_stage_and_fine_tuning_type(page):
    """dpo's options appear for dpo only, LoRA's for lora, the freeze depth for freeze."""
    def shown(elem_id: str) -> bool:
        return page.locator(f"#{elem_id}").is_visible()

    assert not shown("group-preference") and shown("group-lora")
    page.locator("#group-lora").get_by_text("LoRA / freeze").click()
    page.wait_for_selector("#field-lora_rank", state="visible")
    assert not shown("field-freeze_trainable_layers")
    choose(page, "field-stage", "dpo")
    page.wait_for_selector("#group-preference", state="visible")
    choose(page, "field-finetuning_type", "freeze")
    page.wait_for_selector("#field-freeze_trainable_layers", state="visible")
    assert not shown("field-lora_rank")
    choose(page, "field-finetuning_type", "full")
    page.wait_for_selector("#group-lora", state="hidden")
    choose(page, "field-stage", "sft")
    page.wait_for_selector("#group-preference", state="hidden")


def test_the_page_speaks_chinese_to_a_chinese_browser(browser, app):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(app.url)
    page.wait_for_selector("#train-start")
    page.get_by_role("tab", name="训练").wait_for()
    assert page.locator("#train-start").inner_text().strip() == "开始"
    # Table headers too (translated on the server, since a table's headers are plain text).
    page.wait_for_function("() => document.querySelector('#train-queue').innerText.includes('输出目录')")
    page.get_by_role("tab", name="运行记录").click()
    page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('最终损失')")
    # The switch turns it back to English without a reload.
    choose(page, "tf-lang", "English")
    page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('final loss')")
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("() => document.querySelector('#train-start').innerText.trim() == 'Start'")
    page.wait_for_function("() => document.querySelector('#train-queue').innerText.includes('output folder')")
    context.close()
