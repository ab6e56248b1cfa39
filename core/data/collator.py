"""Batch collators: pad tokenized rows into tensors.

SFTCollator serves pt and sft rows (input_ids, labels). PairwiseCollator turns rw rows
(prompt, chosen, rejected) into 2B sequences: rows 0..B-1 are prompt+chosen, rows B..2B-1 are
prompt+rejected, with the prompt masked out of the labels; rm and dpo losses rely on that order.
Padding is on the right; torch is imported when a batch is built, not at import.
"""

from __future__ import annotations

from typing import Any, Optional

# The label of a position that is not trained (prompt, padding): torch's cross-entropy skips it.
# Tokenization (core/data/preprocess.py) and the loss (core/train/logits.py) use this one too.
IGNORE_INDEX = -100


def _padded_length(longest: int, multiple: Optional[int]) -> int:
    # A multiple of 8 lets tensor cores (and CPU kernels) use their fast paths.
    if multiple:
        return ((longest + multiple - 1) // multiple) * multiple
    return longest


def pad_batch(sequences: list[list[int]], labels: list[list[int]], pad_token_id: int, pad_to_multiple_of: Optional[int]) -> dict[str, Any]:
    """Right-pad ids with pad_token_id and labels with -100; attention_mask marks real tokens."""
    import torch

    width = _padded_length(max(len(s) for s in sequences), pad_to_multiple_of)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    label_ids = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(zip(sequences, labels)):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        label_ids[row, : len(lab)] = torch.tensor(lab, dtype=torch.long)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": label_ids}


class SFTCollator:
    """Pads pt/sft rows {input_ids, labels, (length)} into input_ids, attention_mask, labels."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: Optional[int] = 8):
        if pad_token_id is None:
            raise ValueError("SFTCollator needs a pad token id (use the eos id when the tokenizer has no pad token)")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        sequences = [list(f["input_ids"]) for f in features]
        labels = [list(f["labels"]) if "labels" in f else list(f["input_ids"]) for f in features]
        return pad_batch(sequences, labels, self.pad_token_id, self.pad_to_multiple_of)


class PairwiseCollator:
    """rw rows -> 2B sequences: first B = prompt+chosen, last B = prompt+rejected; prompt labels -100."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: Optional[int] = 8):
        if pad_token_id is None:
            raise ValueError("PairwiseCollator needs a pad token id (use the eos id when the tokenizer has no pad token)")
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        sequences, labels = [], []
        for key in ("chosen_input_ids", "rejected_input_ids"):
            for f in features:
                prompt, answer = list(f["prompt_input_ids"]), list(f[key])
                sequences.append(prompt + answer)
                labels.append([IGNORE_INDEX] * len(prompt) + answer)
        return pad_batch(sequences, labels, self.pad_token_id, self.pad_to_multiple_of)
