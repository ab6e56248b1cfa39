"""The Runs tab's event handlers and what they read: the run table, a run's details and its
newest evaluation's tables, Resume, Delete and "Chat with its adapter".

Runs are found by their status.json (core.rundir.find_runs), so a run started with
`launch.py train --output_dir saves/x` shows up as well. A handler takes the app's context
first (bound by layout.py), then its inputs' values.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from core import rundir
from core.errors import UserError
from webui import command
from webui.context import AppContext
from webui.i18n import headers, t
from webui.paths import display_path, resolve_path
from webui.tabs.evaluate.handlers import newest_result_tables, saved_evaluations
from webui.tabs.train.watch import fmt_duration

COLUMNS = ("run", "state", "stage", "model", "datasets", "steps", "final_loss", "duration")


# ---------------------------------------------------------------------------- the table


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


def duration(info: rundir.RunInfo) -> str:
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
            duration(info),
        ])
    return rows


def refresh(ctx: AppContext, pick: Optional[str], compare: Optional[list], lang: str):
    """(table, summary, run picker, compare picker), keeping the choices that still exist."""
    import gradio as gr

    table = run_table(ctx)
    names = [row[0] for row in table]
    summary = "" if table else t(lang, "runs.no_runs", path=display_path(ctx.saves_dir))
    return (gr.Dataframe(value=table, headers=headers(lang, COLUMNS)), summary,
            gr.Dropdown(choices=names, value=pick if pick in names else None),
            gr.Dropdown(choices=names, value=[n for n in (compare or []) if n in names]))


def overlay(compare: Optional[list], log_scale: bool):
    """The loss curves of the runs to compare, on one chart."""
    from core.plots import overlay_figure

    runs = [(Path(name).name, rundir.read_log_rows(resolve_path(name))) for name in compare or []]
    return overlay_figure(runs, log_scale=bool(log_scale))


def open_run(ctx: AppContext, pick: Optional[str], lang: str) -> tuple[str, str, str]:
    """(details, run.yaml, the console's tail) of the picked run."""
    if not pick:
        return "", "", ""
    run_dir = inside_saves(ctx, pick)
    info = rundir.run_info(run_dir)
    if info is None:
        return "", "", ""
    ckpt = last_checkpoint(run_dir)
    lines = [f"**{info.name}** — {t(lang, 'state.' + info.state) if info.state in rundir.STATES else info.state}"]
    if info.error:
        lines.append(f"> {info.error}")
    if info.status.get("stop_reason") and info.state == "finished":  # early stopping, or all steps done
        lines.append(t(lang, "runs.stop_reason", reason=info.status["stop_reason"]))
    if info.launch.get("command"):
        lines.append(f"`{info.launch['command']}`")
    for rank, line in enumerate(info.launch.get("other_machines") or [], start=1):  # a run on several machines
        lines.append(f"{t(lang, 'train.machine', rank=rank)}: `{line}`")
    if ckpt is not None:
        lines.append(f"checkpoint: `{display_path(ckpt)}`")
    evaluations = saved_evaluations(run_dir, lang)  # the Evaluate tab's results, kept in the run folder
    if evaluations:
        lines.append(evaluations)
    run_yaml = run_dir / rundir.RUN_YAML
    config_text = run_yaml.read_text(encoding="utf-8", errors="replace") if run_yaml.is_file() else ""
    return "\n\n".join(lines), config_text, rundir.tail_text(run_dir / rundir.CONSOLE_LOG, 32768)


def open_evaluation(ctx: AppContext, pick: Optional[str], lang: str):
    """(metrics table, samples table) of the picked run's newest saved evaluation: the Evaluate
    tab's tables again; hidden when the run has none."""
    return newest_result_tables(inside_saves(ctx, pick) if pick else None, lang)


# ---------------------------------------------------------------------------- resume


def last_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest checkpoint whose save finished (a killed save leaves a half-written one)."""
    found = rundir.checkpoints(run_dir, complete=True)
    return found[-1] if found else None


def resume_spec(run_dir: Path, checkpoint: Path) -> command.LaunchSpec:
    """The run launched again as it was (its run.yaml, its launcher settings), plus the one flag
    `--resume_from_checkpoint CHECKPOINT`."""
    info = rundir.run_info(run_dir)
    if info is None or not (run_dir / rundir.RUN_YAML).is_file():
        raise UserError(f"{display_path(run_dir)} has no run.yaml to resume from")
    launch = info.launch
    processes = int(launch.get("num_processes") or launch.get("world_size") or 1)
    # A CLI run started elsewhere may record its output_dir relative to another folder.
    recorded = info.config.get("output_dir")
    elsewhere = not recorded or resolve_path(str(recorded)) != run_dir.resolve()
    # The same GPUs and machines (a run launched before these were recorded: every GPU, one machine).
    port = launch.get("main_process_port", command.DEFAULT_PORT)
    return command.LaunchSpec(run_dir, None, processes, launch.get("accelerate_config"), display_path(checkpoint),
                              ("--output_dir", display_path(run_dir)) if elsewhere else (),
                              gpus=str(launch.get("gpus") or ""), num_machines=int(launch.get("num_machines") or 1),
                              main_process_ip=str(launch.get("main_process_ip") or ""),
                              main_process_port=None if port is None else int(port))


def resume(ctx: AppContext, pick: Optional[str], lang: str):
    """Resume from the last complete checkpoint; outputs (selected tab, the Train tab's timer)."""
    import gradio as gr

    try:
        if not pick:
            raise UserError(t(lang, "runs.pick"))
        run_dir = inside_saves(ctx, pick)
        ckpt = last_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(t(lang, "runs.no_checkpoint", run=run_dir.name))
        info = rundir.run_info(run_dir)
        if info is not None and info.state in rundir.ACTIVE_STATES:
            raise UserError(f"{run_dir.name} is still {info.state}")
        spec = resume_spec(run_dir, ckpt)
        request = command.run_request(spec, resume=True)
        ctx.runner.submit(request)
    except UserError as err:
        gr.Warning(str(err))
        return gr.skip(), gr.skip()
    gr.Info(t(lang, "runs.resumed", run=run_dir.name, checkpoint=ckpt.name))
    if request.launcher.get("other_machines"):  # they wait for each other: the others must resume too
        gr.Info(t(lang, "runs.resume_other_machines", checkpoint=display_path(ckpt)))
    return gr.Tabs(selected="train"), gr.Timer(active=True)


# ---------------------------------------------------------------------------- delete


def ask_delete(pick: Optional[str], lang: str):
    import gradio as gr

    if not pick:
        gr.Warning(t(lang, "runs.pick"))
        return gr.Row(visible=False), ""
    return gr.Row(visible=True), t(lang, "runs.delete_ask", run=pick)


def cancel_delete():
    import gradio as gr

    return gr.Row(visible=False)


def delete(ctx: AppContext, pick: Optional[str], compare: Optional[list], lang: str):
    """Delete the run's folder (never an active run's); outputs (confirm row, *refresh's)."""
    import gradio as gr

    try:
        if not pick:
            raise UserError(t(lang, "runs.pick"))
        run_dir = inside_saves(ctx, pick)
        active = ctx.runner.active
        info = rundir.run_info(run_dir)
        if (active is not None and active.run_dir == run_dir) or (info is not None and info.state in rundir.ACTIVE_STATES):
            raise UserError(t(lang, "runs.active_no_delete", run=run_dir.name))
        shutil.rmtree(run_dir)
    except UserError as err:
        gr.Warning(str(err))
        return (gr.Row(visible=False), *[gr.skip()] * 4)
    gr.Info(t(lang, "runs.deleted", run=run_dir.name))
    return (gr.Row(visible=False), *refresh(ctx, None, compare, lang))


# ---------------------------------------------------------------------------- chat


def chat(ctx: AppContext, pick: Optional[str], lang: str):
    """"Chat with its adapter": outputs (the Chat tab's target, selected tab)."""
    import gradio as gr

    try:
        if not pick:
            raise UserError(t(lang, "runs.pick"))
        target = chat_target_of(inside_saves(ctx, pick))
    except UserError as err:
        gr.Warning(str(err))
        return gr.skip(), gr.skip()
    return target, gr.Tabs(selected="chat")


def chat_target_of(run_dir: Path) -> dict[str, Any]:
    """What the Chat tab needs to load a run's result: base model, adapter, template (the Chat
    tab loads it when its `chat_target` state changes)."""
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


def inside_saves(ctx: AppContext, text: str) -> Path:
    path = resolve_path(text)
    if not path.is_relative_to(ctx.saves_dir.resolve()) or path == ctx.saves_dir.resolve():
        raise UserError(f"{text} is not a run under {display_path(ctx.saves_dir)}")
    return path
