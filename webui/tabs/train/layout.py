"""The Train tab's layout: the demo banner, the form built from core/args.py, the launch buttons,
the live view of the run and the queue; `wire` binds their events to handlers.py."""

from __future__ import annotations

from functools import partial
from typing import Any

from webui import choices, command, form
from webui.context import AppContext
from webui.i18n import I18N, headers, t
from webui.paths import display_path
from webui import build_banner
from webui.tabs.train import handlers, memory
from webui.tabs.train.watch import IDLE_TICK_S, QUEUE_COLUMNS, TICK_S, Watch, progress_html


# The Distributed group's controls, in the order the launch handlers take them after the extra options.
LAUNCHER_KEYS = ("nproc", "accel", "gpus", "machines", "main_ip", "main_port")


def build(ctx: AppContext, lang) -> dict[str, Any]:
    """The tab's components by name (c["fields"]: the form's controls by option name), wired."""
    import gradio as gr

    c: dict[str, Any] = {}
    c["demo_outputs"] = build_banner.build(ctx.demo, "demo", lang)
    with gr.Row(equal_height=True, elem_id="quick-start"):
        c["quick_demo"] = gr.Button(I18N("quick.demo"), elem_id="quick-demo", size="sm")
        c["quick_real"] = gr.Button(I18N("quick.real"), elem_id="quick-real", size="sm")
    c["real_outputs"] = build_banner.build(ctx.real_model, "real", lang) if ctx.real_model is not None else []
    fields, groups, c["extra"] = build_form(ctx)
    c["fields"] = fields
    c.update({f"group_{name}": accordion for name, accordion in groups.items()})
    with gr.Accordion(I18N("train.group.distributed"), open=False, elem_id="group-distributed"):
        build_distributed(c)
    c["memory"] = gr.Markdown("", elem_id="train-memory")
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
    with gr.Accordion(I18N("train.resolved"), open=False, elem_id="train-resolved-box"):
        c["resolved"] = gr.Code(value="", language="yaml", label=I18N("train.resolved_info"), interactive=False,
                                elem_id="train-resolved")
    c["status"] = gr.Markdown(t("en", "train.idle"), elem_id="train-status")
    c["progress"] = gr.HTML(progress_html(Watch(), "en", None), elem_id="train-progress")
    with gr.Row():
        c["smooth"] = gr.Checkbox(value=True, label=I18N("train.smooth"), elem_id="train-smooth", scale=0, min_width=120)
        c["log_scale"] = gr.Checkbox(value=False, label=I18N("train.log_scale"), elem_id="train-logscale", scale=0, min_width=120)
    c["plot"] = gr.Plot(label=I18N("train.chart"), elem_id="train-plot")
    c["console"] = gr.Textbox(value="", label=I18N("train.console"), lines=12, max_lines=12, autoscroll=True,
                              interactive=False, elem_id="train-console", buttons=["copy"])
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
    wire(ctx, c, lang)
    return c


def build_distributed(c: dict[str, Any]) -> None:
    """The Distributed group: processes, GPUs, an accelerate config file, the machines of a
    multi-machine run, and the line that shows the other machines' commands (or why not)."""
    import gradio as gr

    gpus = choices.gpus()
    with gr.Row():
        c["nproc"] = gr.Number(value=1, precision=0, minimum=1, label=I18N("train.num_processes"),
                               info=I18N("train.num_processes_info"), elem_id="train-nproc")
        c["gpus"] = gr.Dropdown(choices=gpus, value=[], multiselect=True, allow_custom_value=bool(gpus),
                                interactive=bool(gpus), label=I18N("train.gpus"),
                                info=I18N("train.gpus_info" if gpus else "train.gpus_none"), elem_id="train-gpus")
        c["accel"] = gr.Dropdown(choices=choices.accelerate_configs(), value=form.NONE, allow_custom_value=True,
                                 label=I18N("train.accelerate_config"), info=I18N("train.accelerate_config_info"),
                                 elem_id="train-accel")
    with gr.Row():
        # No minimum/maximum on these: a value out of range gets the command's own one-line
        # refusal under the group, not Gradio's error box.
        c["machines"] = gr.Number(value=1, precision=0, label=I18N("train.num_machines"),
                                  info=I18N("train.num_machines_info"), elem_id="train-machines")
        c["main_ip"] = gr.Textbox(value="", label=I18N("train.main_ip"), info=I18N("train.main_ip_info"),
                                  elem_id="train-main-ip")
        c["main_port"] = gr.Number(value=command.DEFAULT_PORT, precision=0, label=I18N("train.main_port"),
                                   info=I18N("train.main_port_info"), elem_id="train-main-port")
    c["machine_commands"] = gr.Markdown("", elem_id="train-machine-commands")


