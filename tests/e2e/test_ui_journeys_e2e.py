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
    return [t.strip() for t in texts]


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
