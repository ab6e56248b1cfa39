"""One way from the form to the trainer: the form's complete config goes into the run folder as
run.yaml, and what the Train tab previews is exactly the command the runner launches on it."""

from __future__ import annotations

import json
import shlex
import sys
import time

import pytest
import yaml

from core.args import recorded_options
from core.errors import UserError
from webui import choices, command, form
from webui.form import FORM_FIELDS, form_values
from webui.paths import resolve_path
from webui.runner import RunRequest, Runner


def _defaults(**changes):
    values = {name: form.to_ui(name, form.default_value(name)) for name in FORM_FIELDS}
    values["model_name_or_path"] = "data/models/demo"
    values["output_dir"] = "saves/x"
    values.update(changes)
    return tuple(values[name] for name in FORM_FIELDS)



PROBE_BOUND_S = 120  # a `python -c` probe: a second when idle, far more on a loaded machine


def run_to_end(runner: Runner, request: RunRequest) -> None:
    """Submit one request to a real Runner and wait until its process has ended, then close it."""
    try:
        runner.submit(request)
        deadline = time.time() + PROBE_BOUND_S
        while runner.active is not None and time.time() < deadline:
            time.sleep(0.1)
        assert runner.active is None, f"the probe was still running after {PROBE_BOUND_S} s"
    finally:
        runner.close()

def test_the_command_runs_the_run_folders_run_yaml_and_the_preview_is_that_argv():
    config = command.config_from_form(form_values(_defaults(system="a b 'c' \"d\"")))
    argv = command.build_argv(command.LaunchSpec.of_config(config))
    assert shlex.split(command.preview(argv)) == argv
    assert argv[1:2] == ["launch"] or argv[1:3] == ["-m", "accelerate.commands.launch"]
    assert argv[-3:] == ["launch.py", "train", "saves/x/run.yaml"]
    assert "--system" not in argv  # the form's values travel in run.yaml, not on the command line
    resumed = command.build_argv(command.LaunchSpec(config=None, run_dir=resolve_path("saves/x"),
                                                    resume_from="saves/x/checkpoint-4"))
    assert resumed == argv + ["--resume_from_checkpoint", "saves/x/checkpoint-4"]  # one flag more


def test_the_run_config_holds_every_option_typed_as_the_trainer_reads_it():
    config = command.config_from_form(form_values(_defaults(double_quantization=False, logging_steps=5, max_samples="")))
    assert list(config) == recorded_options()
    assert config["lora_rank"] == 8 and config["lora_target"] == "all" and config["finetuning_type"] == "lora"
    assert config["double_quantization"] is False and config["do_train"] is True
    assert config["logging_steps"] == 5 and type(config["logging_steps"]) is int
    assert config["num_train_epochs"] == 6.0 and type(config["num_train_epochs"]) is float
    assert config["max_samples"] is None
    assert config["report_to"] == "none"


def test_the_runner_writes_run_yaml_before_the_process_starts_and_records_the_launcher(tmp_path):
    evil = "x; touch pwned && echo $(id) `id` | cat > out.txt"
    config = command.config_from_form(form_values(_defaults(system=evil, output_dir=str(tmp_path / "saves" / "r"))))
    spec = command.LaunchSpec.of_config(config, num_processes=1)
    # A stand-in for the trainer that prints the run.yaml it was given.
    probe = [sys.executable, "-c", "import sys; print(open(sys.argv[1]).read())", str(spec.run_dir / "run.yaml")]
    run_to_end(Runner(tmp_path / "saves", tmp_path, poll_s=0.1), RunRequest(spec.run_dir, probe, spec.config, spec.launcher))
    console = (spec.run_dir / "console.log").read_text()
    assert yaml.safe_load(console.split("\n", 1)[1]) == config
    assert yaml.safe_load((spec.run_dir / "run.yaml").read_text())["system"] == evil
    launch = json.loads((spec.run_dir / "launch.json").read_text())
    assert launch["num_processes"] == 1 and launch["accelerate_config"] is None
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out.txt").exists()


def test_launch_json_records_the_previewed_command(tmp_path):
    argv = [sys.executable, "-c", "import time; time.sleep(0.2)", "--flag", "$(touch pwned)"]
    runner = Runner(tmp_path / "saves", tmp_path, poll_s=0.1)
    try:
        runner.submit(RunRequest(tmp_path / "saves" / "r1", argv))
        launch = json.loads((tmp_path / "saves" / "r1" / "launch.json").read_text())
        assert launch["argv"] == argv
        assert launch["command"] == command.preview(argv)
        assert launch["pgid"] == launch["pid"]
    finally:
        runner.close()


