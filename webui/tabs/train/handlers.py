"""The Train tab's event handlers, one named function each; layout.py binds them to components.

A handler takes the app's context first (bound with functools.partial), then the values of its
input components in the order layout.py lists them; the form's controls come last, in
webui.form.FORM_FIELDS order. A refusal is one gr.Warning line and leaves the outputs as they
were (gr.skip()).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from core import rundir
from core.errors import UserError
from webui import choices, command, form
from webui.context import AppContext
from webui.i18n import t
from webui.paths import ROOT, display_path, resolve_path
from webui.tabs.train.watch import Watch, queue_table, tick

# The outputs of a timer tick after the watch state, in this order (see tick()).
TICK_KEYS = ("status", "progress", "plot", "console", "queue", "queue_pick", "timer")


# ---------------------------------------------------------------------------- watching


def run_tick(ctx: AppContext, watch: Optional[Watch], smooth: bool, log_scale: bool, lang: str) -> list[Any]:
    import gradio as gr

    watch, outputs = tick(ctx, watch, smooth, log_scale, lang)
    return [watch, *(outputs.get(key, gr.skip()) for key in TICK_KEYS)]


def idle_tick(ctx: AppContext, watch: Optional[Watch], smooth: bool, log_scale: bool, lang: str) -> list[Any]:
    """The slow timer of a session that follows nothing: it looks for a run another browser (or
    the queue) started, and then switches the fast timer on."""
    import gradio as gr

    following = isinstance(watch, Watch) and watch.timer_on
    if following or not ctx.runner.busy():
        return [gr.skip()] * (len(TICK_KEYS) + 1)
    return run_tick(ctx, watch, smooth, log_scale, lang)


# ---------------------------------------------------------------------------- the command


def launch_spec(ctx: AppContext, values: tuple, extra: str, nproc: Any, accel: Any, gpus: Any = None,
                machines: Any = 1, main_ip: Any = "", main_port: Any = command.DEFAULT_PORT) -> command.LaunchSpec:
    """The run the form describes, in the app's dataset folder unless the extra options say otherwise."""
    given = {**form.form_values(values), "dataset_dir": display_path(ctx.dataset_dir)}
    config = command.config_from_form(given, extra)
    return command.LaunchSpec.of_config(config, **command.launcher_from_form(nproc, accel, gpus, machines, main_ip, main_port))


def previews(lang: str, spec: command.LaunchSpec) -> tuple[str, str]:
    """(the command Start runs here, the other machines' commands as markdown: "" on one machine)."""
    here = command.preview(command.build_argv(spec), command.launch_env(spec))
    others = command.other_machine_commands(spec)
    if not others:
        return here, ""
    lines = [t(lang, "train.other_machines", n=len(others) + 1, run_yaml=spec.run_yaml)]
    for rank, line in enumerate(others, start=1):
        lines.append(f"**{t(lang, 'train.machine', rank=rank)}**\n\n```bash\n{line}\n```")
    return here, "\n\n".join(lines)


def refused(lang: str, err: UserError) -> str:
    """A refusal of the launch settings as the one line under the Distributed group."""
    return t(lang, "train.launch_refused", error=str(err).splitlines()[0])


def show_command(ctx: AppContext, lang: str, extra: str, nproc: Any, accel: Any, gpus: Any, machines: Any,
                 main_ip: Any, main_port: Any, *values: Any):
    """Preview, first step: the exact command Start runs and the other machines' (at once; the
    dry run follows)."""
    import gradio as gr

    try:
        return previews(lang, launch_spec(ctx, values, extra, nproc, accel, gpus, machines, main_ip, main_port))
    except UserError as err:
        gr.Warning(str(err))
        return gr.skip(), refused(lang, err)


def follow_launcher(ctx: AppContext, lang: str, extra: str, nproc: Any, accel: Any, gpus: Any, machines: Any,
                    main_ip: Any, main_port: Any, *values: Any):
    """A Distributed setting changed: the preview follows it. A value that cannot run clears the
    command (it would not be what runs) and says why in one line, without a toast per keystroke."""
    try:
        return previews(lang, launch_spec(ctx, values, extra, nproc, accel, gpus, machines, main_ip, main_port))
    except UserError as err:
        return "", refused(lang, err)


