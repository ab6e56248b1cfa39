"""The Train tab: set up a run from the schema-built form, start/abort/queue it, watch it live.

Watching: a per-browser-session `Watch` (gr.State) holds incremental readers of the run's
trainer_log.jsonl and console.log, so every timer tick reads only the bytes appended since the
last one. The runs themselves belong to the app server's Runner; a page reload restores the
watch of the live run from it (demo.load).
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
from core.errors import UserError
from webui import command, form
from webui.context import AppContext, display_path, resolve_path
from webui.i18n import I18N, headers, t
from webui.runner import RunRequest

IDLE_TICK_S = 3.0
TICK_S = 1.0  # a logged step reaches the chart within ~1 s; each tick costs app CPU per session
CONSOLE_LINES = 400
FORM_FIELDS: tuple[str, ...] = form.TOP_FIELDS + tuple(n for group in form.GROUPS.values() for n in group)
DROPDOWN_TEXT_FIELDS = ("model_name_or_path", "adapter_name_or_path")


# ---------------------------------------------------------------------------- watching a run


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
        if elapsed is not None:
            text += f" ({fmt_duration(elapsed)})"
        step, total, percent = 0, 0, 0.0
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
        new_lines = watch.console_reader.read_lines()
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


# ---------------------------------------------------------------------------- form helpers


def local_models(ctx: AppContext) -> list[str]:
    """Model folders under the dataset dir's models/ (and the demo model's place)."""
    found = [display_path(ctx.demo_model)]
    for base in {ctx.dataset_dir / "models", ctx.demo_model.parent}:
        if base.is_dir():
            for child in sorted(base.iterdir()):
                if (child / "config.json").is_file() and display_path(child) not in found:
                    found.append(display_path(child))
    return found


def adapters(ctx: AppContext) -> list[str]:
    out = [form.NONE]
    for info in rundir.find_runs(ctx.saves_dir):
        if (info.path / "adapter_config.json").is_file():
            out.append(display_path(info.path))
        for ckpt in sorted(info.path.glob("checkpoint-*")):
            if (ckpt / "adapter_config.json").is_file():
                out.append(display_path(ckpt))
    return out


def dataset_names(ctx: AppContext, stage: Optional[str]) -> list[str]:
    """Registered datasets that the stage accepts (all of them if the registry is not there)."""
    try:
        from core.data.registry import check_stage, load_registry
    except ImportError:
        info = rundir.read_json(ctx.dataset_dir / "dataset_info.json") or {}
        return sorted(info)
    try:
        registry = load_registry(str(ctx.dataset_dir))
    except UserError:
        return []
    names = []
    for name, spec in registry.items():
        try:
            check_stage(spec, stage or "sft")
            names.append(name)
        except UserError:
            continue
    return sorted(names)


def new_output_dir(ctx: AppContext, stage: str, finetuning_type: str) -> str:
    base = f"{stage or 'sft'}-{finetuning_type or 'lora'}-{time.strftime('%Y%m%d-%H%M%S')}"
    queued = {q.run_dir for q in ctx.runner.queue()}
    candidate, n = ctx.saves_dir / base, 1
    while candidate.exists() or candidate in queued:
        n += 1
        candidate = ctx.saves_dir / f"{base}-{n}"
    return display_path(candidate)


def form_values(values: tuple) -> dict[str, Any]:
    out = dict(zip(FORM_FIELDS, values))
    if isinstance(out.get("dataset"), (list, tuple)):
        out["dataset"] = ",".join(out["dataset"])
    for name in DROPDOWN_TEXT_FIELDS:
        if out.get(name) == form.NONE:
            out[name] = ""
    return out


def launch_spec(ctx: AppContext, values: tuple, extra: str, nproc: Any, accel: Any) -> command.LaunchSpec:
    config = command.config_from_form(form_values(values), extra)
    if resolve_path(str(ctx.dataset_dir)) != resolve_path("data"):
        config.setdefault("dataset_dir", display_path(ctx.dataset_dir))
    accel = (accel or "").strip() if isinstance(accel, str) else None
    if accel == form.NONE:
        accel = None
    return command.LaunchSpec(config, int(nproc or 1), accel or None)


def accelerate_configs() -> list[str]:
    examples = command.ROOT / "examples"
    found = [form.NONE]
    if examples.is_dir():
        for path in sorted(examples.glob("*.yaml")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if "distributed_type" in text or "compute_environment" in text:
                found.append(display_path(path))
    return found


# ---------------------------------------------------------------------------- the tab


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Column(elem_id="demo-banner-col"):
        c["demo_md"] = gr.Markdown(visible=False, elem_id="demo-banner")
        c["demo_progress"] = gr.HTML(visible=False, elem_id="demo-progress")
        c["demo_build"] = gr.Button(I18N("demo.build"), visible=False, elem_id="demo-build", size="sm")
    c["demo_timer"] = gr.Timer(1.0, active=False)
    fields: dict[str, Any] = {}
    with gr.Row():
        # A folder choice (local model folders) with any typed path allowed.
        fields["model_name_or_path"] = gr.Dropdown(
            choices=local_models(ctx), value=display_path(ctx.demo_model), allow_custom_value=True,
            label=I18N("field.model_name_or_path"), info=I18N("help.model_name_or_path"),
            elem_id="field-model_name_or_path", scale=3, interactive=True,
        )
        fields["template"] = form.build_control("template", scale=1)
        fields["stage"] = form.build_control("stage", scale=1)
        fields["finetuning_type"] = form.build_control("finetuning_type", scale=1)
    with gr.Row():
        fields["dataset"] = gr.Dropdown(
            choices=dataset_names(ctx, form.default_value("stage")), value=[form.default_value("dataset")],
            multiselect=True, allow_custom_value=False, label=I18N("field.dataset"), info=I18N("help.dataset"),
            elem_id="field-dataset", scale=2, interactive=True,
        )
        fields["adapter_name_or_path"] = gr.Dropdown(
            choices=adapters(ctx), value=form.NONE, allow_custom_value=True,
            label=I18N("field.adapter_name_or_path"), info=I18N("help.adapter_name_or_path"),
            elem_id="field-adapter_name_or_path", scale=2, interactive=True,
        )
        fields["output_dir"] = form.build_control(
            "output_dir", new_output_dir(ctx, form.default_value("stage"), form.default_value("finetuning_type")), scale=2)
    stage, finetuning_type = form.default_value("stage"), form.default_value("finetuning_type")
    for group, names in form.GROUPS.items():
        with gr.Accordion(I18N(f"train.group.{group}"), open=group == "basic", elem_id=f"group-{group}",
                          visible=form.group_applies(group, stage, finetuning_type)) as c[f"group_{group}"]:
            with gr.Row(equal_height=False):
                for i, name in enumerate(names):
                    fields[name] = form.build_control(name, min_width=200,
                                                      visible=form.applies(name, stage, finetuning_type))
            if group == "advanced":
                c["extra"] = gr.Code(value="", language="yaml", label=I18N("train.extra"), elem_id="train-extra",
                                     interactive=True, lines=3)
    with gr.Accordion(I18N("train.group.distributed"), open=False, elem_id="group-distributed"):
        with gr.Row():
            c["nproc"] = gr.Number(value=1, precision=0, minimum=1, label=I18N("train.num_processes"),
                                   info=I18N("train.num_processes_info"), elem_id="train-nproc")
            c["accel"] = gr.Dropdown(choices=accelerate_configs(), value=form.NONE, allow_custom_value=True,
                                     label=I18N("train.accelerate_config"), info=I18N("train.accelerate_config_info"),
                                     elem_id="train-accel")
    with gr.Row(equal_height=False):
        c["config_path"] = gr.Textbox(value=display_path(ctx.saves_dir / "configs" / "train.yaml"), scale=3,
                                      label=I18N("train.config_path"), info=I18N("train.config_path_info"),
                                      elem_id="train-config-path")
        c["save"] = gr.Button(I18N("train.save"), elem_id="train-save", scale=1)
        c["load"] = gr.Button(I18N("train.load"), elem_id="train-load", scale=1)
    with gr.Row():
        c["preview"] = gr.Button(I18N("train.preview"), elem_id="train-preview")
        c["start"] = gr.Button(I18N("train.start"), variant="primary", elem_id="train-start")
        c["abort"] = gr.Button(I18N("train.abort"), variant="stop", elem_id="train-abort")
    c["command"] = gr.Textbox(value="", label=I18N("train.command"), elem_id="train-command",
                              interactive=False, lines=2, max_lines=6)
    c["status"] = gr.Markdown(t("en", "train.idle"), elem_id="train-status")
    c["progress"] = gr.HTML(progress_html(Watch(), "en", None), elem_id="train-progress")
    with gr.Row():
        c["smooth"] = gr.Checkbox(value=True, label=I18N("train.smooth"), elem_id="train-smooth", scale=0, min_width=120)
        c["log_scale"] = gr.Checkbox(value=False, label=I18N("train.log_scale"), elem_id="train-logscale", scale=0, min_width=120)
    c["plot"] = gr.Plot(label=I18N("train.chart"), elem_id="train-plot")
    c["console"] = gr.Textbox(value="", label=I18N("train.console"), lines=12, max_lines=12, autoscroll=True,
                              interactive=False, elem_id="train-console", show_copy_button=True) \
        if _textbox_has_copy() else gr.Textbox(value="", label=I18N("train.console"), lines=12, max_lines=12,
                                              autoscroll=True, interactive=False, elem_id="train-console")
    with gr.Accordion(I18N("train.queue"), open=True, elem_id="train-queue-box"):
        gr.Markdown(I18N("app.server_state"))
        c["queue"] = gr.Dataframe(value=[], headers=headers("en", QUEUE_COLUMNS), interactive=False,
                                  elem_id="train-queue", wrap=True)
        with gr.Row():
            c["queue_pick"] = gr.Dropdown(choices=[], value=None, label=I18N("train.queue_pick"),
                                          elem_id="train-queue-pick", scale=2)
            c["queue_up"] = gr.Button(I18N("train.queue_up"), elem_id="train-queue-up", scale=0, min_width=100)
            c["queue_down"] = gr.Button(I18N("train.queue_down"), elem_id="train-queue-down", scale=0, min_width=100)
            c["queue_remove"] = gr.Button(I18N("train.queue_remove"), elem_id="train-queue-remove", scale=0, min_width=160)
    c["watch"] = gr.State(None)
    c["timer"] = gr.Timer(TICK_S, active=False)
    # While this session follows nothing, look every few seconds for a run that another
    # browser (or the queue) started, so it appears without a reload.
    c["idle_timer"] = gr.Timer(IDLE_TICK_S, active=True)
    c["fields"] = fields
    _wire(ctx, c, fields, lang)
    return c


def _textbox_has_copy() -> bool:
    import inspect

    import gradio as gr

    return "show_copy_button" in inspect.signature(gr.Textbox.__init__).parameters


def _wire(ctx: AppContext, c: dict[str, Any], fields: dict[str, Any], lang) -> None:
    import gradio as gr

    field_inputs = [fields[name] for name in FORM_FIELDS]
    launch_inputs = [c["extra"], c["nproc"], c["accel"], *field_inputs]
    tick_keys = ("status", "progress", "plot", "console", "queue", "queue_pick", "timer")
    tick_outputs = [c["watch"], *(c[k] for k in tick_keys)]

    def run_tick(watch, smooth, log_scale, lang_value):
        watch, outs = tick(ctx, watch, smooth, log_scale, lang_value)
        return [watch, *(outs.get(k, gr.skip()) for k in tick_keys)]

    c["run_tick"] = run_tick
    c["tick_inputs"] = [c["watch"], c["smooth"], c["log_scale"], lang]
    c["tick_outputs"] = tick_outputs
    c["timer"].tick(run_tick, c["tick_inputs"], tick_outputs, show_progress="hidden", queue=False)

    def idle_tick(watch, smooth, log_scale, lang_value):
        following = isinstance(watch, Watch) and watch.timer_on
        if following or not ctx.runner.busy():
            return [gr.skip()] * len(tick_outputs)
        return run_tick(watch, smooth, log_scale, lang_value)  # switches the fast timer on

    c["idle_timer"].tick(idle_tick, c["tick_inputs"], tick_outputs, show_progress="hidden", queue=False)
    for box in (c["smooth"], c["log_scale"]):
        box.change(run_tick, c["tick_inputs"], tick_outputs, show_progress="hidden", queue=False)

    def do_preview(lang_value, extra, nproc, accel, *values):
        try:
            return command.preview(command.build_argv(launch_spec(ctx, values, extra, nproc, accel)))
        except UserError as err:
            gr.Warning(str(err))
            return gr.skip()

    c["preview"].click(do_preview, [lang, *launch_inputs], c["command"])

    def do_start(lang_value, watch, extra, nproc, accel, *values):
        try:
            spec = launch_spec(ctx, values, extra, nproc, accel)
            command.check_config(spec.config, ctx.dataset_dir)
            model = resolve_path(str(spec.config["model_name_or_path"]))
            if model == ctx.demo_model.resolve() and not ctx.demo.ready():
                raise UserError(t(lang_value, "train.demo_not_ready"))
            argv = command.build_argv(spec)
            run_dir = resolve_path(spec.output_dir)
            result = ctx.runner.submit(RunRequest(run_dir, argv, spec.config))
        except UserError as err:
            gr.Warning(str(err))
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        values_d = dict(zip(FORM_FIELDS, values))
        next_dir = new_output_dir(ctx, values_d.get("stage"), values_d.get("finetuning_type"))
        if result == "started":
            gr.Info(t(lang_value, "train.started", run=run_dir.name))
            watch = Watch.of(run_dir)
        else:
            pos = [q.run_dir for q in ctx.runner.queue()].index(run_dir) + 1
            gr.Info(t(lang_value, "train.queued", run=run_dir.name, pos=pos))
        return watch, command.preview(argv), next_dir, gr.Timer(active=True)

    c["start"].click(do_start, [lang, c["watch"], *launch_inputs],
                     [c["watch"], c["command"], fields["output_dir"], c["timer"]]) \
        .then(run_tick, c["tick_inputs"], tick_outputs, show_progress="hidden")

    def do_abort(lang_value, watch):
        active = ctx.runner.active
        if active is None:
            gr.Info(t(lang_value, "train.nothing_to_abort"))
            return
        ctx.runner.abort()
        gr.Info(t(lang_value, "train.aborting", run=active.run_dir.name))

    c["abort"].click(do_abort, [lang, c["watch"]], None)

    def do_save(lang_value, path, extra, nproc, accel, *values):
        try:
            spec = launch_spec(ctx, values, extra, nproc, accel)
            target = resolve_path(path or "")
            saves = ctx.saves_dir.resolve()
            if not str(path or "").strip() or not target.is_relative_to(saves) or target.suffix not in (".yaml", ".yml"):
                raise UserError(f"save the config as a .yaml file under {display_path(saves)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(command.config_yaml(spec.config), encoding="utf-8")
        except UserError as err:
            gr.Warning(str(err))
            return
        gr.Info(t(lang_value, "train.saved", path=display_path(target)))

    c["save"].click(do_save, [lang, c["config_path"], *launch_inputs], None)

    def do_load(lang_value, path):
        try:
            from core.args import load_config_file

            target = resolve_path(path or "")
            config = load_config_file(str(target))
            updates, extra = config_to_form(config)
        except UserError as err:
            gr.Warning(str(err))
            return [gr.skip()] * (len(FORM_FIELDS) + 1)
        gr.Info(t(lang_value, "train.loaded", path=display_path(target)))
        return [extra, *updates]

    c["load"].click(do_load, [lang, c["config_path"]], [c["extra"], *field_inputs])

    def on_stage(stage):
        names = dataset_names(ctx, stage)
        return gr.Dropdown(choices=names, value=[n for n in names if n == form.default_value("dataset")][:1] if names else [])

    fields["stage"].input(on_stage, fields["stage"], fields["dataset"])

    # Options that do nothing for the chosen stage and fine-tuning type are hidden (.change: a
    # loaded config switches them too).
    staged_fields = [n for g in form.STAGED_GROUPS for n in form.GROUPS[g]]

    def show_applicable(stage, finetuning_type):
        return ([gr.Accordion(visible=form.group_applies(g, stage, finetuning_type)) for g in form.STAGED_GROUPS]
                + [gr.update(visible=form.applies(n, stage, finetuning_type)) for n in staged_fields])

    for trigger in (fields["stage"], fields["finetuning_type"]):
        trigger.change(show_applicable, [fields["stage"], fields["finetuning_type"]],
                       [c[f"group_{g}"] for g in form.STAGED_GROUPS] + [fields[n] for n in staged_fields],
                       show_progress="hidden")

    def refresh_choices(stage, selected, model, adapter):
        """Coming back to the tab: datasets registered, models and adapters made meanwhile."""
        names = dataset_names(ctx, stage)
        return (gr.Dropdown(choices=names, value=[n for n in (selected or []) if n in names]),
                gr.Dropdown(choices=local_models(ctx), value=model),
                gr.Dropdown(choices=adapters(ctx), value=adapter))

    c["refresh_choices"] = refresh_choices

    def fresh_output_dir(stage, finetuning_type):
        """Each page load proposes its own new run folder (the build-time default is shared)."""
        return new_output_dir(ctx, stage, finetuning_type)

    c["fresh_output_dir"] = (fresh_output_dir, [fields["stage"], fields["finetuning_type"]], fields["output_dir"])
    c["refresh_inputs"] = [fields["stage"], fields["dataset"], fields["model_name_or_path"], fields["adapter_name_or_path"]]
    c["refresh_outputs"] = [fields["dataset"], fields["model_name_or_path"], fields["adapter_name_or_path"]]

    def on_model(model):
        try:
            from core.data.templates import propose_template
        except ImportError:
            return gr.skip()
        try:
            proposed = propose_template(str(resolve_path(model or "")))
        except (UserError, OSError, ValueError):
            return gr.skip()
        return proposed if proposed else gr.skip()

    fields["model_name_or_path"].input(on_model, fields["model_name_or_path"], fields["template"])

    def on_trust(value, lang_value):
        if value:
            gr.Warning(t(lang_value, "train.trust_warning"))

    fields["trust_remote_code"].change(on_trust, [fields["trust_remote_code"], lang], None)

    def queue_action(action):
        def handler(pick, watch):
            if pick:
                if action == "remove":
                    ctx.runner.remove_queued(pick)
                else:
                    ctx.runner.move_queued(pick, -1 if action == "up" else 1)
            watch = watch if isinstance(watch, Watch) else Watch()
            watch.queue_sig = None  # force the queue table to refresh
            return watch
        return handler

    lang.change(lambda lang_value: queue_table(ctx, lang_value), lang, c["queue"])
    for action in ("up", "down", "remove"):
        c[f"queue_{action}"].click(queue_action(action), [c["queue_pick"], c["watch"]], c["watch"]) \
            .then(run_tick, c["tick_inputs"], tick_outputs, show_progress="hidden")


def config_to_form(config: dict[str, Any]) -> tuple[list[Any], str]:
    """A YAML config as form values (missing keys -> the schema default) and extra YAML."""
    import yaml

    extra: dict[str, Any] = {}
    for key in config:
        if key not in FORM_FIELDS:
            if not form.known_option(key):
                raise UserError(f"unknown key '{key}' in the config file")
            extra[key] = config[key]
    updates = []
    for name in FORM_FIELDS:
        value = config.get(name, form.field_spec(name).default)
        if name == "dataset":
            value = [v.strip() for v in str(value or "").split(",") if v.strip()]
        elif name in DROPDOWN_TEXT_FIELDS and not value:
            value = form.NONE if name == "adapter_name_or_path" else ""
        else:
            value = form.to_ui(name, value)
        updates.append(value)
    return updates, (yaml.safe_dump(extra, sort_keys=False) if extra else "")


def demo_banner(ctx: AppContext, lang: str):
    """The demo-model banner: (markdown, progress, build button, demo timer) updates."""
    import gradio as gr

    demo = ctx.demo
    running = demo.running()
    if running:
        bar = (f'<div class="tf-progress" data-demo="building"><div class="tf-progress-bar" '
               f'style="width:{100 * demo.fraction:.0f}%"></div><div class="tf-progress-text">'
               f'{html.escape(t(lang, "demo.building", message=demo.message))}</div></div>')
        return (gr.Markdown(t(lang, "demo.missing"), visible=True), gr.HTML(bar, visible=True),
                gr.Button(visible=False), gr.Timer(active=True))
    if demo.error:
        return (gr.Markdown(t(lang, "demo.failed", error=demo.error), visible=True), gr.HTML(visible=False),
                gr.Button(visible=True), gr.Timer(active=False))
    if not demo.ready():
        return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=True), gr.Timer(active=False)
    return gr.Markdown(visible=False), gr.HTML(visible=False), gr.Button(visible=False), gr.Timer(active=False)


def wire_demo(ctx: AppContext, c: dict[str, Any], lang) -> list[Any]:
    """Hook the banner to its timer and button; returns the outputs of `demo_banner`."""
    outputs = [c["demo_md"], c["demo_progress"], c["demo_build"], c["demo_timer"]]

    def refresh(lang_value):
        return demo_banner(ctx, lang_value)

    def build_now(lang_value):
        ctx.demo.start()
        return demo_banner(ctx, lang_value)

    c["demo_timer"].tick(refresh, lang, outputs, show_progress="hidden", queue=False)
    c["demo_build"].click(build_now, lang, outputs)
    c["demo_refresh"] = refresh
    return outputs
