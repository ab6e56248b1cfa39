"""ORPO and SimPO (--stage dpo --pref_loss orpo|simpo): preference pairs without a reference model.

Both score an answer by its length-normalised log-probability (the mean over its tokens) under
the policy alone, so no reference forward runs and freeze/full runs load no second model.

- orpo: trl.experimental's ORPOTrainer. Loss = NLL of the chosen answer - pref_beta x log
  sigmoid(log odds(chosen) - log odds(rejected)); the SFT term is part of ORPO itself.
- simpo: trl.experimental's CPOTrainer with loss_type simpo. Loss = -log sigmoid(pref_beta x
  (mean logp(chosen) - mean logp(rejected)) - simpo_gamma), plus pref_ftx x NLL of the chosen
  answer (CPO's cpo_alpha).
- Data: the pairs tokenized by core/data/preprocess.py as for dpo (our template, truncation and
  cache); these trainers tokenize text rows themselves, so `tokenize_row` here turns our rows
  into theirs (prompt + answer ids, attention masks, labels with the prompt masked).
- Config: ORPOConfig / CPOConfig built from the run's TrainingArguments, as dpo's.
- Log: rewards/chosen, rewards/rejected (pref_beta x mean logp), rewards/margins,
  rewards/accuracies, logps/chosen, logps/rejected, nll_loss (and log_odds_ratio for orpo).

Reads top to bottom: tokenizer and data, model, config, trainer, train, save.
"""

from __future__ import annotations

import os
from typing import Any

from core.args import TrainArgs
from core.data.collator import IGNORE_INDEX
from core.train.callbacks import AbortSignal
from core.train.dpo import trl_config
from core.train.sft import build_trainer, count_real_tokens, setup_tokenizer_and_data, train_and_save

LOGGED_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                  "logps/rejected", "nll_loss", "log_odds_ratio")

# trl.experimental warns on import that its API may change; the versions are pinned in requirements.txt.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def run_reference_free(args: TrainArgs, abort: AbortSignal) -> bool:
    from core.model import load_model_for_training

    count_real_tokens(args.training)
    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, "dpo")
    model = load_model_for_training(args.model, args.finetuning, args.training)
    trainer_class, config = reference_free_trainer(args)
    trainer, callback = build_trainer(args, model, tokenizer, train_set, eval_set, abort, collator=None,
                                      trainer_class=trainer_class, trainer_args=config)
    return train_and_save(trainer, callback, args, tokenizer)


def reference_free_trainer(args: TrainArgs) -> tuple[type, Any]:
    """(trainer class, its config) for --pref_loss orpo or simpo."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    finetuning = args.finetuning
    common = dict(
        beta=finetuning.pref_beta,
        max_length=args.data.cutoff_len,  # unused: preprocess.py already cut every pair to cutoff_len
        disable_dropout=True,
    )
    if finetuning.pref_loss == "orpo":
        return ours(ORPOTrainer), trl_config(ORPOConfig, args, **common)
    return ours(CPOTrainer), trl_config(CPOConfig, args, loss_type="simpo", simpo_gamma=finetuning.simpo_gamma,
                                        cpo_alpha=finetuning.pref_ftx, **common)


def ours(trainer_class: type) -> type:
    """The trl trainer class, taking our tokenized pairs and logging a stable set of metrics."""

    class ReferenceFreeTrainer(trainer_class):  # type: ignore[misc, valid-type]
        def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict[str, list[int]]:
            prompt = list(feature["prompt_input_ids"])
            row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
            for key in ("chosen", "rejected"):
                answer = list(feature[f"{key}_input_ids"])
                row[f"{key}_input_ids"] = prompt + answer
                row[f"{key}_attention_mask"] = [1] * (len(prompt) + len(answer))
                row[f"{key}_labels"] = [IGNORE_INDEX] * len(prompt) + answer
            return row

        def log(self, logs: dict[str, float], start_time: Any = None) -> None:
            for mode, metrics in self._stored_metrics.items():
                prefix = "eval_" if mode == "eval" else ""
                for key in [k for k in metrics if k.removeprefix(prefix) not in LOGGED_METRICS]:
                    del metrics[key]
            super().log(logs, start_time)

    ReferenceFreeTrainer.__name__ = ReferenceFreeTrainer.__qualname__ = f"ReferenceFree{trainer_class.__name__}"
    return ReferenceFreeTrainer
