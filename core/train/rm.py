"""Reward modeling: a scalar head on the base model, trained on [chosen, rejected] pairs.

The model is the base as *ForSequenceClassification with one label; it scores a sequence on its
last non-padding token (transformers' pooling, so the saved model scores the same way anywhere).
Each batch holds B prompt+chosen rows then B prompt+rejected rows (core/data/collator.py), and
the loss is -log sigmoid(r_chosen - r_rejected). With LoRA the `score` head is trained in full
and saved with the adapter (peft's SEQ_CLS task); freeze and full runs train it too.

Reads top to bottom: tokenizer and data, model, trainer, train, save.
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer

from core.args import TrainArgs
from core.train.callbacks import AbortSignal
from core.train.sft import build_trainer, count_real_tokens, setup_tokenizer_and_data, train_and_save


def run_rm(args: TrainArgs, abort: AbortSignal) -> bool:
    from transformers import AutoModelForSequenceClassification

    from core.data.collator import PairwiseCollator
    from core.model import load_model_for_training

    count_real_tokens(args.training)
    tokenizer, _template, train_set, eval_set = setup_tokenizer_and_data(args, "rm")
    model = load_model_for_training(
        args.model, args.finetuning, args.training,
        model_class=AutoModelForSequenceClassification, num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )
    collator = PairwiseCollator(tokenizer.pad_token_id, pad_to_multiple_of=8)
    trainer, callback = build_trainer(args, model, tokenizer, train_set, eval_set, abort, collator, trainer_class=PairwiseRewardTrainer)
    return train_and_save(trainer, callback, args, tokenizer)


def pairwise_loss(rewards: Any) -> tuple[Any, Any]:
    """(mean -log sigmoid(r_chosen - r_rejected), per-pair 1/0 ranked right) of 2B rewards: chosen first."""
    import torch.nn.functional as F

    chosen, rejected = rewards.float().chunk(2, dim=0)
    return -F.logsigmoid(chosen - rejected).mean(), (chosen > rejected).float()


class PairwiseRewardTrainer(Trainer):
    """Trainer with the pairwise loss; logs `accuracy` (and `eval_accuracy`): the share of pairs ranked right."""

    # The loss is a mean over the micro-batch's pairs: let the Trainer divide it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Pairs ranked right and pairs seen since the last log, per mode, on this rank.
        self._ranked = {"train": [0.0, 0.0], "eval": [0.0, 0.0]}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False).logits.squeeze(-1)
        loss, right = pairwise_loss(rewards)
        counts = self._ranked["train" if model.training else "eval"]
        counts[0] += float(right.sum())
        counts[1] += right.numel()
        return (loss, {"rewards": rewards}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        import torch

        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict[str, float], start_time: Any = None) -> None:
        # Every rank calls log() at the same points, so the counts can be summed over ranks here.
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        counts = self._ranked[mode]
        total = self._sum_over_ranks(counts)
        if total[1] > 0:
            logs["eval_accuracy" if mode == "eval" else "accuracy"] = round(total[0] / total[1], 4)
        self._ranked[mode] = [0.0, 0.0]
        super().log(logs, start_time)

    def _sum_over_ranks(self, counts: list[float]) -> list[float]:
        import torch

        tensor = torch.tensor(counts, dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.reduce(tensor, reduction="sum").tolist()
