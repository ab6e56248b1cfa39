"""The alignment stages after rm: kto, orpo and simpo (dpo's pref_loss), and online RL (grpo).

Each trains from its example config on the demo model, in the direction it should: the KTO loss
falls and its margins rise, orpo/simpo raise the chosen answers' mean log-probability over the
rejected ones', and grpo raises the mean reward. Refusals are one line naming the flag or dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import rundir
from core.errors import UserError
from tests.conftest import ROOT, assert_one_line_refusal, example_argv, run_cli



def rows_with(out: Path, key: str) -> list[dict]:
    return [r for r in rundir.read_log_rows(out) if r.get(key) is not None]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# ---------------------------------------------------------------------------- fast


def parse(*flags: str):
    from core.args import parse_train_args

    return parse_train_args(["--model_name_or_path", "m", "--output_dir", "o", *flags])


@pytest.mark.parametrize("flags, message", [
    (("--stage", "ppo"), "--stage ppo: trl 1.16 has no PPO trainer; use --stage grpo"),
    (("--stage", "grpo"), "--stage grpo needs a reward: --reward_model saves/RM-RUN"),
    (("--stage", "grpo", "--reward_funcs", "exact_match,bleu"), "--reward_funcs bleu is unknown; use any of exact_match, length"),
    (("--stage", "grpo", "--reward_model", "saves/no-such-rm"), "--reward_model saves/no-such-rm: no such folder"),
    (("--stage", "grpo", "--reward_funcs", "length", "--per_device_train_batch_size", "6"),
     "= 6 answers is not a multiple of --num_generations 4"),
    (("--stage", "grpo", "--reward_funcs", "length", "--num_generations", "1"), "--num_generations must be 2 or more"),
    (("--stage", "kto", "--per_device_train_batch_size", "1"), "--stage kto needs --per_device_train_batch_size 2 or more"),
    (("--stage", "dpo", "--pref_loss", "orpo", "--pref_ftx", "0.5"), "--pref_ftx does not apply to --pref_loss orpo"),
    (("--stage", "dpo", "--pref_loss", "kto_pair"), "invalid choice: 'kto_pair'"),
])
def test_stage_options_are_refused_by_flag_before_anything_loads(flags, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse(*flags)


def test_ppo_from_a_config_file_is_one_line_pointing_at_grpo(tmp_path):
    config = tmp_path / "ppo.yaml"
    config.write_text("stage: ppo\nmodel_name_or_path: data/models/demo\ndataset: demo_sft\ndo_train: true\n")
    line = assert_one_line_refusal(run_cli(["train", str(config), "--output_dir", str(tmp_path / "run")]))
    assert "--stage grpo" in line and "ppo" in line
    assert not (tmp_path / "run").exists()


def test_trl_configs_carry_the_run_flags_and_the_stage_keys():
    from core.train.grpo import grpo_config
    from core.train.kto import kto_config
    from core.train.orpo import reference_free_trainer

    common = ("--learning_rate", "2e-4", "--logging_steps", "3", "--seed", "7", "--per_device_train_batch_size", "8",
              "--activation_checkpointing", "false", "--bf16", "false")
    kto = kto_config(parse("--stage", "kto", "--pref_beta", "0.2", "--kto_chosen_weight", "1.5",
                           "--kto_rejected_weight", "0.5", *common))
    assert (kto.learning_rate, kto.logging_steps, kto.seed, kto.beta) == (2e-4, 3, 7, 0.2)
    assert (kto.desirable_weight, kto.undesirable_weight) == (1.5, 0.5)
    assert kto.activation_checkpointing is False and kto.bf16 is False  # trl would turn both on
    assert kto.train_sampling_strategy == "sequential"  # trl's KL pairs need a fixed order

    trainer_class, orpo = reference_free_trainer(parse("--stage", "dpo", "--pref_loss", "orpo", "--pref_beta", "2", *common))
    assert "ORPOTrainer" in trainer_class.__name__ and orpo.beta == 2.0 and orpo.learning_rate == 2e-4
    trainer_class, simpo = reference_free_trainer(parse("--stage", "dpo", "--pref_loss", "simpo", "--simpo_gamma", "0.8",
                                                        "--pref_ftx", "0.3", *common))
    assert "CPOTrainer" in trainer_class.__name__
    assert (simpo.loss_type, simpo.simpo_gamma, simpo.cpo_alpha) == ("simpo", 0.8, 0.3)

    grpo = grpo_config(parse("--stage", "grpo", "--reward_funcs", "exact_match", "--num_generations", "8",
                             "--grpo_beta", "0.1", "--max_new_tokens", "24", "--temperature", "1.0", "--top_p", "1.0",
                             "--top_k", "0", *common))
    assert (grpo.num_generations, grpo.beta, grpo.max_completion_length) == (8, 0.1, 24)
    assert (grpo.temperature, grpo.top_p, grpo.top_k) == (1.0, 1.0, 0)
    assert (grpo.learning_rate, grpo.logging_steps, grpo.seed) == (2e-4, 3, 7)


def test_rule_rewards():
    from core.train.rewards import RULE_REWARDS, exact_match, length, rule_rewards
    from core.args import REWARD_FUNCS

    assert tuple(RULE_REWARDS) == REWARD_FUNCS
    assert exact_match([" Paris. ", "Rome."], ["Paris.", "Paris."]) == [1.0, 0.0]
    # 0 up to the reference's length, -1 at max_new_tokens, linear between.
    assert length([[1] * 5, [1] * 10, [1] * 15, [1] * 20], [10] * 4, max_new_tokens=20) == [0.0, 0.0, -0.5, -1.0]
    named = rule_rewards(["length", "exact_match"], max_new_tokens=20)
    assert named[0](completion_ids=[[1] * 20], answer_length=[10]) == [-1.0]  # max_new_tokens is bound


def test_kto_data_shape_from_the_kto_tag_column(tmp_path):
    from core.data.registry import add_dataset, check_stage, load_records, load_registry

    specs = load_registry(ROOT / "data")
    assert specs["demo_kto"].shape == "kto"
    records = load_records(ROOT / "data", "demo_kto")
    pref = load_records(ROOT / "data", "demo_pref")
    assert len(records) == 2 * len(pref)  # demo_pref unpaired: chosen -> desirable, rejected -> undesirable
    assert records[0]["messages"][-1]["content"] == pref[0]["chosen"] and records[0]["kto_tag"] is True
    assert records[1]["messages"][-1]["content"] == pref[0]["rejected"] and records[1]["kto_tag"] is False

    for dataset, stage, words in [
        ("demo_kto", "sft", r"'demo_kto' is unpaired \(kto\) data with a kto_tag; stage sft needs instruction data"),
        ("demo_kto", "dpo", r"'demo_kto' is unpaired \(kto\) data.* stage dpo needs ranking .* use --stage kto"),
        ("demo_pref", "kto", "'demo_pref' is a ranking.* stage kto needs unpaired data"),
        ("demo_pref", "grpo", "'demo_pref' is a ranking.* stage grpo needs instruction data"),
        ("wiki_demo", "grpo", "'wiki_demo' is plain text.* stage grpo needs instruction data"),
    ]:
        with pytest.raises(UserError, match=words):
            check_stage(specs[dataset], stage)
    check_stage(specs["demo_sft"], "grpo")

    # CSV cells carry the tag as text; anything but true/false is refused by record.
    csv = tmp_path / "k.csv"
    csv.write_text("question,answer,good\nq1,a1,true\nq2,a2,False\n", encoding="utf-8")
    spec = add_dataset(tmp_path, "k", str(csv), columns={"prompt": "question", "response": "answer", "kto_tag": "good"})
    assert spec.shape == "kto" and [r["kto_tag"] for r in load_records(tmp_path, "k")] == [True, False]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "q", "output": "a", "kto_tag": "maybe"}]), encoding="utf-8")
    with pytest.raises(UserError, match="kto_tag.* must be true or false"):
        add_dataset(tmp_path, "bad", str(bad), columns={"kto_tag": "kto_tag"})


def test_an_unpaired_file_is_proposed_as_kto(tmp_path):
    from core.data.registry import detect_shape_and_columns

    path = tmp_path / "u.json"
    path.write_text(json.dumps([{"instruction": "q", "output": "a", "kto_tag": True}]), encoding="utf-8")
    shape, _, proposed, ranking, formatting = detect_shape_and_columns(path)
    assert (shape, proposed["kto_tag"], ranking, formatting) == ("kto", "kto_tag", False, "alpaca")


def test_the_train_tab_shows_each_stage_its_own_options_only():
    from core.args import STAGE_OPTIONS, STAGES
    from webui import form

    assert set(STAGE_OPTIONS) <= set(form.FORM_FIELDS)
    for name, stages in STAGE_OPTIONS.items():
        assert [s for s in STAGES if form.applies(name, s, "lora")] == [s for s in STAGES if s in stages], name
    assert [s for s in STAGES if form.group_applies("online_rl", s, "full")] == ["grpo"]
    assert [s for s in STAGES if form.group_applies("preference", s, "full")] == ["dpo", "kto"]


# ---------------------------------------------------------------------------- training


@pytest.mark.slow
def test_kto_example_lowers_the_loss_and_raises_the_margins(demo_model, tmp_path):
    out = tmp_path / "kto"
    result = run_cli(example_argv("kto_lora.yaml", out, "--max_steps", "16", "--plot_loss"))
    assert result.returncode == 0, result.output[-3000:]
    logged = rows_with(out, "loss")
    assert [r["step"] for r in logged] == [4, 8, 12, 16]
    assert all(k in r for r in logged for k in ("kl", "rewards/chosen", "rewards/rejected", "rewards/margins"))
    losses, margins = [r["loss"] for r in logged], [r["rewards/margins"] for r in logged]
    assert mean(losses[-2:]) < losses[0] - 0.03, losses
    assert mean(margins[-2:]) > margins[0] + 0.5, margins
    assert (out / "adapter_model.safetensors").is_file() and not (out / "ref").exists()


def mean_logp_margin(model, batch) -> float:
    """Mean over pairs of the chosen answer's mean token log-probability minus the rejected one's."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    token_logps = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logps = (token_logps * mask).sum(-1) / mask.sum(-1)
    chosen, rejected = logps.chunk(2)
    return float((chosen - rejected).mean())


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_reference_free_losses_raise_the_margins(loss, demo_model, tmp_path):
    out = tmp_path / loss
    result = run_cli(example_argv(f"{loss}_lora.yaml", out, "--max_steps", "16", "--logging_steps", "2"))
    assert result.returncode == 0, result.output[-3000:]
    logged = rows_with(out, "loss")
    assert len(logged) == 8 and all("rewards/margins" in r and "rewards/accuracies" in r for r in logged)
    margins = [r["rewards/margins"] for r in logged]
    assert mean(margins[-3:]) > mean(margins[:3]), margins
    assert rundir.read_json(out / "status.json")["state"] == "finished"

    from core.args import ModelArguments
    from core.data.collator import PairwiseCollator
    from core.data.preprocess import tokenize_pairwise
    from core.data.registry import load_records
    from core.data.templates import get_template
    from core.model import load_adapter, load_base_model, load_tokenizer

    model_args = ModelArguments(model_name_or_path=str(demo_model))
    tokenizer = load_tokenizer(model_args)
    model = load_adapter(load_base_model(model_args), str(out)).eval()
    pairs = load_records(ROOT / "data", "demo_pref")[-32:]
    columns = {key: [p.get(key) for p in pairs] for key in ("messages", "system", "chosen", "rejected")}
    tokenized = tokenize_pairwise(columns, tokenizer, get_template("llama2", tokenizer), 128, None)
    batch = PairwiseCollator(tokenizer.pad_token_id)([dict(zip(tokenized, v)) for v in zip(*tokenized.values())])
    tuned = mean_logp_margin(model, batch)
    with model.disable_adapter():
        base = mean_logp_margin(model, batch)
    assert tuned > base + 0.2, (loss, base, tuned)