def check_with_dry_run(ctx: AppContext, lang: str, extra: str, nproc: Any, accel: Any, gpus: Any, machines: Any,
                       main_ip: Any, main_port: Any, *values: Any):
    """Preview, second step: the trainer checks the run (`launch.py train CONFIG --dry_run`) and
    shows the run.yaml it would record; a refusal is its one line."""
    import gradio as gr

    try:
        return command.dry_run(launch_spec(ctx, values, extra, nproc, accel, gpus, machines, main_ip, main_port).config)
    except UserError as err:
        gr.Warning(str(err))
        return ""


def start(ctx: AppContext, lang: str, watch: Optional[Watch], extra: str, nproc: Any, accel: Any, gpus: Any,
          machines: Any, main_ip: Any, main_port: Any, *values: Any):
    """Start the run (or queue it): outputs (watch, command, other machines' commands, next output folder, timer)."""
    import gradio as gr

    try:
        spec = launch_spec(ctx, values, extra, nproc, accel, gpus, machines, main_ip, main_port)
        command.check_config(spec.config, ctx.dataset_dir)
        command.check_hub_model(spec.config)  # asks the hub: only here, not on every preview
        model = resolve_path(str(spec.config["model_name_or_path"]))
        if model == ctx.demo_model.resolve() and not ctx.demo.ready():
            raise UserError(t(lang, "train.demo_not_ready"))
        request = command.run_request(spec)
        shown = previews(lang, spec)
        result = ctx.runner.submit(request)
    except UserError as err:
        gr.Warning(str(err))
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    given = form.form_values(values)
    next_dir = new_output_dir(ctx, given.get("stage"), given.get("finetuning_type"))
    if result == "started":
        gr.Info(t(lang, "train.started", run=spec.run_dir.name))
        watch = Watch.of(spec.run_dir)
    else:
        pos = [q.run_dir for q in ctx.runner.queue()].index(spec.run_dir) + 1
        gr.Info(t(lang, "train.queued", run=spec.run_dir.name, pos=pos))
    return watch, *shown, next_dir, gr.Timer(active=True)


def abort(ctx: AppContext, lang: str, watch: Optional[Watch]) -> None:
    import gradio as gr

    active = ctx.runner.active
    if active is None:
        gr.Info(t(lang, "train.nothing_to_abort"))
        return
    ctx.runner.abort()
    gr.Info(t(lang, "train.aborting", run=active.run_dir.name))


def new_output_dir(ctx: AppContext, stage: Optional[str], finetuning_type: Optional[str]) -> str:
    """A run folder under saves/ that neither exists nor waits in the queue."""
    base = f"{stage or 'sft'}-{finetuning_type or 'lora'}-{time.strftime('%Y%m%d-%H%M%S')}"
    queued = {q.run_dir for q in ctx.runner.queue()}
    candidate, n = ctx.saves_dir / base, 1
    while candidate.exists() or candidate in queued:
        n += 1
        candidate = ctx.saves_dir / f"{base}-{n}"
    return display_path(candidate)


def fresh_output_dir(ctx: AppContext, stage: Optional[str], finetuning_type: Optional[str]) -> str:
    """Each page load proposes its own new run folder (the build-time default is shared)."""
    return new_output_dir(ctx, stage, finetuning_type)


# ---------------------------------------------------------------------------- config files


def save_config(ctx: AppContext, lang: str, path: str, extra: str, nproc: Any, accel: Any, gpus: Any, machines: Any,
                main_ip: Any, main_port: Any, *values: Any) -> None:
    """Save the run's config (the launcher settings are not part of it: they go on the command line)."""
    import gradio as gr

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
    gr.Info(t(lang, "train.saved", path=display_path(target)))


def load_config(lang: str, path: str) -> list[Any]:
    """[extra YAML, *form values] of a config file."""
    import gradio as gr

    from core.args import load_config_file

    try:
        target = resolve_path(path or "")
        updates, extra = command.config_to_form(load_config_file(str(target)))
    except UserError as err:
        gr.Warning(str(err))
        return [gr.skip()] * (len(form.FORM_FIELDS) + 1)
    gr.Info(t(lang, "train.loaded", path=display_path(target)))
    return [extra, *updates]


# The quick starts: one click sets the form to a run that shows something on this machine.
QUICK_STARTS = {
    "demo": "examples/train/sft_lora.yaml",  # the toy demo model: about a minute
    "real": "examples/train/smollm2_identity.yaml",  # SmolLM2-135M-Instruct learns who it is: a few minutes
}


