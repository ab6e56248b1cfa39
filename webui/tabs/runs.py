"""The Runs tab: every run under the saves folder (UI, CLI, earlier sessions), compared and managed.

Runs are found by their status.json (core.rundir.find_runs), so a run started with
`launch.py train --output_dir saves/x` shows up as well. Open one to read its config and log,
resume it from its last checkpoint, delete it (after a confirmation), or chat with its adapter
(the Chat tab listens to the `chat_target` state set here).
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from core import rundir
from core.errors import UserError
from webui import command
from webui.context import AppContext, display_path, resolve_path
from webui.i18n import I18N, headers, t
from webui.runner import RunRequest

COLUMNS = ("run", "state", "stage", "model", "datasets", "steps", "final_loss", "duration")


def last_row(run_dir: Path) -> Optional[dict[str, Any]]:
    """The last complete row of trainer_log.jsonl with a loss (only the file's tail is read)."""
    for line in reversed(rundir.tail_text(run_dir / rundir.TRAINER_LOG, 16384).splitlines()):
        try:  # the first line of the tail may be cut: it fails to parse and is skipped
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("loss") is not None:
            return row
    return None


def _duration(info: rundir.RunInfo) -> str:
    from webui.tabs.train import fmt_duration

    start = info.launch.get("start_time")
    if not start:
        return "–"
    end = time.time() if info.state in rundir.ACTIVE_STATES else info.status.get("updated")
    return fmt_duration(float(end or start) - float(start))


def run_table(ctx: AppContext) -> list[list[Any]]:
    rows = []
    for info in rundir.find_runs(ctx.saves_dir):
        last = last_row(info.path)
        steps = ""
        if last:
            steps = f"{last.get('step', '')}/{last.get('total_steps', '')}" if last.get("total_steps") else str(last.get("step", ""))
        rows.append([
            display_path(info.path), info.state, info.config.get("stage", ""),
            str(info.config.get("model_name_or_path", "")), str(info.config.get("dataset", "")),
            steps, f"{last['loss']:.4f}" if last and isinstance(last.get("loss"), (int, float)) else "",
            _duration(info),
        ])
    return rows


def last_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest checkpoint whose save finished (a killed save leaves a half-written one)."""
    found = rundir.checkpoints(run_dir, complete=True)
    return found[-1] if found else None


def resume_argv(run_dir: Path, checkpoint: Path) -> list[str]:
    """The run's own launch argv (UI runs) or its run.yaml under accelerate (CLI runs), resumed."""
    launch = rundir.read_json(run_dir / rundir.LAUNCH_JSON) or {}
    argv = launch.get("argv")
    if not argv and isinstance(launch.get("command"), str):
        argv = shlex.split(launch["command"])
    flags = ["--resume_from_checkpoint", display_path(checkpoint)]
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) and "train" in argv:
        argv = list(argv)
        if "--resume_from_checkpoint" in argv:  # resuming a resumed run: replace the old path
            i = argv.index("--resume_from_checkpoint")
            del argv[i:i + 2]
        return argv + flags
    if not (run_dir / rundir.RUN_YAML).is_file():
        raise UserError(f"{display_path(run_dir)} has neither launch.json argv nor run.yaml to resume from")
    n = int(launch.get("world_size") or 1)
    spec = command.LaunchSpec({}, num_processes=n,
                              extra_flags=[display_path(run_dir / rundir.RUN_YAML), "--output_dir", display_path(run_dir), *flags])
    return command.build_argv(spec)  # -> accelerate launch ... launch.py train RUN.yaml --output_dir ...


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Row():
        c["refresh"] = gr.Button(I18N("runs.refresh"), elem_id="runs-refresh", scale=0, min_width=120)
        c["summary"] = gr.Markdown("", elem_id="runs-summary")
    c["table"] = gr.Dataframe(value=[], headers=headers("en", COLUMNS), interactive=False, elem_id="runs-table", wrap=True)
    with gr.Row():
        c["compare"] = gr.Dropdown(choices=[], value=[], multiselect=True, label=I18N("runs.compare"),
                                   elem_id="runs-compare", scale=3)
        c["compare_log"] = gr.Checkbox(value=False, label=I18N("train.log_scale"), scale=0, min_width=120)
    c["overlay"] = gr.Plot(elem_id="runs-overlay", label=I18N("train.chart"))
    c["pick"] = gr.Dropdown(choices=[], value=None, label=I18N("runs.open"), elem_id="runs-pick")
    c["details"] = gr.Markdown("", elem_id="runs-details")
    with gr.Row():
        c["resume"] = gr.Button(I18N("runs.resume"), elem_id="runs-resume")
        c["chat"] = gr.Button(I18N("runs.chat"), elem_id="runs-chat")
        c["delete"] = gr.Button(I18N("runs.delete"), variant="stop", elem_id="runs-delete")
    with gr.Row(visible=False, elem_id="runs-confirm-row") as confirm_row:
        c["confirm_text"] = gr.Markdown("")
        c["confirm"] = gr.Button(I18N("runs.delete_confirm"), variant="stop", elem_id="runs-delete-confirm")
        c["cancel"] = gr.Button(I18N("runs.delete_cancel"), elem_id="runs-delete-cancel")
    c["confirm_row"] = confirm_row
    with gr.Row():
        c["config"] = gr.Code(value="", language="yaml", label=I18N("runs.config"), interactive=False, elem_id="runs-config")
        c["log"] = gr.Textbox(value="", label=I18N("runs.log"), lines=16, max_lines=16, interactive=False,
                              elem_id="runs-log", autoscroll=True)
    _wire(ctx, c, lang)
    return c