def build_form(ctx: AppContext) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(the form's controls by option name, the groups' accordions by group, the extra-options box)."""
    import gradio as gr

    fields: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    stage, finetuning_type = form.default_value("stage"), form.default_value("finetuning_type")
    with gr.Row():
        # A folder choice (local model folders) with any typed path or hub id allowed.
        fields["model_name_or_path"] = gr.Dropdown(
            choices=choices.model_choices(ctx), value=display_path(ctx.demo_model), allow_custom_value=True,
            label=I18N("field.model_name_or_path"), info=I18N("help.model_name_or_path"),
            elem_id="field-model_name_or_path", scale=3, interactive=True,
        )
        fields["template"] = form.build_control("template", scale=1)
        fields["stage"] = form.build_control("stage", scale=1)
        fields["finetuning_type"] = form.build_control("finetuning_type", scale=1)
    with gr.Row():
        fields["dataset"] = gr.Dropdown(
            choices=choices.dataset_names(ctx, stage), value=[form.default_value("dataset")],
            multiselect=True, allow_custom_value=False, label=I18N("field.dataset"), info=I18N("help.dataset"),
            elem_id="field-dataset", scale=2, interactive=True,
        )
        fields["adapter_name_or_path"] = gr.Dropdown(
            choices=choices.adapters(ctx), value=form.NONE, allow_custom_value=True,
            label=I18N("field.adapter_name_or_path"), info=I18N("help.adapter_name_or_path"),
            elem_id="field-adapter_name_or_path", scale=2, interactive=True,
        )
        fields["output_dir"] = form.build_control(
            "output_dir", handlers.new_output_dir(ctx, stage, finetuning_type), scale=2)
    for group, names in form.GROUPS.items():
        with gr.Accordion(I18N(f"train.group.{group}"), open=group == "basic", elem_id=f"group-{group}",
                          visible=form.group_applies(group, stage, finetuning_type)) as groups[group]:
            with gr.Row(equal_height=False):
                for name in names:
                    fields[name] = form.build_control(name, min_width=200,
                                                      visible=form.applies(name, stage, finetuning_type))
            if group == "advanced":
                extra = gr.Code(value="", language="yaml", label=I18N("train.extra"), elem_id="train-extra",
                                interactive=True, lines=3)
    return fields, groups, extra


def wire(ctx: AppContext, c: dict[str, Any], lang) -> None:
    """Bind the tab's events to handlers.py; c gets the tick's inputs and outputs, which the app
    also runs on page load."""
    import gradio as gr

    fields = c["fields"]
    field_inputs = [fields[name] for name in form.FORM_FIELDS]
    launch_inputs = [c["extra"], *(c[key] for key in LAUNCHER_KEYS), *field_inputs]
    c["tick_inputs"] = tick_inputs = [c["watch"], c["smooth"], c["log_scale"], lang]
    c["tick_outputs"] = tick_outputs = [c["watch"], *(c[key] for key in handlers.TICK_KEYS)]
    run_tick = partial(handlers.run_tick, ctx)
    quiet = dict(show_progress="hidden", queue=False)

    c["timer"].tick(run_tick, tick_inputs, tick_outputs, **quiet)
    c["idle_timer"].tick(partial(handlers.idle_tick, ctx), tick_inputs, tick_outputs, **quiet)
    for box in (c["smooth"], c["log_scale"]):
        box.change(run_tick, tick_inputs, tick_outputs, **quiet)

    previews = [c["command"], c["machine_commands"]]
    c["preview"].click(partial(handlers.show_command, ctx), [lang, *launch_inputs], previews) \
        .then(partial(handlers.check_with_dry_run, ctx), [lang, *launch_inputs], c["resolved"])
    # The command follows the Distributed group as it changes (the dry run waits for Preview).
    for key in LAUNCHER_KEYS:
        c[key].change(partial(handlers.follow_launcher, ctx), [lang, *launch_inputs], previews, **quiet)
    c["start"].click(partial(handlers.start, ctx), [lang, c["watch"], *launch_inputs],
                     [c["watch"], *previews, fields["output_dir"], c["timer"]]) \
        .then(run_tick, tick_inputs, tick_outputs, show_progress="hidden")
    c["abort"].click(partial(handlers.abort, ctx), [lang, c["watch"]], None)
    c["save"].click(partial(handlers.save_config, ctx), [lang, c["config_path"], *launch_inputs], None)
    c["load"].click(handlers.load_config, [lang, c["config_path"]], [c["extra"], *field_inputs])

    fields["stage"].input(partial(handlers.datasets_for_stage, ctx), fields["stage"], fields["dataset"])
    # .change, not .input: a loaded config switches the shown options too.
    applicable_outputs = [c[f"group_{g}"] for g in form.STAGED_GROUPS] + [fields[n] for n in handlers.staged_fields()]
    for trigger in (fields["stage"], fields["finetuning_type"]):
        trigger.change(handlers.show_applicable, [fields["stage"], fields["finetuning_type"]], applicable_outputs,
                       show_progress="hidden")
    fields["model_name_or_path"].input(handlers.propose_template, fields["model_name_or_path"], fields["template"])
    fields["trust_remote_code"].change(handlers.warn_trust, [fields["trust_remote_code"], lang], None)
    # The memory estimate: on page load, and whenever one of the values that decide it changes.
    gr.on(None, partial(memory.memory_markdown, ctx),
          [lang, c["extra"], c["nproc"], c["accel"], c["gpus"], *(fields[name] for name in memory.MEMORY_FIELDS)],
          c["memory"], show_progress="hidden", queue=False)

    lang.change(partial(handlers.queue_headers, ctx), lang, c["queue"])
    for key, handler in (("queue_up", handlers.move_queued_up), ("queue_down", handlers.move_queued_down),
                         ("queue_remove", handlers.remove_queued)):
        c[key].click(partial(handler, ctx), [c["queue_pick"], c["watch"]], c["watch"]) \
            .then(run_tick, tick_inputs, tick_outputs, show_progress="hidden")

    # What the app runs when a page loads or the tab is selected again (see webui/app.py).
    c["refresh_choices"] = (partial(handlers.refresh_choices, ctx),
                            [fields["stage"], fields["dataset"], fields["model_name_or_path"], fields["adapter_name_or_path"]],
                            [fields["dataset"], fields["model_name_or_path"], fields["adapter_name_or_path"]])
    c["fresh_output_dir"] = (partial(handlers.fresh_output_dir, ctx), [fields["stage"], fields["finetuning_type"]],
                             fields["output_dir"])
    # Quick start: the form of the demo run, or of the real model's identity run (building the
    # model first when it is missing).
    c["quick_demo"].click(partial(handlers.quick_start, ctx, "demo"), lang, [c["extra"], *field_inputs])
    c["quick_real"].click(partial(handlers.quick_start, ctx, "real"), lang, [c["extra"], *field_inputs])
    if c["real_outputs"]:
        c["quick_real"].click(partial(build_banner.start, ctx.real_model, "real"), lang, c["real_outputs"])
