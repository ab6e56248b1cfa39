"""The Evaluate tab in a real browser: pick a run and a dataset, watch the progress bar while
predict generates, read the metrics (base, adapter, delta) and the samples sorted by score change;
the results are saved in the run folder and shown again (summary and tables) when the run is opened
in the Runs tab."""

from __future__ import annotations

import json
import shutil

import pytest

from core.evaluate import PREDICTIONS_FILE, RESULTS_FILE
from tests.e2e.test_webui_e2e import choose, open_in_runs, read_value, set_value, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# gradio 6's Dataframe draws its rows as a virtual list: div[role=row] of div[role=gridcell].
TABLE_JS = """(id) => [...document.querySelectorAll(`#${id} .virtual-body [role=row]`)].map(
  row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.innerText.trim()))"""
HEADERS_JS = """(id) => [...document.querySelectorAll(`#${id} thead th`)].map(th => th.innerText.trim())"""


def test_evaluate_a_run_shows_base_adapter_and_delta_and_keeps_them_in_the_run(page, app, demo_sft_run):
    run = app.saves / "eval-me"
    shutil.copytree(demo_sft_run, run)  # a finished demo run: its adapter learned demo_sft's answers
    launch = json.loads((run / "launch.json").read_text())
    (run / "launch.json").write_text(json.dumps({**launch, "pgid": None}))  # not a group to end at teardown
    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_selector("#evaluate-start")
    page.wait_for_timeout(1500)  # the tab's refresh of its choices (on select) has re-rendered the pickers
    set_value(page, "evaluate-adapter", str(run))  # the picker takes any run folder typed in
    assert read_value(page, "evaluate-adapter") == str(run)
    choose(page, "evaluate-dataset", "demo_sft")
    set_value(page, "evaluate-max-samples", "6")
    set_value(page, "evaluate-max-new-tokens", "20")
    page.locator("#evaluate-start").click()

    # The bar runs while the answers are generated, then ends done.
    bar = "#evaluate-progress-bar"
    page.wait_for_selector(f"{bar}[data-state='running']")
    seen = set()

    def finished() -> bool:
        state = page.locator(bar).get_attribute("data-state") if page.locator(bar).count() else None
        seen.add(page.locator(bar).get_attribute("data-percent") if state == "running" else None)
        return state in ("done", "failed")

    wait_until(page, finished, 300, "the evaluation to end", status=lambda p: p.locator("#evaluate-status").inner_text())
    assert page.locator(bar).get_attribute("data-state") == "done", page.locator("#evaluate-status").inner_text()
    assert len(seen - {None}) >= 2  # several fractions shown along the way
    page.wait_for_function("() => document.querySelector('#evaluate-status').innerText.includes('Saved in')")

    # Metrics: base, adapter and delta for each metric; the adapter learned the demo answers.
    assert page.evaluate(HEADERS_JS, "evaluate-metrics")[:4] == ["metric", "base", "adapter", "delta"]
    metrics = {row[0]: row[1:4] for row in page.evaluate(TABLE_JS, "evaluate-metrics")}
    assert set(metrics) == {"bleu-4", "rouge-1", "rouge-2", "rouge-l", "exact_match"}
    base, adapter, delta = map(float, metrics["rouge-l"])
    assert adapter > base and delta == pytest.approx(adapter - base, abs=0.02)

    # Saved in the run folder: the same numbers as the table.
    (folder,) = [p for p in (run / "eval").iterdir() if p.name.startswith("demo_sft-")]
    results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    assert results["predict_rouge-l"] == pytest.approx(adapter, abs=0.01)
    saved = [json.loads(line) for line in (folder / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()]
    assert len(saved) == 6

    # Samples: the ones where the adapter got worse (smallest change) first. The table draws the
    # rows in view (a virtual list), so the first rows are read.
    samples = page.evaluate(TABLE_JS, "evaluate-samples")
    assert samples and samples[0][0] == f"{min(r['score_change'] for r in saved):+.2f}"
    changes = [float(row[0]) for row in samples]
    assert changes == sorted(changes)
    assert samples[0][2] in {r["label"] for r in saved}  # prompt, reference, base answer, adapter answer, scores

    # The Runs tab shows them again when the run is opened.
    open_in_runs(page, run)
    page.wait_for_function("() => document.querySelector('#runs-details').innerText.includes('Evaluations')")
    details = page.locator("#runs-details").inner_text()
    assert "demo_sft, 6 samples" in details and f"adapter {adapter:.2f}" in details
    assert "Stopped: completed" in details  # why the run ended
    # With the newest evaluation's tables, as the Evaluate tab drew them.
    rows_js = "(id) => document.querySelectorAll(`#${id} .virtual-body [role=row]`).length"
    page.wait_for_function(f"() => ({rows_js})('runs-eval-metrics') === {len(metrics)}")
    assert page.evaluate(HEADERS_JS, "runs-eval-metrics")[:4] == ["metric", "base", "adapter", "delta"]
    assert {row[0]: row[1:4] for row in page.evaluate(TABLE_JS, "runs-eval-metrics")} == metrics
    page.wait_for_function(f"() => ({rows_js})('runs-eval-samples') > 0")
    assert page.evaluate(TABLE_JS, "runs-eval-samples")[0] == samples[0]

