"""Causal-LM training that projects to the vocabulary only where a label is trained.

The output layer and the softmax over the vocabulary are the largest per-position cost of a
small or mid-sized model (8,000 x 256 on the benchmark model, against 790 K multiply-adds for a
whole decoder layer), yet the loss reads them only at positions whose next token is trained:
prompt tokens (masked), padding and each row's last position are thrown away. transformers
accepts a boolean `logits_to_keep` mask (B, L) and a flat `shift_labels` for exactly this, so
the loss is the same sum over the same terms: same value, same gradients (bit-identical on the
benchmark model, see tests/test_supervised_logits.py), less compute and no (B, L, vocab) tensor.

Used for the pt and sft stages. Falls back to the plain Trainer path for a model whose forward
does not slice with `slice_logits_to_keep` (e.g. remote code), with label smoothing, or with a
custom loss function.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

from core.data.collator import IGNORE_INDEX


@lru_cache(maxsize=None)
def accepts_logits_mask(model_class: type) -> bool:
    """Whether this causal LM's forward slices its hidden states with a boolean `logits_to_keep`."""
    forward = getattr(model_class, "forward", None)
    if forward is None or "logits_to_keep" not in inspect.signature(forward).parameters:
        return False
    try:
        return "slice_logits_to_keep(" in inspect.getsource(forward)
    except (OSError, TypeError):
        return False


def supervised_positions(labels: Any) -> tuple[Any, Any]:
    """(keep, shift_labels): positions whose next token is trained, and those next tokens.

    The same shift as transformers' ForCausalLMLoss: position t predicts labels[t + 1]; the last
    position of each row predicts nothing.
    """
    import torch.nn.functional as F

    shifted = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    keep = shifted != IGNORE_INDEX
    return keep, shifted[keep]


class _LinearCrossEntropy:
    """Sum of cross-entropies of `hidden @ weight.T` against targets, a chunk of rows at a time.

    The gradients are computed in the forward pass, chunk by chunk, so no (N, vocab) tensor is
    ever kept: peak memory is one chunk of logits instead of logits + log-softmax + their
    gradients, and no softmax tensor travels through memory twice. Same arithmetic as
    cross_entropy(reduction="sum") up to float rounding.
    """

    @staticmethod
    def apply(hidden: Any, weight: Any, targets: Any, chunk: int = 1024) -> Any:
        import torch

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, h, w, y):
                grad_h = torch.empty_like(h) if h.requires_grad else None
                grad_w = torch.zeros_like(w, dtype=torch.float32) if w.requires_grad else None
                total = torch.zeros((), dtype=torch.float32, device=h.device)
                for start in range(0, h.shape[0], chunk):
                    # In the head's dtype: bf16 weights (a GPU, a --bf16 CPU run) multiply in bf16;
                    # the softmax and the sums stay fp32.
                    hc, yc = h[start:start + chunk].to(w.dtype), y[start:start + chunk]
                    logits = (hc @ w.t()).float()
                    lse = torch.logsumexp(logits, dim=-1)
                    total += (lse - logits.gather(1, yc[:, None]).squeeze(1)).sum()
                    probs = torch.exp(logits.sub_(lse[:, None]))  # softmax, in place of the logits
                    probs[torch.arange(hc.shape[0], device=h.device), yc] -= 1.0
                    probs = probs.to(w.dtype)
                    if grad_h is not None:
                        grad_h[start:start + chunk] = probs @ w
                    if grad_w is not None:
                        grad_w += (probs.t() @ hc).float()
                ctx.save_for_backward(grad_h if grad_h is not None else torch.empty(0),
                                      grad_w if grad_w is not None else torch.empty(0))
                ctx.has, ctx.weight_dtype = (grad_h is not None, grad_w is not None), w.dtype
                return total

            @staticmethod
            def backward(ctx, grad_out):
                grad_h, grad_w = ctx.saved_tensors
                has_h, has_w = ctx.has
                return (grad_h * grad_out.to(grad_h.dtype) if has_h else None,
                        (grad_w * grad_out).to(ctx.weight_dtype) if has_w else None, None)

        return Fn.apply(hidden, weight, targets)


def plain_head(model: Any) -> Any:
    """The output layer when it is a plain bias-free nn.Linear (no LoRA, no quantization), else None."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is torch.nn.Linear and head.bias is None:
        return head
    return None


def supervised_logits_trainer() -> type:
    """transformers' Trainer whose loss computes logits at the supervised positions only
    (and whose length-grouped batches come in random order, see core/train/sampler.py)."""
    import torch
    from transformers import Trainer
    from transformers.trainer_utils import unwrap_peft_model

    class SupervisedLogitsTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            from transformers.trainer_pt_utils import LengthGroupedSampler

            from core.train.sampler import shuffled_batches

            sampler = super()._get_train_sampler(train_dataset)
            if not isinstance(sampler, LengthGroupedSampler):
                return sampler
            # Longest batch first where memory runs out (an accelerator), see core/train/sampler.py.
            return shuffled_batches(sampler, longest_first=self.args.device.type != "cpu")

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.get("labels")
            base = unwrap_peft_model(self.accelerator.unwrap_model(model))
            usable = (
                labels is not None
                and labels.dim() == 2
                and self.label_smoother is None
                and self.compute_loss_func is None
                and "logits_to_keep" not in inputs
                and accepts_logits_mask(type(base))
            )
            if not usable:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            keep, shift_labels = supervised_positions(labels)
            head = plain_head(base)
            if return_outputs or not model.training or head is None:
                inputs = {**inputs, "logits_to_keep": keep, "shift_labels": shift_labels}
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            # Training with a plain output layer: the decoder runs through the (wrapped) model as
            # usual but projects nothing; the loss projects the supervised positions chunk by chunk.
            features = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**features, logits_to_keep=torch.zeros_like(keep), output_hidden_states=True)
            if getattr(outputs, "hidden_states", None) is None:  # a model that cannot return them
                inputs = {**inputs, "logits_to_keep": keep, "shift_labels": shift_labels}
                return super().compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
            hidden = outputs.hidden_states[-1][keep]
            total = _LinearCrossEntropy.apply(hidden, head.weight, shift_labels.to(hidden.device))
            # Normalised as transformers' ForCausalLMLoss: by the step's token count, else a mean.
            by_count = self.model_accepts_loss_kwargs and num_items_in_batch is not None
            loss = total / (num_items_in_batch if by_count else max(int(keep.sum()), 1))
            if self.args.average_tokens_across_devices and by_count:
                # What Trainer.compute_loss does for a loss normalised by the global token count.
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            return loss

    return SupervisedLogitsTrainer
