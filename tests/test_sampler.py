"""Shuffled length-grouped batches: same samples, same groups, random order; the longest first
on an accelerator."""

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
    shuffled = list(iter(ShuffledLengthGroupedSampler(size, lengths=lengths, longest_first=True)))

    assert sorted(shuffled) == list(range(len(lengths))), "every sample exactly once per epoch"
    ours, theirs = batches_of(shuffled, size), batches_of(grouped, size)
    assert sorted(map(sorted, ours)) == sorted(map(sorted, theirs)), "the same batches (the same padding)"
    assert max(lengths) in [lengths[i] for i in ours[0]], "the longest sample is in the first batch"
    assert len(ours[-1]) == len(lengths) % size, "the short batch stays last"
    firsts = [max(lengths[i] for i in b) for b in ours[1:6]]
    grouped_firsts = [max(lengths[i] for i in b) for b in theirs[1:6]]
    assert firsts != grouped_firsts, "the early steps are no longer the longest batches"


def test_without_longest_first_every_batch_but_the_short_one_is_shuffled():
    rng = random.Random(1)
    lengths = [rng.randint(10, 500) for _ in range(203)]
    size = 8
    firsts = set()
    for seed in range(20):
        order = list(ShuffledLengthGroupedSampler(size, lengths=lengths, longest_first=False,
                                                  generator=torch.Generator().manual_seed(seed)))
        assert sorted(order) == list(range(len(lengths)))
        batches = batches_of(order, size)
        assert len(batches[-1]) == len(lengths) % size
        firsts.add(max(lengths[i] for i in batches[0]))
    assert len(firsts) > 10, "the first batch is any batch, not always the longest"


def test_the_trainer_puts_the_longest_batch_first_only_on_an_accelerator(demo_model, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, TrainingArguments

    from core.train.logits import supervised_logits_trainer

    rows = [{"input_ids": [1] * n, "labels": [1] * n, "length": n} for n in range(1, 41)]
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, use_cpu=True,
                             train_sampling_strategy="group_by_length", report_to="none")
    trainer = supervised_logits_trainer()(model=AutoModelForCausalLM.from_pretrained(demo_model), args=args,
                                          train_dataset=datasets.Dataset.from_list(rows))
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, ShuffledLengthGroupedSampler) and sampler.longest_first is False
