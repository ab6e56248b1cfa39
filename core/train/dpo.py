"""Direct preference optimisation through trl's DPOTrainer, on our tokens and our arguments.

- Data: the pairs are tokenized by core/data/preprocess.py (our template, truncation and cache,
  the same as rm); trl gets them as prompt_ids / chosen_ids / rejected_ids and tokenizes nothing.
- Config: trl's DPOConfig is built from the parsed TrainingArguments (args.training), so every
  flag the user set applies and none of trl's own defaults (gradient checkpointing on, bf16,
  lr 1e-6, logging every 10 steps) leaks in; --pref_beta, --pref_loss and --pref_ftx map onto
  beta, loss_type and an extra weighted "sft" loss on the chosen answers. --pref_loss orpo and
  simpo need no reference model and train through trl.experimental's trainers (core/train/orpo.py).
- Model: loaded, quantized and adapted by core/model.py as in every stage. With LoRA the
  reference is the same model with the adapter disabled (one copy of the weights); freeze and
  full runs load a frozen reference copy of the base through core/model.py.
- Log: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies and logps/chosen,
  logps/rejected (eval_ prefixed on the val split) go into trainer_log.jsonl under these names.

Reads top to bottom: tokenizer and data, model (and reference), config, trainer, train, save.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trl import DPOConfig, DPOTrainer

from core.args import TrainArgs
from core.train.callbacks import AbortSignal
from core.train.sft import build_trainer, count_real_tokens, setup_tokenizer_and_data, train_and_save

# trl's metric names, kept stable in our log; trl's other metrics (entropy, logits, token counts) are dropped.
LOGGED_METRICS = (
    "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected",
)
# Our tokenized columns -> the columns trl's preference collator reads.
TRL_COLUMNS = {"prompt_input_ids": "prompt_ids", "chosen_input_ids": "chosen_ids", "rejected_input_ids": "rejected_ids"}


def run_dpo(args: TrainArgs, abort: AbortSignal) -> bool:
    from core.args import REFERENCE_FREE_LOSSES
    from core.model import load_model_for_training

    if args.finetuning.pref_loss in REFERENCE_FREE_LOSSES:
        from core.train.orpo import run_reference_free

        return run_reference_free(args, abort)
    count_real_tokens(args.training)
    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, "dpo")
    train_set, eval_set = to_trl_columns(train_set), to_trl_columns(eval_set)
    model = load_model_for_training(args.model, args.finetuning, args.training)
    ref_model = load_reference_model(args) if args.finetuning.finetuning_type != "lora" else None
    config = dpo_config(args)
    trainer, callback = build_trainer(
        args, model, tokenizer, train_set, eval_set, abort, collator=None,
        trainer_class=PreferenceTrainer, trainer_args=config, ref_model=ref_model,
    )
    return train_and_save(trainer, callback, args, tokenizer)


def to_trl_columns(dataset: Any) -> Any:
    # `length` stays: the length-grouped sampler reads it.
    return dataset.rename_columns(TRL_COLUMNS) if dataset is not None else None


def load_reference_model(args: TrainArgs):
    """A frozen copy of the base for freeze/full runs (LoRA runs disable the adapter instead)."""
    from core.model import load_base_model

    ref = load_base_model(args.model, args.training)
    ref.requires_grad_(False)
    return ref.eval()


def trl_config(config_class: Any, args: TrainArgs, **settings: Any) -> Any:
    """A trl config carrying every TrainingArguments value of the run, plus the stage's settings."""
    from transformers import TrainingArguments

    values = {f.name: getattr(args.training, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    # No metric reads the eval logits; without this trl runs a second forward per eval batch to build them.
    values["prediction_loss_only"] = True
    return config_class(**{**values, **settings})


def dpo_config(args: TrainArgs) -> DPOConfig:
    """trl's DPOConfig carrying every TrainingArguments value of the run, plus the preference settings."""
    finetuning = args.finetuning
    loss_type, loss_weights = [finetuning.pref_loss], [1.0]
    if finetuning.pref_ftx > 0:
        loss_type.append("sft")  # mean NLL of the chosen answer tokens, weighted by --pref_ftx
        loss_weights.append(finetuning.pref_ftx)
    return trl_config(
        DPOConfig, args,
        beta=finetuning.pref_beta,
        loss_type=loss_type,
        loss_weights=loss_weights,
        max_length=None,  # preprocess.py already cut every pair to cutoff_len (answers never empty)
        pad_to_multiple_of=8,
        disable_dropout=True,  # policy and reference must see the same deterministic forward
        precompute_ref_log_probs=False,
    )


def trainable_dtypes(model: Any) -> dict[str, Any]:
    return {name: p.dtype for name, p in model.named_parameters() if p.requires_grad}


def keep_our_model(trainer: Any, dtypes: dict[str, Any], base_as_reference: bool = True) -> None:
    """Undo what trl's dpo, kto and grpo trainers do to a model passed in ready.

    trl copies a passed-in adapter as a "ref" adapter; our reference is the base with the adapter
    disabled (as in LLaMA-Factory), which trl uses once "ref" is gone (grpo keeps the copy of an
    adapter it continues: see core/train/grpo.py). trl casts the trainable weights of a quantized
    model to bf16; core/model.py chose their dtype.
    """
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if base_as_reference and "ref" in getattr(unwrapped, "peft_config", {}):
        unwrapped.delete_adapter("ref")
        unwrapped.set_adapter("default")
    for name, param in unwrapped.named_parameters():
        if name in dtypes and param.dtype != dtypes[name]:
            param.data = param.data.to(dtypes[name])


def keep_metrics(metrics: dict[str, Any], logged: tuple[str, ...]) -> None:
    """Drop trl's metrics (dict of name -> values since the last log) that our log does not keep."""
    for key in [k for k in metrics if k not in logged]:
        del metrics[key]


class PreferenceTrainer(DPOTrainer):
    """DPOTrainer that takes our tokenized pairs as they are and logs a stable set of metrics."""

    def __init__(self, *args: Any, **kwargs: Any):
        dtypes = trainable_dtypes(kwargs["model"])
        super().__init__(*args, **kwargs)
        keep_our_model(self, dtypes)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        return dataset  # already prompt_ids / chosen_ids / rejected_ids from core/data/preprocess.py

    def log(self, logs: dict[str, float], start_time: Any = None) -> None:
        keep_metrics(self._metrics["train" if self.model.training else "eval"], LOGGED_METRICS)
        super().log(logs, start_time)
