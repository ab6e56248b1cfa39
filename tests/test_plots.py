"""core.plots: the live chart and training_loss.html draw the same curves from log rows."""

from __future__ import annotations

import json

from core import plots


def _rows():
    rows = []
    for step in range(1, 21):
        row = {"step": step, "total_steps": 20, "loss": 5.0 / step + (0.3 if step % 2 else 0.0),
               "learning_rate": 1e-3 * (1 - step / 20), "epoch": step / 10}
        if step % 5 == 0:
            row["eval_loss"] = 4.0 / step
        if step % 2 == 0:
            row["rewards/accuracies"] = step / 20
        rows.append(row)
    return rows


def test_loss_figure_has_raw_smoothed_eval_lr_and_extra_metrics():
    fig = plots.loss_figure(_rows())
    names = [trace.name for trace in fig.data]
    assert names[:2] == ["loss", "loss (smoothed)"]
    assert {"eval_loss", "learning_rate", "rewards/accuracies"} <= set(names)
    assert len(fig.data[0].x) == 20
    eval_trace = next(t for t in fig.data if t.name == "eval_loss")
    assert list(eval_trace.x) == [5, 10, 15, 20]


def test_log_scale_and_no_smoothing():
    fig = plots.loss_figure(_rows(), smooth=False, log_scale=True, extra_metrics=False)
    names = [trace.name for trace in fig.data]
    assert "loss (smoothed)" not in names and "rewards/accuracies" not in names
    assert fig.layout.yaxis.type == "log"


def test_smoothing_follows_the_curve_without_lag_at_the_start():
    values = [10.0, 10.0, 10.0]
    assert all(abs(v - 10.0) < 1e-9 for v in plots.smooth_values(values))
    noisy = [1.0, 3.0] * 50
    smoothed = plots.smooth_values(noisy)
    assert max(smoothed[50:]) - min(smoothed[50:]) < 1.0


def test_empty_and_odd_rows_do_not_break_the_chart():
    assert len(plots.loss_figure([]).data[0].x) == 0
    fig = plots.loss_figure([{"step": 1, "loss": float("nan")}, {"step": 2, "loss": 1.0, "note": "text"}])
    assert list(fig.data[0].x) == [2]


def test_write_loss_html_is_self_contained(tmp_path):
    with open(tmp_path / "trainer_log.jsonl", "w", encoding="utf-8") as fh:
        for row in _rows():
            fh.write(json.dumps(row) + "\n")
    out = plots.write_loss_html(tmp_path)
    assert out == tmp_path / "training_loss.html"
    text = out.read_text(encoding="utf-8")
    assert "Plotly" in text and len(text) > 1_000_000  # plotly.js is inlined: readable offline
    assert 'src="http' not in text


def test_overlay_of_several_runs():
    rows_a, rows_b = _rows(), _rows()[:5]
    fig = plots.overlay_figure([("a", rows_a), ("b", rows_b)])
    assert [t.name for t in fig.data][:1] == ["a"] and "b" in [t.name for t in fig.data]
    # Each run's held-out loss is its own trace, at the steps it was measured, with the values logged.
    for name, rows in (("a", rows_a), ("b", rows_b)):
        evals = [row for row in rows if "eval_loss" in row]
        eval_trace = next(t for t in fig.data if t.name == f"{name} eval")
        assert list(eval_trace.x) == [row["step"] for row in evals]
        assert list(eval_trace.y) == [row["eval_loss"] for row in evals]
