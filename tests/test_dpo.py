"""DPO (--stage dpo): the trl config carries our flags; margins rise; the adapter prefers chosen answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import rundir
from tests.conftest import ROOT, assert_one_line_refusal, example_argv, run_cli

REWARD_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")


def dpo_argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--stage", "dpo", "--model_name_or_path", str(model), "--dataset_dir", str(data), "--output_dir", str(out),
        "--do_train", "--template", "llama2", "--cutoff_len", "128", *extra,
    ]


def test_dpo_config_is_built_from_the_run_flags_not_trl_defaults():
    from core.args import parse_train_args
    from core.train.dpo import dpo_config

    args = parse_train_args([
        "--stage", "dpo", "--model_name_or_path", "m", "--output_dir", "o", "--learning_rate", "2e-4",
        "--logging_steps", "3", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "4",
        "--pref_beta", "0.25", "--pref_loss", "hinge", "--pref_ftx", "0.5", "--seed", "7",
        "--activation_checkpointing", "false", "--bf16", "false",
    ])
    config = dpo_config(args)
    assert (config.learning_rate, config.logging_steps, config.seed) == (2e-4, 3, 7)
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 4)
    assert config.activation_checkpointing is False and config.bf16 is False  # trl would turn both on
    assert config.lr_scheduler_type == args.training.lr_scheduler_type and config.report_to == args.training.report_to
    assert config.beta == 0.25 and config.loss_type == ["hinge", "sft"] and config.loss_weights == [1.0, 0.5]
    assert config.max_length is None  # our preprocessing truncates; trl must not cut again

    plain = dpo_config(parse_train_args(["--stage", "dpo", "--model_name_or_path", "m", "--pref_loss", "ipo"]))
    assert plain.loss_type == ["ipo"] and plain.loss_weights == [1.0]


@pytest.mark.parametrize("name, stage", [("rm_lora.yaml", "rm"), ("dpo_lora.yaml", "dpo")])
def test_preference_example_configs_parse(name, stage):
    from core.args import parse_train_args

    args = parse_train_args([str(ROOT / "examples" / "train" / name)])
    assert args.finetuning.stage == stage and args.data.dataset == "demo_pref" and args.data.template == "llama2"


def logp_margin(model, batch) -> float:
    """Mean over pairs of log p(chosen) - log p(rejected), summed over the answer tokens."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    token_logps = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logps = (token_logps * mask).sum(-1)
    chosen, rejected = logps.chunk(2)
    return float((chosen - rejected).mean())


@pytest.mark.slow
def test_dpo_raises_the_margins_and_the_adapter_prefers_chosen_answers(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "dpo"
    result = run_cli(example_argv("dpo_lora.yaml", out, "--model_name_or_path", str(demo_model), "--max_steps", "12",
                                  "--logging_steps", "1", "--seed", "0", data=dataset_dir))
    assert result.returncode == 0, result.output[-3000:]
    logged = [r for r in rundir.read_log_rows(out) if r.get("loss") is not None]
    assert len(logged) == 12 and all(all(k in r for k in REWARD_KEYS) for r in logged)
    margins = [r["rewards/margins"] for r in logged]
    # Step 1 scores the untouched adapter against the reference (the adapter switched off): margin 0.
    assert margins[0] == pytest.approx(0.0, abs=1e-4), margins
    late = sum(margins[-4:]) / 4
    assert late > 0.3 and late > sum(margins[:2]) / 2, margins
    assert sum(r["rewards/accuracies"] for r in logged[-4:]) / 4 >= 0.75, logged[-4:]
    html = (out / "training_loss.html").read_text()
    assert "rewards/margins" in html or "rewards\\u002fmargins" in html  # plotly escapes "/" in its JSON
    assert not (out / "ref").exists(), "the reference is the base with the adapter off: nothing else is saved"

    from core.args import ModelArguments
    from core.data.collator import PairwiseCollator
    from core.data.preprocess import tokenize_pairwise
    from core.data.registry import load_records
    from core.data.templates import get_template
    from core.model import load_adapter, load_base_model, load_tokenizer

    model_args = ModelArguments(model_name_or_path=str(demo_model))
    tokenizer = load_tokenizer(model_args)
    model = load_adapter(load_base_model(model_args), str(out)).eval()
    pairs = load_records(dataset_dir, "demo_pref")[:32]
    columns = {key: [p.get(key) for p in pairs] for key in ("messages", "system", "chosen", "rejected")}
    tokenized = tokenize_pairwise(columns, tokenizer, get_template("llama2", tokenizer), 128, None)
    features = [dict(zip(tokenized, values)) for values in zip(*tokenized.values())]
    batch = PairwiseCollator(tokenizer.pad_token_id)(features)
    tuned = logp_margin(model, batch)
    with model.disable_adapter():
        base = logp_margin(model, batch)
    assert tuned > base + 1.0, (base, tuned)


@pytest.mark.slow
def test_4bit_dpo_with_the_sft_term_runs(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "dpo4"
    result = run_cli(dpo_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_pref", "--quantization_bit", "4", "--max_steps", "2",
        "--logging_steps", "1", "--per_device_train_batch_size", "4", "--pref_loss", "ipo", "--pref_ftx", "0.5",
    ))
    assert result.returncode == 0, result.output[-3000:]
    logged = rundir.read_log_rows(out)
    assert [r["step"] for r in logged] == [1, 2] and all("rewards/margins" in r for r in logged)
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


@pytest.mark.slow
def test_dpo_refuses_instruction_data_by_name(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "bad"
    line = assert_one_line_refusal(run_cli(dpo_argv(demo_model, dataset_dir, out, "--dataset", "demo_sft")))
    assert "'demo_sft'" in line and "stage dpo needs" in line
    assert not out.exists()
