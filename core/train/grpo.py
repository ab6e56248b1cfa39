"""Online RL (--stage grpo) through trl's GRPOTrainer: sample answers, score them, move towards the better ones.

For each prompt the policy samples --num_generations answers (max_new_tokens, temperature, top_p,
top_k); each answer's advantage is its reward minus its group's mean, over the group's std. The
loss raises the probability of answers above their group's mean, with a KL penalty of weight
--grpo_beta towards the reference.

- Data: instruction (sft) data tokenized by core/data/preprocess.py: the prompt through our
  template (trl is handed token ids and applies no chat template), the reference answer and
  its length, and the prompt's messages for a reward model with its own template.
- Rewards (core/train/rewards.py), summed: --reward_funcs (exact_match, length) and
  --reward_model, an rm run of this tool (base + adapter + score head) scoring each answer as it
  scored pairs in training.
- Config: trl's GRPOConfig built from the run's TrainingArguments (as dpo's). per_device_train_batch_size
  counts answers: with batch 8 and 4 generations a step trains on 2 prompts.
- Model: loaded and adapted by core/model.py. The reference of the KL penalty is the policy as
  it started: with a new LoRA adapter the base with the adapter switched off; when continuing an
  adapter (--adapter_name_or_path, e.g. an sft run) a frozen copy of it, as trl does (the RLHF
  reference is the SFT model; dpo and kto use the base); freeze and full runs have trl load a
  frozen copy of the base. The copy is not saved with the adapter.
- Log: reward and reward_std (all rewards summed), rewards/<name>/mean per reward, kl (when
  --grpo_beta > 0), completions/mean_length and completions/clipped_ratio (answers cut at
  max_new_tokens).

Reads top to bottom: tokenizer and data, rewards, model, config, trainer, train, save.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from trl import GRPOConfig, GRPOTrainer

from core.args import TrainArgs, split_names
from core.train.callbacks import AbortSignal
from core.train.dpo import keep_metrics, keep_our_model, trainable_dtypes, trl_config
from core.train.rewards import RewardModelScorer, reward_model, rule_rewards
from core.train.sft import build_trainer, setup_tokenizer_and_data, train_and_save

LOGGED_METRICS = ("reward", "reward_std", "kl", "completions/mean_length", "completions/clipped_ratio")
TRL_COLUMNS = {"prompt_input_ids": "prompt"}  # trl samples from row["prompt"]; here it holds token ids
REFERENCE_ADAPTER = "ref"  # trl's name for the frozen copy of a continued adapter


def run_grpo(args: TrainArgs, abort: AbortSignal) -> bool:
    from core.model import load_model_for_training

    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, "grpo")
    train_set, eval_set = to_trl_columns(train_set), to_trl_columns(eval_set)
    rewards, scorer = reward_functions(args)
    model = load_model_for_training(args.model, args.finetuning, args.training)
    trainer, callback = build_trainer(
        args, model, tokenizer, train_set, eval_set, abort, collator=None,
        trainer_class=OnlineRLTrainer, trainer_args=grpo_config(args), reward_funcs=rewards,
        continued_adapter=bool(args.model.adapter_name_or_path),
    )
    if scorer is not None:
        scorer.to(trainer.accelerator.device)
    return train_and_save(trainer, callback, args, tokenizer)


def to_trl_columns(dataset: Any) -> Any:
    return dataset.rename_columns(TRL_COLUMNS) if dataset is not None else None


def reward_functions(args: TrainArgs) -> tuple[list[Any], Any]:
    """The rule rewards and the reward model's, and the reward model (None without one)."""
    rewards = rule_rewards(split_names(args.finetuning.reward_funcs), args.generating.max_new_tokens)
    scorer = None
    if args.finetuning.reward_model:
        scorer = RewardModelScorer(args.finetuning.reward_model)
        rewards.append(functools.partial(reward_model, scorer=scorer))
    return rewards, scorer


def grpo_config(args: TrainArgs) -> GRPOConfig:
    finetuning, generating = args.finetuning, args.generating
    return trl_config(
        GRPOConfig, args,
        beta=finetuning.grpo_beta,
        num_generations=finetuning.num_generations,
        max_completion_length=generating.max_new_tokens,
        temperature=generating.temperature,
        top_p=generating.top_p,
        top_k=generating.top_k,
        repetition_penalty=generating.repetition_penalty,
        disable_dropout=True,
        shuffle_dataset=True,
    )


class OnlineRLTrainer(GRPOTrainer):
    """GRPOTrainer that samples from our tokenized prompts and logs a stable set of metrics."""

    def __init__(self, *args: Any, data_collator: Any = None, continued_adapter: bool = False, **kwargs: Any):
        # GRPOTrainer batches prompts itself (no collator); build_trainer passes one for every stage.
        dtypes = trainable_dtypes(kwargs["model"])
        super().__init__(*args, **kwargs)
        keep_our_model(self, dtypes, base_as_reference=not continued_adapter)

    def _save(self, output_dir: Any = None, state_dict: Any = None) -> None:
        super()._save(output_dir, state_dict)
        # peft saves every adapter, the frozen reference copy ("ref") in a subfolder: not part of the result.
        shutil.rmtree(Path(output_dir or self.args.output_dir) / REFERENCE_ADAPTER, ignore_errors=True)

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict]:
        return [list(ids) for ids in prompts], None, {}  # already our template's ids

    def log(self, logs: dict[str, float], start_time: Any = None) -> None:
        metrics = self._metrics["train" if self.model.training else "eval"]
        per_reward = tuple(f"rewards/{name}/mean" for name in self.reward_func_names)
        keep_metrics(metrics, LOGGED_METRICS + per_reward)
        super().log(logs, start_time)
