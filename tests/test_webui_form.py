"""The Train tab's form comes from core/args.py metadata (one source of defaults, choices, help)."""

from __future__ import annotations

import dataclasses

import pytest

from core import args as core_args
from webui import form
from webui.i18n import FIELD_HELP_ZH, FIELD_LABELS, STRINGS, t
from webui.form import FORM_FIELDS


@pytest.fixture
def fresh_specs():
    core_args.option_spec.cache_clear()
    yield
    core_args.option_spec.cache_clear()


def test_a_default_changed_in_args_shows_up_in_the_form(fresh_specs):
    f = next(x for x in dataclasses.fields(core_args.FinetuningArguments) if x.name == "lora_rank")
    assert "lora_rank" not in form.UI_PRESETS
    old = f.default
    try:
        f.default = 777
        core_args.option_spec.cache_clear()
        assert form.build_control("lora_rank").value == 777
    finally:
        f.default = old
    core_args.option_spec.cache_clear()
    assert form.build_control("lora_rank").value == old


def test_help_text_and_choices_come_from_the_metadata(fresh_specs):
    stage = form.build_control("stage")
    assert [c[1] for c in stage.choices] == list(core_args.STAGES)
    assert core_args.option_spec("stage").help == core_args.our_fields()["stage"].metadata["help"]
    quant = form.build_control("quantization_bit")
    assert [c[1] for c in quant.choices] == [form.NONE, "4", "8"]
    assert form.from_ui("quantization_bit", "4") == 4 and form.from_ui("quantization_bit", form.NONE) is None


def test_training_arguments_fields_have_one_source_too(fresh_specs):
    spec = core_args.option_spec("lr_scheduler_type")
    assert spec.source == "training" and spec.default == core_args.TRAINING_DEFAULTS["lr_scheduler_type"]
    assert "cosine" in spec.choices and "linear" in spec.choices  # read from transformers' SchedulerType
    assert core_args.option_spec("eval_strategy").choices == ("no", "steps", "epoch")
    assert core_args.option_spec("fp16").kind == "bool"
    assert core_args.option_spec("learning_rate").help == core_args.training_field("learning_rate").help


def test_every_form_field_has_a_label_and_hint_in_both_languages():
    for name in FORM_FIELDS:
        assert name in FIELD_LABELS, name
        assert name in FIELD_HELP_ZH, name
        assert core_args.option_spec(name).help, name


def test_a_chinese_hint_names_every_choice_its_english_hint_explains():
    """A hint written as `choice: what it does; ...` in English lists the same choices in Chinese
    (the Stage hint once stopped at dpo, leaving out kto and grpo)."""
    import re

    for name, zh in FIELD_HELP_ZH.items():
        try:
            spec = core_args.option_spec(name)
        except KeyError:
            continue
        explained = [str(c) for c in spec.choices or () if f"{c}:" in spec.help]
        missing = [c for c in explained if not re.search(rf"\b{re.escape(c)}\b", zh)]
        assert not missing, f"the Chinese hint of {name} leaves out {missing}"


def test_every_string_has_english_and_chinese():
    for key, (en, zh) in STRINGS.items():
        assert en and zh, key
    assert t("zh-CN", "train.start") == "开始" and t("en", "train.start") == "Start"


def test_no_string_table_defines_a_key_twice():
    """A dict literal keeps the last of two equal keys without a word; read the source instead."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "webui" / "i18n.py"
    keys: dict[str, list[str]] = {}  # table name -> every key written into it, in order
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            literals = [(getattr(target, "id", "?"), node.value)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
              and node.args and isinstance(node.args[0], ast.Dict)):
            literals = [(getattr(node.func.value, "id", "?"), node.args[0])]
        else:
            continue
        for table, literal in literals:
            keys.setdefault(table, []).extend(k.value for k in literal.keys if isinstance(k, ast.Constant))
    assert {"STRINGS", "FIELD_LABELS", "FIELD_HELP_ZH"} <= set(keys)
    for table, written in keys.items():
        twice = sorted({k for k in written if written.count(k) > 1})
        assert not twice, f"{table} defines these keys more than once: {twice}"


def test_optional_numbers_accept_empty_as_unset():
    assert form.from_ui("max_samples", "") is None
    assert form.from_ui("max_samples", "50") == 50
    assert form.from_ui("lora_alpha", "16") == 16.0


def test_every_string_key_used_in_webui_is_defined():
    import re
    from pathlib import Path

    from webui import i18n

    root = Path(__file__).resolve().parents[1] / "webui"
    for module in sorted(root.glob("**/*.py")):
        __import__("webui." + ".".join(module.relative_to(root).with_suffix("").parts).replace(".__init__", ""))
    used = set()
    for module in root.glob("**/*.py"):
        text = module.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\([^,()]+,\s*"([a-z_]+\.[a-z_.]+)"', text))
        used |= set(re.findall(r'I18N\("([a-z_]+\.[a-z_.]+)"\)', text))
    generated = {k for k in used if k.startswith(("field.", "help."))}
    missing = sorted(k for k in used - generated if k not in i18n.STRINGS)
    assert not missing, f"i18n keys used but not defined: {missing}"


def test_options_that_do_nothing_for_the_stage_or_type_are_hidden_and_only_those():
    from core.args import STAGES

    types = ("lora", "freeze", "full")
    assert form.applies("pref_beta", "dpo", "lora") and not form.applies("pref_beta", "sft", "lora")
    assert form.applies("lora_rank", "sft", "lora") and not form.applies("lora_rank", "sft", "full")
    assert form.applies("freeze_trainable_layers", "rm", "freeze") and not form.applies("freeze_trainable_layers", "rm", "lora")
    assert form.group_applies("lora", "sft", "freeze") and not form.group_applies("lora", "sft", "full")
    # Every option that can be hidden lives in a group the tab re-checks when stage or type changes.
    for group, names in form.GROUPS.items():
        for name in names:
            if not all(form.applies(name, s, f) for s in STAGES for f in types):
                assert group in form.STAGED_GROUPS, name


def test_bf16_is_a_three_way_choice_whose_none_leaves_it_to_the_machine():
    from webui import form

    assert form.to_ui("bf16", None) == form.NONE and form.to_ui("bf16", True) == "true"
    assert [form.from_ui("bf16", v) for v in (form.NONE, "true", "false")] == [None, True, False]
    assert form.to_ui("fp16", False) is False  # a plain bool stays a checkbox
