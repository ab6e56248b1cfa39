"""Chat, score and export build their parsers from the training run's dataclasses (core.args), so
--model_name_or_path, --adapter_name_or_path, --quantization_bit and --template are one field each:
the same class, the same parsing, the same refusal of a bad value and the same help everywhere."""

from __future__ import annotations

import re

import pytest

from core.args import AdapterTemplateArguments, ModelArguments, parse_own_args
from core.chat import parse_chat_args
from core.errors import UserError
from core.export import parse_export_args
from core.score import parse_score_args

PARSERS = {"chat": parse_chat_args, "score": parse_score_args, "export": parse_export_args}
SHARED = ["--model_name_or_path", "data/models/demo", "--adapter_name_or_path", "saves/demo-sft-lora", "--template", "llama2"]


def refusal(parse, argv: list[str]) -> str:
    with pytest.raises(UserError) as err:
        parse(argv)
    return str(err.value)


def test_each_command_parses_the_shared_flags_into_the_training_runs_classes():
    trained = parse_own_args(SHARED)[0]  # how `launch.py train` reads the same flags
    for name, parse in PARSERS.items():
        model_args, template_args, *_ = parse(SHARED)
        assert type(model_args) is ModelArguments and type(template_args) is AdapterTemplateArguments, name
        assert model_args == trained, name
        assert template_args.template == "llama2", name


def test_quantization_bit_is_one_field_that_export_alone_refuses_to_use():
    trained = parse_own_args([*SHARED, "--quantization_bit", "4"])[0].quantization_bit
    assert trained == 4
    for name in ("chat", "score"):
        assert PARSERS[name]([*SHARED, "--quantization_bit", "4"])[0].quantization_bit == trained, name
    # export merges in full precision; it parses the same field, then says so in one line
    line = refusal(parse_export_args, [*SHARED, "--quantization_bit", "4"])
    assert "\n" not in line and "--quantization_bit" in line, line


@pytest.mark.parametrize("flag, bad", [("--quantization_bit", "3"), ("--template", "no_such_template")])
def test_a_bad_value_of_a_shared_flag_is_refused_in_the_same_line_by_every_command(flag, bad):
    lines = {name: refusal(parse, [*SHARED, flag, bad]) for name, parse in PARSERS.items()}
    assert len(set(lines.values())) == 1, lines
    (line,) = set(lines.values())
    assert "\n" not in line and flag in line and bad in line, line


def help_of(parse, flag: str, capsys) -> str:
    """The `-h` text of one option, its wrapped lines joined (argparse prints it and exits 0)."""
    with pytest.raises(SystemExit) as exit_:
        parse(["-h"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    block = re.search(rf"^  {flag}\b.*?(?=^  -|\Z)", text, flags=re.M | re.S)
    assert block, (flag, text)
    return " ".join(block.group(0).split())


@pytest.mark.parametrize("flag", ["--adapter_name_or_path", "--quantization_bit", "--template"])
def test_every_command_explains_a_shared_flag_in_the_same_words(flag, capsys):
    helps = {name: help_of(parse, flag, capsys) for name, parse in PARSERS.items()}
    assert len(set(helps.values())) == 1, helps