@pytest.mark.slow
def test_grpo_example_raises_the_mean_reward_from_the_sft_adapter(demo_model, demo_sft_run, tmp_path):
    """exact_match on the English self-introduction questions, sampled 8 times each from the demo SFT
    adapter: about a fifth of the answers are exact at first, most of them after 12 steps."""
    out = tmp_path / "grpo"
    result = run_cli(example_argv("grpo_lora.yaml", out, "--adapter_name_or_path", str(demo_sft_run)))
    assert result.returncode == 0, result.output[-3000:]
    logged = rows_with(out, "reward")
    assert [r["step"] for r in logged] == [2, 4, 6, 8, 10, 12]
    for key in ("reward", "reward_std", "kl", "completions/mean_length", "rewards/exact_match/mean"):
        assert all(isinstance(r.get(key), float) for r in logged), key
    rewards = [r["reward"] for r in logged]
    assert mean(rewards[-2:]) > mean(rewards[:2]) + 0.2, rewards
    assert logged[0]["kl"] < 1.0  # the reference is the SFT adapter the run started from, not the random base
    assert (out / "adapter_model.safetensors").is_file() and not (out / "ref").exists()
    assert not (out / "checkpoint-12" / "ref").exists()

    from core.plots import extra_metric_keys

    shown = extra_metric_keys(rundir.read_log_rows(out))  # what the live chart and training_loss.html draw
    assert {"reward", "reward_std", "kl", "completions/mean_length"} <= set(shown)


