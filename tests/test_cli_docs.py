"""What the README and the command line say about themselves is true: the venv, `train --help`,
chat's optional --template, and a run that logs no step."""

from __future__ import annotations

import re

from core.args import _training_arguments_source
from tests.conftest import ROOT, run_cli


def test_the_readme_says_to_use_the_venv_before_its_first_command_line_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Train from the command line", 1)[1]
    before_first_command = section.split("```bash", 1)[0]
    assert "source .venv/bin/activate" in before_first_command
    assert ".venv/bin/python" in before_first_command


def test_train_help_lists_every_training_arguments_flag_with_its_help():
    result = run_cli(["train", "--help"], timeout=120)
    assert result.returncode == 0, result.output
    listed = set(re.findall(r"^  --(\w+)", result.stdout, flags=re.M))
    fields = _training_arguments_source()
    assert fields and set(fields) <= listed, sorted(set(fields) - listed)
    assert {"lora_rank", "template", "cutoff_len", "quantization_bit"} <= listed  # ours are still there
    adam = next(line for line in result.stdout.splitlines() if line.startswith("  --adam_beta1 "))
    assert "Adam" in adam and "[default: 0.9]" in adam
    lr = next(line for line in result.stdout.splitlines() if line.startswith("  --logging_steps "))
    assert "[default: 10]" in lr  # this tool's default, not transformers' 500


def test_chat_score_and_export_show_template_as_optional_with_one_meaning():
    from core.chat import CHAT_DESCRIPTION, parse_chat_args
    from core.export import parse_export_args
    from core.score import parse_score_args

    helps = set()
    for parse in (parse_chat_args, parse_score_args, parse_export_args):
        template_args = parse(["--model_name_or_path", "m"])[1]
        assert template_args.template is None  # not required
        field = type(template_args).__dataclass_fields__["template"]
        helps.add(field.metadata["help"])
    assert len(helps) == 1
    (text,) = helps
    assert "optional" in text and "the one the adapter's run trained with" in text
    assert "an empty --template is the one the adapter's run used" in CHAT_DESCRIPTION  # agrees with the help
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "launch.py chat --model_name_or_path M --adapter_name_or_path RUN [--template T]" in readme


def test_a_run_that_logs_no_step_says_so_instead_of_loss_plot_none(tmp_path, capsys):
    from core.train.run import write_plot

    write_plot(tmp_path, logging_steps=10)
    out = capsys.readouterr().out
    assert "None" not in out
    assert "no loss plot: the run logged no step" in out and "--logging_steps 10" in out
    assert not list(tmp_path.iterdir())
