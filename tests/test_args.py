"""The argument dataclasses: parsing, config files, refusals by name, the light schema."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from core.args import (
    TEMPLATE_NAMES,
    TRAINING_DEFAULTS,
    FinetuningArguments,
    check_options,
    field_choices,
    our_fields,
    parse_train_args,
    recorded_options,
    resolved_config,
    training_field,
)
from core.errors import UserError

SEED = (
    "--stage sft --model_name_or_path M --do_train --dataset D --finetuning_type lora --quantization_bit 4 "
    "--overwrite_cache --output_dir output --per_device_train_batch_size 8 --gradient_accumulation_steps 4 "
    "--lr_scheduler_type cosine --logging_steps 10 --save_steps 1000 --learning_rate 5e-5 --num_train_epochs 2.0 "
    "--plot_loss --fp16 --template llama2 --lora_target q_proj,v_proj"
).split()


def test_seed_command_parses_every_flag():
    args = parse_train_args(SEED)
    assert args.finetuning.stage == "sft"
    assert args.model.quantization_bit == 4
    assert args.data.template == "llama2"
    assert args.finetuning.lora_target == "q_proj,v_proj"
    assert args.training.per_device_train_batch_size == 8
    assert args.training.gradient_accumulation_steps == 4
    assert args.training.learning_rate == 5e-5
    assert args.training.num_train_epochs == 2.0
    assert args.finetuning.plot_loss is True
    assert args.data.overwrite_cache is True


def test_fp16_without_gpu_falls_back_in_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: fp16 is honoured")
    args = parse_train_args(SEED)
    assert args.training.fp16 is False
    err = capsys.readouterr().err
    assert err.count("--fp16 needs a GPU") == 1 and "fp32" in err


def test_config_file_then_argv_overrides(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: M\nlearning_rate: 1.0e-4\nlora_rank: 16\ndataset: demo_sft\n")
    args = parse_train_args([str(config), "--lora_rank", "4"])
    assert args.training.learning_rate == 1e-4
    assert args.finetuning.lora_rank == 4
    assert args.config["lora_rank"] == 4


def test_json_config_is_accepted(tmp_path):
    config = tmp_path / "run.json"
    config.write_text('{"model_name_or_path": "M", "stage": "pt", "plot_loss": true}')
    args = parse_train_args([str(config)])
    assert args.finetuning.stage == "pt" and args.finetuning.plot_loss is True


def test_run_yaml_reparses_to_the_same_arguments(tmp_path):
    import yaml

    first = parse_train_args(["--model_name_or_path", "M", "--lora_rank", "4", "--template", "chatml", "--output_dir", str(tmp_path)])
    saved = tmp_path / "run.yaml"
    saved.write_text(yaml.safe_dump(first.config))
    second = parse_train_args([str(saved)])
    assert dataclasses.asdict(second.finetuning) == dataclasses.asdict(first.finetuning)
    assert dataclasses.asdict(second.data) == dataclasses.asdict(first.data)


def test_run_yaml_records_every_option_typed_and_nothing_never_set(tmp_path):
    args = parse_train_args(["--model_name_or_path", "M", "--logging_steps", "5", "--save_steps", "100.0",
                             "--num_train_epochs", "2", "--resume_from_checkpoint", "last", "--warmup_steps", "0.1",
                             "--label_smoothing_factor", "0.1"])
    config = args.config
    assert list(config)[:len(recorded_options())] == recorded_options()
    # Defaults are recorded too: a run.yaml reruns the same run when a default changes.
    assert config["lora_target"] == "all" and config["finetuning_type"] == "lora" and config["lora_rank"] == 8
    assert config["logging_steps"] == 5 and type(config["logging_steps"]) is int
    assert config["save_steps"] == 100 and type(config["save_steps"]) is int
    assert config["warmup_steps"] == 0.1  # a ratio stays a ratio
    assert config["num_train_epochs"] == 2.0 and type(config["num_train_epochs"]) is float
    assert config["label_smoothing_factor"] == 0.1  # given, so recorded although not a recorded option
    assert "resume_from_checkpoint" not in config  # how it was launched, not what the run is
    assert "include_num_input_tokens_seen" not in config and "use_cpu" not in config  # never set
    assert "temperature" not in config  # generation settings only when given


def test_a_recorded_config_resolves_to_itself(tmp_path):
    import yaml

    first = parse_train_args(["--model_name_or_path", "M", "--eval_steps", "7", "--lora_alpha", "16"]).config
    saved = tmp_path / "run.yaml"
    saved.write_text(yaml.safe_dump(first, sort_keys=False))
    assert parse_train_args([str(saved)]).config == first
    # The web UI resolves its form the same way, without transformers: the same file.
    assert resolved_config(first, first) == first


def test_value_checks_live_with_their_fields_and_need_no_transformers():
    code = ("import sys; from core.args import check_options\n"
            "try:\n    check_options({'lora_dropout': 1.5})\nexcept Exception as err:\n    print(err)\n"
            "print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["--lora_dropout must be in [0, 1), got 1.5", "False"]
    with pytest.raises(UserError, match="--learning_rate must be greater than 0"):
        check_options({"learning_rate": 0})
    with pytest.raises(UserError, match="--cutoff_len must be greater than 0"):
        check_options({"cutoff_len": "many"})
    check_options({"max_samples": None, "learning_rate": 1e-4})


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--learning_rat", "1e-4"], "unknown flag '--learning_rat'; did you mean 'learning_rate'"),
        (["--quantization_bit", "3"], "invalid choice: '3' (choose from 4, 8)"),
        (["--template", "llama9"], "--template: invalid choice: 'llama9'"),
        (["--learning_rate", "-1"], "--learning_rate must be greater than 0"),
        (["--learning_rate", "fast"], "--learning_rate/--learning-rate: invalid float value: 'fast'"),
        (["--num_train_epochs", "0"], "--num_train_epochs must be greater than 0"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be greater than 0"),
        (["--cutoff_len", "-5"], "--cutoff_len must be greater than 0"),
        (["--stage", "rlhf"], "--stage: invalid choice: 'rlhf'"),
        (["--stage", "ppo"], "--stage ppo: trl 1.16 has no PPO trainer; use --stage grpo"),
        (["--lora_dropout", "1.5"], "--lora_dropout must be in [0, 1)"),
        (["--finetuning_type", "full", "--quantization_bit", "4"], "works only with --finetuning_type lora"),
        (["--do_train"], "--do_train needs --dataset"),
        (["stray"], "unexpected value 'stray'"),
    ],
)
def test_bad_values_are_refused_by_name(argv, expected):
    with pytest.raises(UserError) as err:
        parse_train_args(["--model_name_or_path", "M", *argv])
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_config_key_is_refused_with_a_suggestion(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: M\nlora_rnak: 8\n")
    with pytest.raises(UserError, match="unknown key 'lora_rnak' in .*did you mean 'lora_rank'"):
        parse_train_args([str(config)])


def test_config_that_is_not_yaml_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: [unclosed\n  - : :")
    with pytest.raises(UserError, match="is not valid YAML/JSON"):
        parse_train_args([str(config)])
    config.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="must hold key: value pairs"):
        parse_train_args([str(config)])


def test_choices_come_from_the_field_types():
    fields = our_fields()
    assert field_choices(fields["stage"]) == ("pt", "sft", "rm", "dpo", "kto", "grpo")
    assert field_choices(fields["template"]) == TEMPLATE_NAMES
    assert field_choices(fields["quantization_bit"]) == (4, 8)
    assert field_choices(fields["lora_rank"]) is None
    assert all(f.metadata.get("help") for f in fields.values()), "every option needs its help text"


def test_training_fields_read_from_transformers_source_match_the_class():
    from transformers import TrainingArguments

    real = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    for name in ("learning_rate", "num_train_epochs", "warmup_steps", "weight_decay", "max_grad_norm", "seed"):
        parsed = training_field(name)
        assert parsed.help == " ".join(real[name].metadata["help"].split())
        assert parsed.default == TRAINING_DEFAULTS.get(name, real[name].default)


def test_reading_the_schema_does_not_import_torch():
    code = (
        "import sys, core.args as a; a.training_field('learning_rate'); a.our_fields();"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_lora_alpha_defaults_to_twice_the_rank():
    assert FinetuningArguments().lora_alpha is None  # resolved to 2 x rank when LoRA is built


def test_activation_checkpointing_left_unset_is_on_where_a_batch_keeps_much(demo_model, smollm2_model):
    def checkpointing(model, *flags: str) -> bool:
        return parse_train_args(["--model_name_or_path", str(model), "--output_dir", "o", *flags]).training.activation_checkpointing

    big = ("--per_device_train_batch_size", "8", "--cutoff_len", "512")  # SmolLM2: 5.2 GB of activations without it
    assert checkpointing(smollm2_model, *big) is True
    assert checkpointing(smollm2_model, "--per_device_train_batch_size", "2", "--cutoff_len", "128") is False
    assert checkpointing(demo_model, *big) is False  # a few hundred MB: recomputing would only cost time
    assert checkpointing(smollm2_model, *big, "--activation_checkpointing", "false") is False
    assert checkpointing(demo_model, "--activation_checkpointing", "true") is True
    # The deprecated alias alone decides, as transformers reads it when the new name is unset.
    assert checkpointing(smollm2_model, *big, "--gradient_checkpointing", "false") is False
    assert checkpointing(smollm2_model, *big, "--gradient_checkpointing", "false", "--activation_checkpointing", "true")
    assert checkpointing("no/such-model-anywhere", *big) is False  # no shape to judge by


def test_bf16_left_unset_is_decided_by_the_hardware_and_run_yaml_keeps_it_unset(capsys):
    from core.args import hardware_bf16

    base = ["--model_name_or_path", "M", "--output_dir", "o"]
    args = parse_train_args(base)
    assert args.training.bf16 is hardware_bf16()
    assert args.config["bf16"] is None  # a rerun of run.yaml decides again, on its own machine
    assert parse_train_args([*base, "--bf16", "false"]).training.bf16 is False
    assert parse_train_args([*base, "--bf16", "false"]).config["bf16"] is False
    # --fp16 asked: bf16 is not turned on beside it (on a CPU fp16 itself falls back to fp32).
    assert parse_train_args([*base, "--fp16"]).training.bf16 is False


def test_bf16_asked_on_a_cpu_without_bf16_instructions_falls_back_in_one_line(capsys):
    import torch

    from core.args import native_cpu_bf16

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = parse_train_args(["--model_name_or_path", "M", "--output_dir", "o", "--bf16", "true"])
    err = capsys.readouterr().err
    if native_cpu_bf16():
        assert args.training.bf16 is True and "--bf16" not in err
    else:
        assert args.training.bf16 is False and err.count("--bf16 needs a GPU or a CPU with bf16 instructions") == 1
