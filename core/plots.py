"""Plotly figures from a run's log rows: the web UI's live chart and `--plot_loss` share them.

Light imports: plotly only (no torch), so the UI can draw while the trainer runs elsewhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

# Keys of a log row that are bookkeeping, not curves worth drawing.
_NOT_METRICS = {
    "step", "total_steps", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm", "tokens",
    "elapsed_s", "remaining_s", "percent", "time", "rank",
}


def smooth_values(values: Sequence[float], weight: Optional[float] = None) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard's smoothing).

    The weight grows with the number of points, so a short curve is smoothed lightly and a
    long one more (a 10-point curve keeps its shape, a 1000-point curve loses its noise).
    """
    if not values:
        return []
    if weight is None:
        weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    out, last, n = [], 0.0, 0
    for v in values:
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n) if weight < 1 else v)
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(rows: Iterable[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if _numeric(row.get(key)) and _numeric(row.get("step")):
            xs.append(row["step"])
            ys.append(row[key])
    return xs, ys


def extra_metric_keys(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Numeric keys beyond the standard fields (rm `accuracy`, dpo `rewards/...`), in first-seen order."""
    keys: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in _NOT_METRICS and _numeric(value):
                keys.setdefault(key, None)
    return list(keys)


def loss_figure(
    rows: Sequence[dict[str, Any]],
    smooth: bool = True,
    log_scale: bool = False,
    extra_metrics: bool = True,
    title: Optional[str] = None,
):
    """Loss (raw and smoothed) and eval loss on top, learning rate and extra metrics below."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    rows = list(rows)
    extras = extra_metric_keys(rows) if extra_metrics else []
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.68, 0.32],
        specs=[[{}], [{"secondary_y": bool(extras)}]],
    )
    xs, ys = _series(rows, "loss")
    fig.add_trace(go.Scatter(x=xs, y=ys, name="loss", mode="lines+markers" if len(xs) < 40 else "lines",
                             line={"color": "rgba(31,119,180,0.35)" if smooth else "#1f77b4"},
                             marker={"size": 4}), row=1, col=1)
    if smooth and len(ys) > 1:
        fig.add_trace(go.Scatter(x=xs, y=smooth_values(ys), name="loss (smoothed)", mode="lines",
                                 line={"color": "#1f77b4", "width": 2.5}), row=1, col=1)
    exs, eys = _series(rows, "eval_loss")
    if exs:
        fig.add_trace(go.Scatter(x=exs, y=eys, name="eval_loss", mode="lines+markers",
                                 line={"color": "#d62728"}), row=1, col=1)
    lxs, lys = _series(rows, "learning_rate")
    fig.add_trace(go.Scatter(x=lxs, y=lys, name="learning_rate", mode="lines",
                             line={"color": "#2ca02c", "dash": "dot"}), row=2, col=1)
    for key in extras:
        mx, my = _series(rows, key)
        fig.add_trace(go.Scatter(x=mx, y=my, name=key, mode="lines"), row=2, col=1, secondary_y=True)
    fig.update_yaxes(title_text="loss", type="log" if log_scale else "linear", row=1, col=1)
    fig.update_yaxes(title_text="learning rate", exponentformat="e", row=2, col=1, secondary_y=False)
    if extras:
        fig.update_yaxes(title_text="metrics", row=2, col=1, secondary_y=True)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(
        title=title, height=460, margin={"l": 60, "r": 20, "t": 40 if title else 20, "b": 40},
        legend={"orientation": "h", "y": -0.18}, template="plotly_white", uirevision="keep",
    )
    return fig


def overlay_figure(runs: Sequence[tuple[str, Sequence[dict[str, Any]]]], smooth: bool = True, log_scale: bool = False):
    """Several runs' loss curves on one chart (the Runs tab's comparison)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, rows in runs:
        xs, ys = _series(rows, "loss")
        fig.add_trace(go.Scatter(x=xs, y=smooth_values(ys) if smooth else ys, name=name, mode="lines"))
        exs, eys = _series(rows, "eval_loss")
        if exs:
            fig.add_trace(go.Scatter(x=exs, y=eys, name=f"{name} eval", mode="lines+markers", line={"dash": "dash"}))
    fig.update_layout(
        height=420, template="plotly_white", xaxis_title="step", yaxis_title="loss",
        yaxis_type="log" if log_scale else "linear", margin={"l": 60, "r": 20, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def write_loss_html(run_dir: Path) -> Optional[Path]:
    """Write training_loss.html into the run folder: self-contained, readable offline."""
    from core.rundir import LOSS_PLOT, read_log_rows

    run_dir = Path(run_dir)
    rows = read_log_rows(run_dir)
    if not rows:
        return None
    fig = loss_figure(rows, title=f"Training loss: {run_dir.name}")
    out = run_dir / LOSS_PLOT
    fig.write_html(str(out), include_plotlyjs=True, full_html=True)
    return out
