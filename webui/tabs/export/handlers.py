"""The Export tab's event handlers, and the merge subprocess they run.

The merge runs as `python launch.py export ...` (core/export.py), so the web server never holds
the weights and stays responsive; its progress lines (core/progress.py) drive the bar. A
non-empty export folder is written only after the user confirms (then `--overwrite`). Merged
models go by default next to the demo model (DATASET_DIR/models/RUN-merged), where the Train and
Chat tabs list them as base models.
"""

from __future__ import annotations

import html
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from core.errors import UserError
from core.progress import read_progress
from webui import choices
from webui.context import AppContext
from webui.i18n import t
from webui.paths import ROOT, display_path, resolve_path

LOG_LINES = 40


def export_argv(model: str, adapter: str, export_dir: str, size: str, overwrite: bool) -> list[str]:
    argv = [sys.executable, str(ROOT / "launch.py"), "export", "--model_name_or_path", model,
            "--adapter_name_or_path", adapter, "--export_dir", export_dir, "--export_size", size]
    return argv + (["--overwrite"] if overwrite else [])


def default_export_dir(ctx: AppContext, adapter: str) -> str:
    name = Path(adapter.rstrip("/")).name or "adapter"
    if name.startswith("checkpoint-"):
        name = f"{Path(adapter.rstrip('/')).parent.name}-{name}"
    return display_path(ctx.dataset_dir / "models" / f"{name}-merged")


def needs_confirmation(export_dir: str) -> bool:
    path = resolve_path(export_dir)
    return path.is_dir() and any(path.iterdir())


def progress_html(fraction: float, text: str, state: str = "running", bar_id: str = "export-progress-bar") -> str:
    """A job's progress bar (export, evaluate): its fraction, its last line, and its end state."""
    pct = max(0.0, min(1.0, fraction)) * 100
    css = {"done": " tf-finished", "failed": " tf-failed"}.get(state, "")
    return (f'<div class="tf-progress" id="{bar_id}" data-state="{state}" data-percent="{pct:.0f}">'
            f'<div class="tf-progress-bar{css}" style="width:{pct:.1f}%"></div>'
            f'<div class="tf-progress-text">{pct:.0f} % — {html.escape(text)}</div></div>')


class ExportJob:
    """One export at a time per app server (a merge holds a whole model in memory)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def run(self, argv: list[str]) -> Iterator[tuple[float, str, list[str], Optional[int]]]:
        """Yield (fraction, message, log tail, exit code or None) while the subprocess runs."""
        if not self.lock.acquire(blocking=False):
            raise UserError("busy")
        try:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True, bufsize=1)
            fraction, message, log = 0.0, "starting", []
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                progress = read_progress(line)
                if progress is not None:
                    fraction, message = progress
                    log = (log + [message])[-LOG_LINES:]
                elif line and "it/s]" not in line:  # tqdm bars of weight loading are noise here
                    log = (log + [line])[-LOG_LINES:]
                else:
                    continue
                yield fraction, message, log, None
            code = proc.wait()
            yield fraction, message, log, code
        finally:
            self.lock.release()


# ---------------------------------------------------------------------------- handlers


def refresh_choices(ctx: AppContext, adapter: Optional[str]):
    """(adapter picker, model picker) with the runs and models made meanwhile."""
    import gradio as gr

    adapters = choices.finished_adapters(ctx)
    if adapter or not adapters:  # a value is left alone (this also runs on tab select)
        return gr.Dropdown(choices=adapters), gr.Dropdown(choices=choices.model_choices(ctx))
    # Nothing picked yet: the newest run, as when the page was built.
    return gr.Dropdown(choices=adapters, value=adapters[0]), gr.Dropdown(choices=choices.model_choices(ctx))


def on_adapter(ctx: AppContext, model: Optional[str], adapter: Optional[str]):
    """An adapter was picked: its run's base model, and an export folder named after it."""
    import gradio as gr

    if not adapter:
        return gr.skip(), gr.skip()
    return choices.proposal(model, adapter)["model"] or gr.skip(), default_export_dir(ctx, adapter)


def check(model: Optional[str], adapter: Optional[str], export_dir: str, lang: str):
    """Ask before writing into a non-empty folder, else go straight on: (confirm row, its text, go)."""
    import gradio as gr

    if not (model and adapter and (export_dir or "").strip()):
        gr.Warning(t(lang, "export.pick"))
        return gr.Row(visible=False), "", False
    if needs_confirmation(export_dir):
        return gr.Row(visible=True), t(lang, "export.confirm_ask", path=export_dir.strip()), False
    return gr.Row(visible=False), "", True


def confirm():
    import gradio as gr

    return gr.Row(visible=False), True


def cancel():
    import gradio as gr

    return gr.Row(visible=False), False


def export(job: ExportJob, model: str, adapter: str, export_dir: str, size: str, go: bool, lang: str):
    """Export into a new or empty folder: yields (progress bar, status, log)."""
    yield from _export(job, model, adapter, export_dir, size, go, False, lang)


def export_replacing(job: ExportJob, model: str, adapter: str, export_dir: str, size: str, go: bool, lang: str):
    """Export into a non-empty folder the user agreed to replace the model files of."""
    yield from _export(job, model, adapter, export_dir, size, go, True, lang)


def _export(job: ExportJob, model: str, adapter: str, export_dir: str, size: str, go: bool, overwrite: bool,
            lang: str) -> Iterator[tuple[Any, Any, Any]]:
    import gradio as gr

    if not go:
        yield gr.skip(), gr.skip(), gr.skip()
        return
    argv = export_argv(str(model).strip(), str(adapter).strip(), export_dir.strip(), (size or "2GB").strip(), overwrite)
    yield progress_html(0.0, t(lang, "export.running")), t(lang, "export.running"), ""
    try:
        code, log = None, []
        for fraction, message, log, code in job.run(argv):
            state = "running" if code is None else ("done" if code == 0 else "failed")
            yield progress_html(fraction if state != "done" else 1.0, message, state), gr.skip(), "\n".join(log)
    except UserError:
        gr.Warning(t(lang, "export.busy"))
        yield gr.skip(), t(lang, "export.busy"), gr.skip()
        return
    if code == 0:
        yield gr.skip(), t(lang, "export.done", path=export_dir.strip()), gr.skip()
    else:
        errors = [line for line in log if line.startswith("error:")]
        error = errors[-1].removeprefix("error:").strip() if errors else (log[-1] if log else f"exit code {code}")
        gr.Warning(error)
        yield gr.skip(), t(lang, "export.failed", error=error), gr.skip()
