"""A run launched the way the web UI launches it (the Train tab's command, through the runner)
starts with the trainer's own lines: no accelerate "values were not passed" block and no
transformers `is_gradient_checkpointing` FutureWarning."""

from __future__ import annotations

import time

from tests.conftest import ROOT
from webui import command, form
from webui.form import FORM_FIELDS, form_values
from webui.runner import RunRequest, Runner

ACCELERATE_DEFAULTS_WARNING = "were not passed to `accelerate launch`"
CHECKPOINTING_NAME_WARNING = "is_gradient_checkpointing"


def _form(**changes) -> tuple:
    values = {name: form.to_ui(name, form.default_value(name)) for name in FORM_FIELDS}
    values.update(changes)
    return tuple(values[name] for name in FORM_FIELDS)


def test_the_command_gives_accelerate_every_value_it_would_warn_about():
    config = command.config_from_form(form_values(_form(model_name_or_path="data/models/demo", output_dir="saves/x")))
    for n in (1, 2):
        argv = command.build_argv(command.LaunchSpec.of_config(config, num_processes=n))
        for flag, value in zip(command.LAUNCH_DEFAULTS[::2], command.LAUNCH_DEFAULTS[1::2]):
            assert argv[argv.index(flag) + 1] == value
        assert argv[argv.index("--num_processes") + 1] == str(n)
    # A config file holds them itself: nothing is added that would override it.
    with_file = command.build_argv(command.LaunchSpec.of_config(config, accelerate_config="examples/accelerate/ddp.yaml"))
    assert not set(command.LAUNCH_DEFAULTS[::2]) & set(with_file)


def test_a_run_launched_as_the_ui_does_has_neither_warning_in_its_console(demo_model, tmp_path):
    """LoRA with activation checkpointing on: peft wraps the model (where the FutureWarning came
    from) and checkpointing reads the renamed property too."""
    run_dir = tmp_path / "saves" / "quiet"
    values = _form(model_name_or_path=str(demo_model), output_dir=str(run_dir), max_steps="2", logging_steps=1,
                   cutoff_len=64, per_device_train_batch_size=2, max_samples="8", plot_loss=False)
    config = command.config_from_form(form_values(values), "activation_checkpointing: true\n")
    spec = command.LaunchSpec.of_config(config)
    runner = Runner(tmp_path / "saves", ROOT, poll_s=0.2)
    try:
        runner.submit(RunRequest(spec.run_dir, command.build_argv(spec), spec.config, spec.launcher))
        deadline = time.time() + 600  # two steps of the demo model; minutes only on a crowded machine
        while runner.active is not None and time.time() < deadline:
            time.sleep(0.5)
    finally:
        runner.close()
    console = (run_dir / "console.log").read_text()
    assert "[step 2/2]" in console, console[-3000:]
    assert ACCELERATE_DEFAULTS_WARNING not in console, console[:2000]
    assert CHECKPOINTING_NAME_WARNING not in console, console
    assert "FutureWarning" not in console, console
