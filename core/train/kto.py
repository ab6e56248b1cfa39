"""KTO (--stage kto): answers tagged desirable or undesirable, one a record, through trl's KTOTrainer.

- Data: tokenized by core/data/preprocess.py (prompt_input_ids, completion_input_ids, kto_tag;
  our template, truncation and cache); trl gets them as prompt_ids / completion_ids / label.
  KTO's KL term scores each prompt with the answer of its neighbour in the batch, so trl needs
  batches in a fixed order (train_sampling_strategy sequential): the rows are shuffled once with
  --seed instead, then each is given its neighbour's answer as trl does.
- Config: trl's KTOConfig built from the run's TrainingArguments (as dpo's); --pref_beta,
  --kto_chosen_weight and --kto_rejected_weight map onto beta, desirable_weight and
  undesirable_weight.
- Model: as dpo: with LoRA the reference is the base with the adapter switched off; freeze and
  full runs load a frozen reference copy.
- Log: kl, rewards/chosen (desirable answers), rewards/rejected, rewards/margins, logps/chosen,
  logps/rejected.

Reads top to bottom: tokenizer and data, model (and reference), config, trainer, train, save.
"""

from __future__ import annotations

from typing import Any

from trl import KTOConfig, KTOTrainer

from core.args import TrainArgs
from core.train.callbacks import AbortSignal
from core.train.dpo import keep_metrics, keep_our_model, load_reference_model, trainable_dtypes, trl_config
from core.train.sft import build_trainer, count_real_tokens, setup_tokenizer_and_data, train_and_save

LOGGED_METRICS = ("kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected")
TRL_COLUMNS = {"prompt_input_ids": "prompt_ids", "completion_input_ids": "completion_ids", "kto_tag": "label"}


def run_kto(args: TrainArgs, abort: AbortSignal) -> bool:
    from core.model import load_model_for_training

    count_real_tokens(args.training)
    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, "kto")
    model = load_model_for_training(args.model, args.finetuning, args.training)
    ref_model = load_reference_model(args) if args.finetuning.finetuning_type != "lora" else None
    trainer, callback = build_trainer(
        args, model, tokenizer, train_set, eval_set, abort, collator=None,
        trainer_class=UnpairedPreferenceTrainer, trainer_args=kto_config(args), ref_model=ref_model,
    )
    return train_and_save(trainer, callback, args, tokenizer)


def kto_config(args: TrainArgs) -> KTOConfig:
    finetuning = args.finetuning
    return trl_config(
        KTOConfig, args,
        beta=finetuning.pref_beta,
        desirable_weight=finetuning.kto_chosen_weight,
        undesirable_weight=finetuning.kto_rejected_weight,
        train_sampling_strategy="sequential",  # trl's KL pairs need it; the rows are shuffled once instead
        max_length=None,  # preprocess.py already cut every record to cutoff_len
        pad_to_multiple_of=8,
        disable_dropout=True,
        precompute_ref_log_probs=False,
    )


class UnpairedPreferenceTrainer(KTOTrainer):
    """KTOTrainer that takes our tokenized rows as they are and logs a stable set of metrics."""

    def __init__(self, *args: Any, **kwargs: Any):
        dtypes = trainable_dtypes(kwargs["model"])
        super().__init__(*args, **kwargs)
        keep_our_model(self, dtypes)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        dataset = dataset.rename_columns(TRL_COLUMNS)
        if dataset_name == "train":
            dataset = dataset.shuffle(seed=args.seed)
        if not self.calculate_KL:
            return dataset

        def neighbour_answers(rows: dict[str, list]) -> dict[str, list]:
            # (x_1, y_n), (x_2, y_1), ..., (x_n, y_n-1) within each batch, as trl builds them.
            rows["KL_completion_ids"] = [rows["completion_ids"][-1]] + rows["completion_ids"][:-1]
            return rows

        return dataset.map(neighbour_answers, batched=True, batch_size=args.per_device_train_batch_size,
                           keep_in_memory=True, desc=f"KL answers ({dataset_name})")

    def log(self, logs: dict[str, float], start_time: Any = None) -> None:
        keep_metrics(self._metrics["train" if self.model.training else "eval"], LOGGED_METRICS)
        super().log(logs, start_time)
