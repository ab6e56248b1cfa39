"""The Export tab: merge a LoRA adapter into its base model, in a subprocess with a progress bar.

The merge runs as `python launch.py export ...` (core/export.py), so the web server never holds
the weights and stays responsive; its `[tuneforge-progress]` lines drive the bar. A non-empty
export folder is written only after the user confirms (then `--overwrite`). Merged models go by
default next to the demo model (DATASET_DIR/models/RUN-merged), where the Train and Chat tabs
list them as base models.
"""

from __future__ import annotations

import html
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from core.errors import UserError
from webui.command import ROOT
from core.progress import read_progress
from webui.context import AppContext, display_path, resolve_path
from webui.i18n import I18N, t
from webui.tabs.chat import finished_adapters, local_models, proposal

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


def progress_html(fraction: float, text: str, state: str = "running") -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    css = {"done": " tf-finished", "failed": " tf-failed"}.get(state, "")
    return (f'<div class="tf-progress" id="export-progress-bar" data-state="{state}" data-percent="{pct:.0f}">'
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


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    job = ExportJob()
    c: dict[str, Any] = {}
    gr.Markdown(I18N("export.intro"))
    with gr.Row(equal_height=False):
        adapters = finished_adapters(ctx)
        model = (proposal(None, adapters[0])["model"] if adapters else None) or display_path(ctx.demo_model)
        c["model"] = gr.Dropdown(choices=local_models(ctx), value=model, allow_custom_value=True,
                                 label=I18N("field.model_name_or_path"), info=I18N("chat.model_info"),
                                 elem_id="export-model", scale=3, interactive=True)
        c["adapter"] = gr.Dropdown(choices=adapters, value=adapters[0] if adapters else None, allow_custom_value=True,
                                   label=I18N("export.adapter"), info=I18N("export.adapter_info"),
                                   elem_id="export-adapter", scale=3, interactive=True)
        c["refresh"] = gr.Button("↻", elem_id="export-refresh", scale=0, min_width=48)
    with gr.Row(equal_height=False):
        c["dir"] = gr.Textbox(value=default_export_dir(ctx, adapters[0]) if adapters else "", label=I18N("export.dir"),
                              info=I18N("export.dir_info"), elem_id="export-dir", scale=3)
        c["size"] = gr.Textbox(value="2GB", label=I18N("export.size"), info=I18N("export.size_info"),
                               elem_id="export-size", scale=1)
    c["start"] = gr.Button(I18N("export.start"), variant="primary", elem_id="export-start")
    with gr.Row(visible=False, elem_id="export-confirm-row") as confirm_row:
        c["confirm_text"] = gr.Markdown("")
        c["confirm"] = gr.Button(I18N("export.confirm"), variant="stop", elem_id="export-confirm")
        c["cancel"] = gr.Button(I18N("export.cancel"), elem_id="export-cancel")
    c["confirm_row"] = confirm_row
    c["progress"] = gr.HTML("", elem_id="export-progress")
    c["status"] = gr.Markdown("", elem_id="export-status")
    c["log"] = gr.Textbox(value="", label=I18N("export.log"), lines=8, max_lines=8, interactive=False,
                          autoscroll=True, elem_id="export-log")
    c["go"] = gr.State(False)
    _wire(ctx, job, c, lang)
    return c


def _wire(ctx: AppContext, job: ExportJob, c: dict[str, Any], lang) -> None:
    import gradio as gr

    def refresh(adapter):
        return gr.Dropdown(choices=finished_adapters(ctx), value=adapter), gr.Dropdown(choices=local_models(ctx))

    c["refresh"].click(refresh, c["adapter"], [c["adapter"], c["model"]])

    def on_adapter(model, adapter):
        if not adapter:
            return gr.skip(), gr.skip()
        p = proposal(model, adapter)
        return p["model"] or gr.skip(), default_export_dir(ctx, adapter)

    c["adapter"].input(on_adapter, [c["model"], c["adapter"]], [c["model"], c["dir"]])

    def check(model, adapter, export_dir, lang_value):
        """Ask before writing into a non-empty folder; otherwise go straight on."""
        if not (model and adapter and (export_dir or "").strip()):
            gr.Warning(t(lang_value, "export.pick"))
            return gr.Row(visible=False), "", False
        if needs_confirmation(export_dir):
            return gr.Row(visible=True), t(lang_value, "export.confirm_ask", path=export_dir.strip()), False
        return gr.Row(visible=False), "", True

    def run(model, adapter, export_dir, size, go, overwrite, lang_value):
        if not go:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        argv = export_argv(str(model).strip(), str(adapter).strip(), export_dir.strip(), (size or "2GB").strip(), overwrite)
        yield progress_html(0.0, t(lang_value, "export.running")), t(lang_value, "export.running"), ""
        try:
            code = None
            for fraction, message, log, code in job.run(argv):
                state = "running" if code is None else ("done" if code == 0 else "failed")
                yield progress_html(fraction if state != "done" else 1.0, message, state), gr.skip(), "\n".join(log)
        except UserError:
            gr.Warning(t(lang_value, "export.busy"))
            yield gr.skip(), t(lang_value, "export.busy"), gr.skip()
            return
        if code == 0:
            yield gr.skip(), t(lang_value, "export.done", path=export_dir.strip()), gr.skip()
        else:
            errors = [line for line in log if line.startswith("error:")]
            error = errors[-1].removeprefix("error:").strip() if errors else (log[-1] if log else f"exit code {code}")
            gr.Warning(error)
            yield gr.skip(), t(lang_value, "export.failed", error=error), gr.skip()

    def run_new(model, adapter, export_dir, size, go, lang_value):
        yield from run(model, adapter, export_dir, size, go, False, lang_value)

    def run_overwrite(model, adapter, export_dir, size, go, lang_value):
        yield from run(model, adapter, export_dir, size, go, True, lang_value)

    inputs = [c["model"], c["adapter"], c["dir"], c["size"], c["go"], lang]
    outputs = [c["progress"], c["status"], c["log"]]
    c["start"].click(check, [c["model"], c["adapter"], c["dir"], lang], [c["confirm_row"], c["confirm_text"], c["go"]]) \
        .then(run_new, inputs, outputs, concurrency_id="export")
    c["confirm"].click(lambda: (gr.Row(visible=False), True), None, [c["confirm_row"], c["go"]]) \
        .then(run_overwrite, inputs, outputs, concurrency_id="export")
    c["cancel"].click(lambda: (gr.Row(visible=False), False), None, [c["confirm_row"], c["go"]])