@pytest.mark.slow
def test_an_example_run_before_the_run_it_continues_is_one_line(tmp_path):
    """grpo_lora.yaml continues sft_lora.yaml's adapter: run first, it names the missing folder in
    one line before anything is written (not a peft error once the model has loaded)."""
    out, missing = tmp_path / "grpo", tmp_path / "demo-sft-lora"
    line = assert_one_line_refusal(run_cli(example_argv("grpo_lora.yaml", out, "--adapter_name_or_path", str(missing))))
    assert f"adapter folder '{missing}' does not exist" in line and "finished LoRA run folder" in line
    assert not out.exists()


@pytest.fixture(scope="module")
def short_rm_run(demo_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rm") / "rm"
    result = run_cli(example_argv("rm_lora.yaml", out, "--max_steps", "8", "--val_size", "0", "--logging_steps", "4"))
    assert result.returncode == 0, result.output[-3000:]
    return out


@pytest.mark.slow
def test_grpo_scores_answers_with_an_rm_run_and_rule_rewards(demo_model, short_rm_run, tmp_path):
    out = tmp_path / "grpo_rm"
    result = run_cli(["train", "--stage", "grpo", "--model_name_or_path", str(demo_model), "--dataset", "demo_sft",
                      "--template", "llama2", "--do_train", "--output_dir", str(out), "--reward_model", str(short_rm_run),
                      "--reward_funcs", "length", "--max_samples", "16", "--max_new_tokens", "24", "--max_steps", "2",
                      "--logging_steps", "1", "--per_device_train_batch_size", "8", "--learning_rate", "1e-3"])
    assert result.returncode == 0, result.output[-3000:]
    logged = rows_with(out, "reward")
    assert len(logged) == 2
    for row in logged:
        # The reward is the sum of the rm's score and the length penalty: the random base's babble runs past
        # the reference answers (16-20 tokens) to max_new_tokens, which costs close to -1.
        assert row["reward"] == pytest.approx(row["rewards/reward_model/mean"] + row["rewards/length/mean"], abs=1e-4)
        assert row["rewards/length/mean"] < -0.8 and row["completions/mean_length"] > 20
        assert row["reward_std"] > 0  # the rm tells the sampled answers apart
        assert row["kl"] is not None


def test_grpo_refuses_a_run_that_is_not_a_reward_model(tmp_path):
    run = tmp_path / "sft-run"
    run.mkdir()
    (run / "run.yaml").write_text("stage: sft\nmodel_name_or_path: data/models/demo\n")
    with pytest.raises(UserError, match="is a --stage sft run, not a reward model; train one with --stage rm"):
        parse("--stage", "grpo", "--reward_model", str(run))
    (run / "run.yaml").unlink()
    with pytest.raises(UserError, match="has no run.yaml"):
        parse("--stage", "grpo", "--reward_model", str(run))


@pytest.mark.slow
@pytest.mark.parametrize("stage, dataset, needs", [
    ("kto", "demo_pref", "stage kto needs unpaired data"),
    ("grpo", "demo_kto", "stage grpo needs instruction data"),
])
def test_a_stage_given_the_wrong_data_shape_is_refused_by_name(stage, dataset, needs, demo_model, tmp_path):
    out = tmp_path / "bad"
    line = assert_one_line_refusal(run_cli([
        "train", "--stage", stage, "--model_name_or_path", str(demo_model), "--dataset", dataset, "--template", "llama2",
        "--do_train", "--output_dir", str(out), "--reward_funcs", "exact_match", "--per_device_train_batch_size", "4",
    ]))
    assert f"'{dataset}'" in line and needs in line
    assert not out.exists()