def _wire(ctx: AppContext, c: dict[str, Any], lang) -> None:
    import gradio as gr

    from core.plots import overlay_figure

    def refresh(pick, compare, lang_value):
        table = run_table(ctx)
        names = [row[0] for row in table]
        summary = "" if table else t(lang_value, "runs.no_runs", path=display_path(ctx.saves_dir))
        return (gr.Dataframe(value=table, headers=headers(lang_value, COLUMNS)), summary,
                gr.Dropdown(choices=names, value=pick if pick in names else None),
                gr.Dropdown(choices=names, value=[n for n in (compare or []) if n in names]))

    refresh_io = ([c["pick"], c["compare"], lang], [c["table"], c["summary"], c["pick"], c["compare"]])
    c["refresh"].click(refresh, *refresh_io)
    lang.change(refresh, *refresh_io)

    def on_load(demo):
        demo.load(refresh, *refresh_io)

    c["on_load"] = on_load
    c["refresh_on"] = lambda tab: tab.select(refresh, *refresh_io)

    def overlay(compare, log_scale):
        runs = [(Path(name).name, rundir.read_log_rows(resolve_path(name))) for name in compare or []]
        return overlay_figure(runs, log_scale=bool(log_scale))

    c["compare"].change(overlay, [c["compare"], c["compare_log"]], c["overlay"])
    c["compare_log"].change(overlay, [c["compare"], c["compare_log"]], c["overlay"])

    def open_run(pick, lang_value):
        if not pick:
            return "", "", ""
        run_dir = _inside_saves(ctx, pick)
        info = rundir.run_info(run_dir)
        if info is None:
            return "", "", ""
        text = rundir.tail_text(run_dir / rundir.CONSOLE_LOG, 32768)
        ckpt = last_checkpoint(run_dir)
        lines = [f"**{info.name}** — {t(lang_value, 'state.' + info.state) if info.state in rundir.STATES else info.state}"]
        if info.error:
            lines.append(f"> {info.error}")
        if info.launch.get("command"):
            lines.append(f"`{info.launch['command']}`")
        if ckpt is not None:
            lines.append(f"checkpoint: `{display_path(ckpt)}`")
        config_text = (run_dir / rundir.RUN_YAML).read_text(encoding="utf-8", errors="replace") \
            if (run_dir / rundir.RUN_YAML).is_file() else ""
        return "\n\n".join(lines), config_text, text

    c["pick"].change(open_run, [c["pick"], lang], [c["details"], c["config"], c["log"]])

    train = ctx.components.get("train", {})
    tabs = ctx.components.get("tabs")

    def resume(pick, lang_value):
        try:
            if not pick:
                raise UserError(t(lang_value, "runs.pick"))
            run_dir = _inside_saves(ctx, pick)
            ckpt = last_checkpoint(run_dir)
            if ckpt is None:
                raise UserError(t(lang_value, "runs.no_checkpoint", run=run_dir.name))
            info = rundir.run_info(run_dir)
            if info is not None and info.state in rundir.ACTIVE_STATES:
                raise UserError(f"{run_dir.name} is still {info.state}")
            ctx.runner.submit(RunRequest(run_dir, resume_argv(run_dir, ckpt), resume=True))
        except UserError as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip()
        gr.Info(t(lang_value, "runs.resumed", run=run_dir.name, checkpoint=ckpt.name))
        return gr.Tabs(selected="train"), gr.Timer(active=True)

    c["resume"].click(resume, [c["pick"], lang], [tabs, train["timer"]])

    def ask_delete(pick, lang_value):
        if not pick:
            gr.Warning(t(lang_value, "runs.pick"))
            return gr.Row(visible=False), ""
        return gr.Row(visible=True), t(lang_value, "runs.delete_ask", run=pick)

    c["delete"].click(ask_delete, [c["pick"], lang], [c["confirm_row"], c["confirm_text"]])
    c["cancel"].click(lambda: gr.Row(visible=False), None, c["confirm_row"])

    def delete(pick, compare, lang_value):
        try:
            if not pick:
                raise UserError(t(lang_value, "runs.pick"))
            run_dir = _inside_saves(ctx, pick)
            active = ctx.runner.active
            info = rundir.run_info(run_dir)
            if (active is not None and active.run_dir == run_dir) or (info is not None and info.state in rundir.ACTIVE_STATES):
                raise UserError(t(lang_value, "runs.active_no_delete", run=run_dir.name))
            shutil.rmtree(run_dir)
        except UserError as err:
            gr.Warning(str(err))
            return (gr.Row(visible=False), *[gr.skip()] * 4)
        gr.Info(t(lang_value, "runs.deleted", run=run_dir.name))
        return (gr.Row(visible=False), *refresh(None, compare, lang_value))

    c["confirm"].click(delete, [c["pick"], c["compare"], lang],
                       [c["confirm_row"], c["table"], c["summary"], c["pick"], c["compare"]])

    def chat(pick, lang_value):
        try:
            if not pick:
                raise UserError(t(lang_value, "runs.pick"))
            target = chat_target_of(_inside_saves(ctx, pick))
        except UserError as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip()
        return target, gr.Tabs(selected="chat")

    c["chat"].click(chat, [c["pick"], lang], [ctx.components["chat_target"], tabs])


def chat_target_of(run_dir: Path) -> dict[str, Any]:
    """What the Chat tab needs to load a run's result: base model, adapter, template.

    The hook for the Chat tab (webui/tabs/chat.py): it receives this dict through the
    `chat_target` state.
    """
    info = rundir.run_info(run_dir)
    config = info.config if info is not None else {}
    adapter = (run_dir / "adapter_config.json").is_file()
    model = config.get("model_name_or_path")
    if not adapter and (run_dir / "config.json").is_file():
        model = display_path(run_dir)  # a full or freeze run saved a whole model
    if not model:
        raise UserError(f"{run_dir.name} has no run.yaml naming its base model")
    return {
        "model_name_or_path": model,
        "adapter_name_or_path": display_path(run_dir) if adapter else None,
        "template": config.get("template"),
        "run_dir": display_path(run_dir),
        # Each click is a new request, so Chat on the same run again (after Unload) loads it again.
        "requested_at": time.time(),
    }


def _inside_saves(ctx: AppContext, text: str) -> Path:
    path = resolve_path(text)
    if not path.is_relative_to(ctx.saves_dir.resolve()) or path == ctx.saves_dir.resolve():
        raise UserError(f"{text} is not a run under {display_path(ctx.saves_dir)}")
    return path