def test_processes_and_accelerate_config():
    config = {"stage": "sft", "model_name_or_path": "m", "output_dir": "o"}
    two = command.build_argv(command.LaunchSpec.of_config(config, num_processes=2))
    assert "--multi_gpu" in two and two[two.index("--num_processes") + 1] == "2"
    one = command.build_argv(command.LaunchSpec.of_config(config, num_processes=1))
    assert "--multi_gpu" not in one and one[one.index("--num_processes") + 1] == "1"
    cfg = command.build_argv(command.LaunchSpec.of_config(config, accelerate_config="examples/accelerate/ddp.yaml"))
    assert cfg[cfg.index("--config_file") + 1] == "examples/accelerate/ddp.yaml" and "--num_processes" not in cfg


def test_the_distributed_dropdown_offers_the_example_accelerate_configs():
    offered = choices.accelerate_configs()
    assert offered[0] == form.NONE
    for name in ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"):
        assert f"examples/accelerate/{name}.yaml" in offered, offered


def test_unknown_extra_option_is_refused_by_name():
    with pytest.raises(UserError, match="lerning_rate"):
        command.config_from_form(form_values(_defaults()), "lerning_rate: 1")
    config = command.config_from_form(form_values(_defaults()), "warmup_steps: 5\nlabel_smoothing_factor: 0.1")
    assert config["warmup_steps"] == 5 and config["label_smoothing_factor"] == 0.1


def test_saved_yaml_loads_back_into_the_same_form(tmp_path):
    values = _defaults(learning_rate=0.01, stage="dpo", dataset=["demo_pref"], pref_beta=0.2)
    config = command.config_from_form(form_values(values), "warmup_steps: 3\nlabel_smoothing_factor: 0.1")
    path = tmp_path / "run.yaml"
    path.write_text(command.config_yaml(config), encoding="utf-8")
    from core.args import load_config_file

    loaded = load_config_file(str(path))
    assert loaded == config
    updates, extra = command.config_to_form(loaded)
    assert yaml.safe_load(extra) == {"label_smoothing_factor": 0.1}  # warmup_steps has a control of its own
    again = command.config_from_form(form_values(tuple(updates)), extra)
    assert again == config


@pytest.mark.slow
def test_the_trainer_resolves_the_uis_run_yaml_to_the_same_file(demo_model, tmp_path):
    """What Start writes is what `launch.py train run.yaml` records, and what Preview's dry run shows."""
    from core.args import parse_train_args

    values = _defaults(model_name_or_path=str(demo_model), output_dir=str(tmp_path / "out"), learning_rate=0.01,
                       quantization_bit="none", eval_steps="5", lora_alpha="16", logging_steps=3)
    config = command.config_from_form(form_values(values), "label_smoothing_factor: 0.1")
    path = tmp_path / "run.yaml"
    path.write_text(command.config_yaml(config), encoding="utf-8")
    assert parse_train_args([str(path)]).config == config
    assert yaml.safe_load(command.dry_run(config)) == config
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        command.dry_run({**config, "dataset": "nope"})


def test_previews_dry_run_shows_the_resolved_config_or_the_one_line_it_was_refused_with(demo_model, dataset_dir, tmp_path):
    """The Train tab's Preview, second step, called by name: a good form shows the run.yaml the
    trainer resolves; a form the trainer refuses (a dataset with a broken record, which only
    loading the data finds) is one warning line and an empty box, and neither writes a run folder."""
    from webui.context import AppContext
    from webui.tabs.train import handlers

    (dataset_dir / "broken.json").write_text(json.dumps([{"instruction": "q", "output": "a"}, {"instruction": ["x"]}]))
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    info["broken"] = {"file_name": "broken.json"}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info))
    ctx = AppContext(tmp_path / "saves", dataset_dir, demo_model, runner=None, demo=None)
    out = tmp_path / "saves" / "run"
    launcher = ("", 1, form.NONE, [], 1, "", command.DEFAULT_PORT)  # extra, nproc, accel, gpus, machines, ip, port

    good = _defaults(model_name_or_path=str(demo_model), output_dir=str(out), dataset=["demo_sft"], template="llama2")
    shown = handlers.check_with_dry_run(ctx, "en", *launcher, *good)
    expected = handlers.launch_spec(ctx, good, *launcher).config
    assert yaml.safe_load(shown) == expected
    assert expected["model_name_or_path"] == str(demo_model) and expected["dataset"] == "demo_sft"

    bad = _defaults(model_name_or_path=str(demo_model), output_dir=str(out), dataset=["broken"], template="llama2")
    with pytest.warns(UserWarning) as warned:
        shown = handlers.check_with_dry_run(ctx, "en", *launcher, *bad)
    assert shown == ""
    assert len(warned) == 1
    line = str(warned[0].message)
    assert "\n" not in line and "record 2" in line, line
    assert not out.exists() and not (tmp_path / "saves").exists(), "Preview writes no run folder"
