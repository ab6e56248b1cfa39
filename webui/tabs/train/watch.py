"""Watching a run on the Train tab: one browser session's view of one run, updated by a timer.

A per-session `Watch` (gr.State) holds incremental readers of the run's trainer_log.jsonl and
console.log, so every tick reads only the bytes appended since the last one, and sends only the
outputs that changed. The runs themselves belong to the app server's Runner; a page reload
restores the watch of the live run from it (demo.load).
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from core import rundir
from core.progress import read_progress
from webui.context import AppContext
from webui.i18n import headers, t
from webui.paths import display_path

IDLE_TICK_S = 3.0
TICK_S = 1.0  # a logged step reaches the chart within ~1 s; each tick costs app CPU per session
CONSOLE_LINES = 400


@dataclass
class Watch:
    """What one browser session shows of one run; readers keep their byte offsets."""

    run_dir: Optional[str] = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    log_reader: Optional[rundir.IncrementalReader] = None
    console_reader: Optional[rundir.IncrementalReader] = None
    state: Optional[str] = None
    error: Optional[str] = None
    # The trainer's latest start-up phase (its progress lines: loading libraries, downloading
    # the model, tokenizing...), shown until the first step is logged.
    phase: Optional[tuple[float, str]] = None
    queue_sig: Any = None
    shown_rows: int = -1
    shown_console: int = -1
    shown_status: Optional[str] = None
    timer_on: Optional[bool] = None
    chart_opts: Any = None

    @classmethod
    def of(cls, run_dir: Path) -> "Watch":
        run_dir = Path(run_dir)
        return cls(str(run_dir), log_reader=rundir.IncrementalReader(run_dir / rundir.TRAINER_LOG),
                   console_reader=rundir.IncrementalReader(run_dir / rundir.CONSOLE_LOG))

    @property
    def final(self) -> bool:
        return self.state is not None and self.state not in rundir.ACTIVE_STATES


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_html(watch: Watch, lang: str, started: Optional[float]) -> str:
    last = next((r for r in reversed(watch.rows) if r.get("total_steps")), None)
    state = watch.state or ""
    if last is None:
        elapsed = time.time() - started if started and state in rundir.ACTIVE_STATES else None
        text = t(lang, "train.waiting") if state in rundir.ACTIVE_STATES else ""
        step, total, percent = 0, 0, 0.0
        if watch.phase is not None and state in rundir.ACTIVE_STATES:
            fraction, message = watch.phase
            text, percent = message, 100.0 * fraction  # a download fills the bar; other phases say what runs
        if elapsed is not None:
            text += f" ({fmt_duration(elapsed)})"
    else:
        step, total = int(last.get("step") or 0), int(last.get("total_steps") or 0)
        percent = float(last.get("percent") if last.get("percent") is not None else (100.0 * step / total if total else 0))
        elapsed = last.get("elapsed_s")
        tokens = last.get("tokens")
        tps = f"{tokens / elapsed:,.0f}" if tokens and elapsed else "–"
        text = t(lang, "train.progress", step=step, total=total, percent=f"{percent:.0f}",
                 elapsed=fmt_duration(elapsed), remaining=fmt_duration(last.get("remaining_s")), tps=tps)
    if state == "finished":
        percent = 100.0
    return (
        f'<div class="tf-progress" data-step="{step}" data-total="{total}" data-state="{html.escape(state)}">'
        f'<div class="tf-progress-bar tf-{html.escape(state)}" style="width:{max(0.0, min(100.0, percent)):.1f}%"></div>'
        f'<div class="tf-progress-text">{html.escape(text)}</div></div>'
    )


def status_markdown(watch: Watch, lang: str) -> str:
    if watch.run_dir is None:
        return t(lang, "train.idle")
    state = watch.state or "starting"
    text = t(lang, "train.watching", run=f"`{display_path(watch.run_dir)}`", state=t(lang, f"state.{state}"))
    if state in ("failed", "aborted") and watch.error:
        text += f" — {watch.error}"
    if state == "finished":  # why it ended: early stopping, or every step done
        reason = (rundir.read_json(Path(watch.run_dir) / rundir.STATUS_JSON) or {}).get("stop_reason")
        if reason:
            text += f" — {reason}"
    return text


def read_state(ctx: AppContext, run_dir: Path) -> tuple[str, Optional[str]]:
    status = rundir.read_json(run_dir / rundir.STATUS_JSON) or {}
    state = status.get("state") or "starting"
    if state in rundir.ACTIVE_STATES:
        active = ctx.runner.active
        if active is not None and active.run_dir == run_dir:
            return state, None
        info = rundir.run_info(run_dir)  # not ours: detect a dead run
        if info is not None:
            return info.state, info.error
    return state, status.get("error")


QUEUE_COLUMNS = ("position", "run", "output_dir")


def queue_table(ctx: AppContext, lang: str):
    import gradio as gr

    rows = [[i + 1, q.name, display_path(q.run_dir)] for i, q in enumerate(ctx.runner.queue())]
    return gr.Dataframe(value=rows, headers=headers(lang, QUEUE_COLUMNS))


_FIGURES: "OrderedDict[tuple, Any]" = OrderedDict()
_FIGURES_LOCK = threading.Lock()


def shared_figure(watch: Watch, chart_opts: tuple[bool, bool]):
    """The loss chart of a run at its current rows, built once for every session watching it.

    Building a plotly figure costs ~40 ms; five browsers watching one run would otherwise build
    the same one five times per logged step. Sessions that read the same log hold equal rows.
    """
    from core.plots import loss_figure

    last = watch.rows[-1] if watch.rows else {}
    key = (watch.run_dir, len(watch.rows), last.get("step"), last.get("loss"), chart_opts)
    with _FIGURES_LOCK:
        if key in _FIGURES:
            _FIGURES.move_to_end(key)
            return _FIGURES[key]
    figure = loss_figure(watch.rows, smooth=chart_opts[0], log_scale=chart_opts[1])
    with _FIGURES_LOCK:
        _FIGURES[key] = figure
        while len(_FIGURES) > 16:
            _FIGURES.popitem(last=False)
    return figure


def tick(ctx: AppContext, watch: Optional[Watch], smooth: bool, log_scale: bool, lang: str):
    """One timer tick: new rows and console lines of the watched run, the queue, the timer."""
    import gradio as gr

    watch = watch if isinstance(watch, Watch) else Watch()
    active = ctx.runner.active
    # Follow the server's active run when this session watches nothing or a finished run
    # (so a queued run that starts by itself appears without a click).
    if active is not None and (watch.run_dir is None or (watch.final and Path(watch.run_dir) != active.run_dir)):
        watch = Watch.of(active.run_dir)
    outputs: dict[str, Any] = {}
    if watch.run_dir is not None:
        run_dir = Path(watch.run_dir)
        assert watch.log_reader is not None and watch.console_reader is not None
        new_rows = watch.log_reader.read_rows()
        if watch.log_reader.restarted:  # the log was rewritten (a resume): show it afresh
            watch.rows = []
        watch.rows.extend(new_rows)
        new_lines = []
        for line in watch.console_reader.read_lines():
            progress = read_progress(line)
            if progress is None:
                new_lines.append(line)
            else:
                watch.phase = progress
        if new_lines:
            watch.console = (watch.console + new_lines)[-CONSOLE_LINES:]
        watch.state, watch.error = read_state(ctx, run_dir)
        launch = rundir.read_json(run_dir / rundir.LAUNCH_JSON) or {}
        outputs["progress"] = progress_html(watch, lang, launch.get("start_time"))
        chart_opts = (bool(smooth), bool(log_scale))
        if len(watch.rows) != watch.shown_rows or chart_opts != watch.chart_opts:
            watch.shown_rows, watch.chart_opts = len(watch.rows), chart_opts
            outputs["plot"] = shared_figure(watch, chart_opts)
        if len(watch.console) != watch.shown_console or new_lines:
            watch.shown_console = len(watch.console)
            outputs["console"] = "\n".join(watch.console)
    # Send only what changed: every output of every tick is encoded and sent to each session.
    status = status_markdown(watch, lang)
    if status != watch.shown_status:
        watch.shown_status = outputs["status"] = status
    sig = [q.id for q in ctx.runner.queue()]
    if sig != watch.queue_sig:
        watch.queue_sig = sig
        outputs["queue"] = queue_table(ctx, lang)
        outputs["queue_pick"] = gr.Dropdown(choices=[(q.name, q.id) for q in ctx.runner.queue()], value=None)
    keep = ctx.runner.busy() or (watch.run_dir is not None and not watch.final)
    if keep != watch.timer_on:
        watch.timer_on = keep
        outputs["timer"] = gr.Timer(active=keep)
    return watch, outputs