def quick_start(ctx: AppContext, which: str, lang: str) -> list[Any]:
    """[extra YAML, *form values] of a quick start's config, with this app's model folder and a
    new run folder. The real model's button also starts building the model when it is missing
    (the banner's own handler, wired beside this one)."""
    import gradio as gr

    from core.args import load_config_file

    config = load_config_file(str(ROOT / QUICK_STARTS[which]))
    model = ctx.demo_model if which == "demo" or ctx.real_model is None else ctx.real_model.out_dir
    config["model_name_or_path"] = display_path(model)
    config["output_dir"] = new_output_dir(ctx, config.get("stage"), config.get("finetuning_type"))
    updates, extra = command.config_to_form(config)
    gr.Info(t(lang, f"quick.{which}_info"))
    return [extra, *updates]


# ---------------------------------------------------------------------------- the form


def datasets_for_stage(ctx: AppContext, stage: str):
    import gradio as gr

    names = choices.dataset_names(ctx, stage)
    return gr.Dropdown(choices=names, value=[n for n in names if n == form.default_value("dataset")][:1])


def show_applicable(stage: str, finetuning_type: str) -> list[Any]:
    """Hide the groups and options that do nothing for this stage and fine-tuning type (their
    values stay, so switching back loses nothing)."""
    import gradio as gr

    groups = [gr.Accordion(visible=form.group_applies(g, stage, finetuning_type)) for g in form.STAGED_GROUPS]
    fields = [gr.update(visible=form.applies(n, stage, finetuning_type)) for n in staged_fields()]
    return groups + fields


def staged_fields() -> list[str]:
    return [name for group in form.STAGED_GROUPS for name in form.GROUPS[group]]


def refresh_choices(ctx: AppContext, stage: str, selected: Any, model: str, adapter: str):
    """Coming back to the tab: datasets registered, models and adapters made meanwhile."""
    import gradio as gr

    names = choices.dataset_names(ctx, stage)
    return (gr.Dropdown(choices=names, value=[n for n in (selected or []) if n in names]),
            gr.Dropdown(choices=choices.model_choices(ctx), value=model),
            gr.Dropdown(choices=choices.adapters(ctx), value=adapter))


def propose_template(model: str):
    """The template a model's own files suggest, when the user picks or types a model."""
    import gradio as gr

    return choices.template_for_model(model) or gr.skip()


def warn_trust(value: bool, lang: str) -> None:
    import gradio as gr

    if value:
        gr.Warning(t(lang, "train.trust_warning"))


# ---------------------------------------------------------------------------- the queue


def move_queued_up(ctx: AppContext, pick: Optional[str], watch: Optional[Watch]) -> Watch:
    if pick:
        ctx.runner.move_queued(pick, -1)
    return _refresh_queue(watch)


def move_queued_down(ctx: AppContext, pick: Optional[str], watch: Optional[Watch]) -> Watch:
    if pick:
        ctx.runner.move_queued(pick, 1)
    return _refresh_queue(watch)


def remove_queued(ctx: AppContext, pick: Optional[str], watch: Optional[Watch]) -> Watch:
    if pick:
        ctx.runner.remove_queued(pick)
    return _refresh_queue(watch)


def _refresh_queue(watch: Optional[Watch]) -> Watch:
    watch = watch if isinstance(watch, Watch) else Watch()
    watch.queue_sig = None  # the next tick sends the queue table again
    return watch


def queue_headers(ctx: AppContext, lang: str):
    """The queue table in the language just chosen."""
    return queue_table(ctx, lang)


def restore_form(ctx: AppContext, watch: Optional[Watch]) -> list[Any]:
    """[extra YAML, command, *form values] of the live run this session follows (a reload
    mid-run shows that run's settings and command, not the defaults); all skipped otherwise."""
    import gradio as gr

    from core.args import load_config_file

    skip = [gr.skip()] * (len(form.FORM_FIELDS) + 2)
    active = ctx.runner.active
    if not isinstance(watch, Watch) or not watch.run_dir or active is None \
            or Path(watch.run_dir).resolve() != Path(active.run_dir).resolve():
        return skip
    run_yaml = Path(active.run_dir) / "run.yaml"
    try:
        updates, extra = command.config_to_form(load_config_file(str(run_yaml)))
    except (UserError, OSError) as err:  # a run.yaml this form cannot show: keep the form, say why
        gr.Warning(f"{display_path(run_yaml)}: {err}")
        return skip
    launch = rundir.read_json(Path(active.run_dir) / rundir.LAUNCH_JSON) or {}
    return [extra, launch.get("command") or gr.skip(), *updates]
