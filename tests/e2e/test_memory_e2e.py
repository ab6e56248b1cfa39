"""The Train tab's memory estimate in a real browser: shown for the form as it opens, beside the
memory there is, updated as the fields change, and a run that cannot fit is flagged with what to
change before Start is pressed."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_webui_e2e import choose, set_value, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVENT_S = 60  # one event round trip of the app on a loaded 2-core machine (the handler reads a config.json)


def memory_text(page) -> str:
    return page.locator("#train-memory").inner_text()


def gb(text: str, label: str) -> float:
    number, unit = re.search(label + r"\s*([\d.]+) (MB|GB)", text).groups()
    return float(number) / (1024 if unit == "MB" else 1)


def test_the_estimate_shows_and_flags_a_run_that_cannot_fit(page):
    # The form as it opens (the demo model, LoRA, 8 x 256 tokens): an estimate that fits.
    wait_until(page, lambda: "Estimated peak memory" in memory_text(page), EVENT_S, "the memory estimate",
               status=memory_text)
    text = memory_text(page)
    assert "8 × 256 tokens" in text and "Fits" in text and ("Available: RAM" in text or "Available: GPU" in text)
    for part in ("framework", "weights", "activations", "logits"):
        assert part in text
    small = gb(text, "Estimated peak memory:")
    # A batch no machine holds: flagged, with the changes that would make it fit.
    set_value(page, "field-per_device_train_batch_size", "4096")
    set_value(page, "field-cutoff_len", "8192")
    wait_until(page, lambda: "Will not fit" in memory_text(page), EVENT_S, "the run flagged as too big",
               status=memory_text)
    text = memory_text(page)
    assert "4096 × 8192 tokens" in text and gb(text, "Estimated peak memory:") > 100 * small
    assert "per_device_train_batch_size" in text and "cutoff_len" in text and "✓" in text
    # Following one of them brings it back under the memory there is.
    set_value(page, "field-per_device_train_batch_size", "2")
    set_value(page, "field-cutoff_len", "256")
    wait_until(page, lambda: "Fits" in memory_text(page), EVENT_S, "the estimate to fit again", status=memory_text)
    # Full training keeps more than LoRA: the estimate follows the method too.
    lora = gb(memory_text(page), "trained parameters, gradients and AdamW states")
    choose(page, "field-finetuning_type", "full")
    wait_until(page, lambda: gb(memory_text(page), "trained parameters, gradients and AdamW states") > 10 * lora,
               EVENT_S, "the estimate of full training", status=memory_text)
