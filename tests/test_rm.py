"""Reward modeling (--stage rm) and the scorer: pair collation, pooling, learning, refusals, 4-bit, two ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import rundir
from tests.conftest import TWO_PROCESS_LAUNCH, run_cli

HELD_OUT = 40  # last records of demo_pref, never trained on, for the scorer


def rm_argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--stage", "rm", "--model_name_or_path", str(model), "--dataset_dir", str(data), "--output_dir", str(out),
        "--do_train", "--template", "llama2", "--cutoff_len", "128", *extra,
    ]


def register(dataset_dir: Path, name: str, records: list) -> None:
    (dataset_dir / f"{name}.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    info[name] = {"file_name": f"{name}.json", "ranking": True}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")


# ---------------------------------------------------------------------------- fast


def test_pair_collation_keeps_chosen_and_rejected_aligned():
    import torch

    from core.data.collator import PairwiseCollator
    from core.train.rm import pairwise_loss

    features = [
        {"prompt_input_ids": [5, 6, 7], "chosen_input_ids": [10, 2], "rejected_input_ids": [20, 21, 2], "length": 6},
        {"prompt_input_ids": [8], "chosen_input_ids": [11, 12, 2], "rejected_input_ids": [22, 2], "length": 4},
    ]
    batch = PairwiseCollator(pad_token_id=0, pad_to_multiple_of=None)(features)
    rows = [[t for t, m in zip(ids, mask) if m] for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist())]
    # Rows 0..B-1 are prompt+chosen in feature order, rows B..2B-1 prompt+rejected: the rm loss relies on it.
    assert rows == [[5, 6, 7, 10, 2], [8, 11, 12, 2], [5, 6, 7, 20, 21, 2], [8, 22, 2]]
    assert batch["labels"][0].tolist()[:5] == [-100, -100, -100, 10, 2]

    # Rewards that rank every chosen answer first give accuracy 1 and a loss below log 2; swapped, the reverse.
    rewards = torch.tensor([2.0, 1.0, -1.0, 0.0])
    loss, right = pairwise_loss(rewards)
    assert right.tolist() == [1.0, 1.0] and loss.item() < 0.6931
    loss, right = pairwise_loss(rewards.flip(0))
    assert right.tolist() == [0.0, 0.0] and loss.item() > 0.6931


def test_reward_is_read_on_the_last_real_token_whatever_the_padding():
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from core.data.collator import pad_batch

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, num_labels=1, pad_token_id=0)
    model = LlamaForSequenceClassification(config).eval()
    short, long = [5, 6, 7], [5, 6, 7, 8, 9, 10, 11]
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([short])).logits.item()
        batch = pad_batch([short, long], [short, long], pad_token_id=0, pad_to_multiple_of=8)
        padded = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0].item()
    assert padded == pytest.approx(alone, abs=1e-5)


@pytest.mark.parametrize(
    "output, expected",
    [
        (["only one answer"], "must be a list of 2 answers"),
        ("a single string", "must be a list of 2 answers"),
        (["Sure! fine", "  "], "empty rejected (second) answer"),
        (["Same answer.", "Same answer."], "same chosen and rejected answer"),
    ],
)
def test_malformed_pairs_are_refused_with_the_record_index(dataset_dir, output, expected):
    from core.data.registry import load_records
    from core.errors import UserError

    good = {"instruction": "Q?", "input": "", "output": ["Sure! yes", "no"]}
    register(dataset_dir, "bad_pref", [good, good, {"instruction": "Q?", "input": "", "output": output}, good])
    with pytest.raises(UserError) as err:
        load_records(dataset_dir, "bad_pref")
    assert "record 3" in str(err.value) and expected in str(err.value)


def test_score_refuses_what_is_not_a_reward_model_in_one_line(demo_model, tmp_path, capsys):
    from core.score import main

    sft_adapter = tmp_path / "sft_run"
    sft_adapter.mkdir()
    (sft_adapter / "adapter_config.json").write_text(json.dumps({"task_type": "CAUSAL_LM", "peft_type": "LORA"}))
    cases = [
        (["--model_name_or_path", str(demo_model), "--prompt", "Hi"], "--prompt and --answer go together"),
        (["--model_name_or_path", str(demo_model), "--prompt", "Hi", "--answer", "Hello"], "is not a reward model"),
        (["--model_name_or_path", str(demo_model), "--adapter_name_or_path", str(sft_adapter), "--prompt", "Hi",
          "--answer", "Hello"], "has no score head"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


# ---------------------------------------------------------------------------- slow: real runs


@pytest.mark.slow
def test_reward_model_learns_the_preference_and_ranks_held_out_pairs(demo_model, dataset_dir, tmp_path):
    records = json.loads((dataset_dir / "demo_pref.json").read_text(encoding="utf-8"))
    register(dataset_dir, "pref_train", records[:-HELD_OUT])
    out = tmp_path / "rm"
    result = run_cli(rm_argv(
        demo_model, dataset_dir, out, "--dataset", "pref_train", "--val_size", "0.1", "--max_steps", "20",
        "--logging_steps", "5", "--eval_steps", "20", "--per_device_train_batch_size", "8", "--learning_rate", "3e-3",
        "--seed", "0", "--plot_loss",
    ))
    assert result.returncode == 0, result.output[-3000:]
    logged = rundir.read_log_rows(out)
    accuracy = [r["accuracy"] for r in logged if r.get("accuracy") is not None]
    assert len(accuracy) == 4 and max(accuracy[-2:]) >= 0.9, accuracy
    assert [r["eval_accuracy"] for r in logged if "eval_accuracy" in r], "the val split reports eval_accuracy"
    assert "accuracy" in (out / "training_loss.html").read_text()

    from core.data.registry import load_records
    from core.score import load_reward_model, rewards, score

    model, tokenizer = load_reward_model(str(demo_model), str(out))
    from core.data.templates import get_template

    template = get_template("llama2", tokenizer)
    held_out = load_records(dataset_dir, "demo_pref")[-HELD_OUT:]
    right = 0
    for pair in held_out:
        chosen, rejected = rewards(model, tokenizer, template, pair["messages"], [pair["chosen"], pair["rejected"]], cutoff_len=128)
        right += chosen > rejected
    assert right / len(held_out) >= 0.75, f"held-out pairs ranked right: {right}/{len(held_out)}"

    # The CLI prints the same reward as the library for one prompt/answer.
    pair = held_out[0]
    expected = score(model, tokenizer, template, pair["messages"], pair["chosen"], cutoff_len=128)
    cli = run_cli(["score", "--model_name_or_path", str(demo_model), "--adapter_name_or_path", str(out),
                   "--prompt", pair["messages"][-1]["content"], "--answer", pair["chosen"]])
    assert cli.returncode == 0, cli.output[-2000:]
    assert float(cli.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_a_malformed_pair_file_fails_the_run_in_one_line_naming_the_record(demo_model, dataset_dir, tmp_path):
    good = {"instruction": "Q?", "input": "", "output": ["Sure! yes", "no"]}
    register(dataset_dir, "bad_pref", [good, good, good, {"instruction": "Q?", "input": "", "output": ["one answer"]}])
    out = tmp_path / "bad"
    result = run_cli(rm_argv(demo_model, dataset_dir, out, "--dataset", "bad_pref", "--max_steps", "1"))
    assert result.returncode != 0 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "record 4" in errors[0], result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["console.log", "launch.json", "run.yaml", "status.json"]
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "record 4" in status["error"]


@pytest.mark.slow
def test_4bit_reward_model_trains_and_evaluates(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "rm4"
    result = run_cli(rm_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_pref", "--quantization_bit", "4", "--max_steps", "2",
        "--logging_steps", "1", "--per_device_train_batch_size", "4", "--val_size", "4",
    ))
    assert result.returncode == 0, result.output[-3000:]
    logged = rundir.read_log_rows(out)
    assert [r["step"] for r in logged if r.get("loss") is not None] == [1, 2]
    assert any("eval_accuracy" in r for r in logged)
    assert (out / "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_two_process_reward_model_run_logs_once(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "ddp"
    argv = [*TWO_PROCESS_LAUNCH, "launch.py", *rm_argv(
        demo_model, dataset_dir, out, "--dataset", "demo_pref", "--max_steps", "2", "--logging_steps", "1",
        "--per_device_train_batch_size", "2",
    )]
    result = run_cli(argv)
    assert result.returncode == 0, result.output[-3000:]
    logged = rundir.read_log_rows(out)
    assert [r["step"] for r in logged] == [1, 2]  # written once, by rank 0
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in logged)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished"
    assert len(status["rank_weight_checksums"]) == 2 and len(set(status["rank_weight_checksums"])) == 1
