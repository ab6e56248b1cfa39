"""Shuffled length-grouped batches: same samples, same groups, random order, longest first."""

from __future__ import annotations

import random

import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from core.train.sampler import ShuffledLengthGroupedSampler


def batches_of(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_batches_are_transformers_groups_in_random_order_with_the_longest_first():
    rng = random.Random(0)
    lengths = [rng.randint(10, 500) for _ in range(203)]
    size = 8
    torch.manual_seed(42)
    grouped = list(iter(LengthGroupedSampler(size, lengths=lengths)))
    torch.manual_seed(42)
    shuffled = list(iter(ShuffledLengthGroupedSampler(size, lengths=lengths)))

    assert sorted(shuffled) == list(range(len(lengths))), "every sample exactly once per epoch"
    ours, theirs = batches_of(shuffled, size), batches_of(grouped, size)
    assert sorted(map(sorted, ours)) == sorted(map(sorted, theirs)), "the same batches (the same padding)"
    assert max(lengths) in [lengths[i] for i in ours[0]], "the longest sample is in the first batch"
    assert len(ours[-1]) == len(lengths) % size, "the short batch stays last"
    firsts = [max(lengths[i] for i in b) for b in ours[1:6]]
    grouped_firsts = [max(lengths[i] for i in b) for b in theirs[1:6]]
    assert firsts != grouped_firsts, "the early steps are no longer the longest batches"
