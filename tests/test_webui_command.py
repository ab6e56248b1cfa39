"""The command builder: what the Train tab previews is exactly what the runner launches."""

from __future__ import annotations

import json
import shlex
import sys
import time

import pytest

from core.errors import UserError
from webui import command, form
from webui.runner import RunRequest, Runner
from webui.tabs.train import FORM_FIELDS, config_to_form, form_values


def _defaults(**changes):
    values = {name: form.to_ui(name, form.default_value(name)) for name in FORM_FIELDS}
    values["model_name_or_path"] = "data/models/demo"
    values["output_dir"] = "saves/x"
    values.update(changes)
    return tuple(values[name] for name in FORM_FIELDS)


def test_preview_parses_back_to_the_launched_argv(tmp_path):
    config = command.config_from_form(form_values(_defaults(system="a b 'c' \"d\"")))
    argv = command.build_argv(command.LaunchSpec(config))
    assert shlex.split(command.preview(argv)) == argv
    assert argv[1:2] == ["launch"] or argv[1:3] == ["-m", "accelerate.commands.launch"]
    i = argv.index("launch.py")
    assert argv[i + 1] == "train"
    assert argv[argv.index("--system") + 1] == "a b 'c' \"d\""


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


def test_shell_metacharacters_stay_literal(tmp_path):
    evil = "x; touch pwned && echo $(id) `id` | cat > out.txt"
    config = command.config_from_form(form_values(_defaults(system=evil, lora_target="q_proj;v_proj")))
    argv = command.build_argv(command.LaunchSpec(config))
    assert evil in argv  # one argv item, untouched
    # Run a stand-in with the same argv tail: nothing is interpreted by a shell.
    script = "import sys, json; print(json.dumps(sys.argv[1:]))"
    probe = [sys.executable, "-c", script, *argv[argv.index("train") + 1:]]
    runner = Runner(tmp_path / "saves", tmp_path, poll_s=0.1)
    try:
        runner.submit(RunRequest(tmp_path / "saves" / "r", probe))
        deadline = time.time() + 20
        while runner.active is not None and time.time() < deadline:
            time.sleep(0.1)
    finally:
        runner.close()
    console = (tmp_path / "saves" / "r" / "console.log").read_text()
    echoed = json.loads(console.strip().splitlines()[-1])
    assert echoed == argv[argv.index("train") + 1:]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out.txt").exists()


def test_only_changed_options_are_sent_and_bools_read_like_the_cli():
    config = command.config_from_form(form_values(_defaults(double_quantization=False)))
    argv = command.build_argv(command.LaunchSpec(config))
    assert "--do_train" in argv and argv[argv.index("--do_train") + 1].startswith("--")
    assert argv[argv.index("--double_quantization") + 1] == "false"
    assert "--lora_rank" not in argv  # equal to the schema's default: not repeated
    assert "--cutoff_len" in argv  # a demo preset that differs from the default: sent
    assert "--max_samples" not in argv  # empty optional: not sent


def test_processes_and_accelerate_config():
    config = {"stage": "sft", "model_name_or_path": "m", "output_dir": "o"}
    two = command.build_argv(command.LaunchSpec(config, num_processes=2))
    assert two[2:5] == ["--multi_gpu", "--num_processes", "2"] or "--multi_gpu" in two
    one = command.build_argv(command.LaunchSpec(config, num_processes=1))
    assert "--multi_gpu" not in one and one[one.index("--num_processes") + 1] == "1"
    cfg = command.build_argv(command.LaunchSpec(config, accelerate_config="examples/ddp.yaml"))
    assert cfg[cfg.index("--config_file") + 1] == "examples/ddp.yaml" and "--num_processes" not in cfg


def test_unknown_extra_option_is_refused_by_name():
    with pytest.raises(UserError, match="lerning_rate"):
        command.config_from_form(form_values(_defaults()), "lerning_rate: 1")
    config = command.config_from_form(form_values(_defaults()), "warmup_steps: 5")
    assert config["warmup_steps"] == 5


def test_saved_yaml_loads_back_into_the_same_form(tmp_path):
    values = _defaults(learning_rate=0.01, stage="dpo", dataset=["demo_pref"], pref_beta=0.2)
    config = command.config_from_form(form_values(values), "warmup_steps: 3")
    path = tmp_path / "run.yaml"
    path.write_text(command.config_yaml(config), encoding="utf-8")
    from core.args import load_config_file

    loaded = load_config_file(str(path))
    assert loaded == config
    updates, extra = config_to_form(loaded)
    again = command.config_from_form(form_values(tuple(updates)), extra)
    assert again == config


@pytest.mark.slow
def test_saved_yaml_is_accepted_by_the_trainer_parser(tmp_path):
    """`launch.py train file.yaml` parses the UI's YAML unchanged (transformers is imported here)."""
    from core.args import parse_train_args

    config = command.config_from_form(form_values(_defaults(learning_rate=0.01, quantization_bit="none")))
    config["output_dir"] = str(tmp_path / "out")
    path = tmp_path / "run.yaml"
    path.write_text(command.config_yaml(config), encoding="utf-8")
    args = parse_train_args([str(path)])
    assert args.training.learning_rate == 0.01
    assert args.data.dataset == "demo_sft" and args.training.do_train
