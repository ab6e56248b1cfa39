"""Mixed precision on the CPU: bf16 where the CPU multiplies it in hardware (AVX512-BF16, AMX),
left unset by default (core.args._default_precision): frozen weights in bf16, trained ones in fp32,
the loss in fp32. On a CPU without those instructions every run stays fp32 (test_args)."""

from __future__ import annotations

import pytest
import torch

from core.args import hardware_bf16, native_cpu_bf16, parse_train_args

needs_bf16_cpu = pytest.mark.skipif(torch.cuda.is_available() or not native_cpu_bf16(),
                                    reason="needs a CPU-only machine whose CPU has bf16 instructions")


def training_model(demo_model, tmp_path, *flags: str):
    from core.model import load_model_for_training

    args = parse_train_args(["--model_name_or_path", str(demo_model), "--output_dir", str(tmp_path / "o"), *flags])
    return load_model_for_training(args.model, args.finetuning, args.training)


@needs_bf16_cpu
def test_a_lora_run_keeps_the_frozen_base_in_bf16_and_trains_fp32_adapters(demo_model, tmp_path):
    model = training_model(demo_model, tmp_path, "--finetuning_type", "lora")
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}


@needs_bf16_cpu
@pytest.mark.parametrize("finetuning_type", ["full", "freeze"])
def test_weights_trained_in_full_load_in_fp32_not_rounded_to_bf16(demo_model, tmp_path, finetuning_type):
    model = training_model(demo_model, tmp_path, "--finetuning_type", finetuning_type)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}


def test_the_chunked_loss_of_a_bf16_head_matches_fp32_within_bf16_rounding():
    from core.train.logits import _LinearCrossEntropy

    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(300, 64, generator=generator, requires_grad=True)
    weight = torch.randn(500, 64, generator=generator) / 8
    targets = torch.randint(0, 500, (300,), generator=generator)
    reference = torch.nn.functional.cross_entropy(hidden @ weight.t(), targets, reduction="sum")
    reference.backward()
    expected_grad, hidden.grad = hidden.grad.clone(), None
    # The hidden states arrive in fp32 (the final norm), the head is bf16: no dtype error, fp32 out.
    total = _LinearCrossEntropy.apply(hidden, weight.to(torch.bfloat16), targets, chunk=128)
    total.backward()
    assert total.dtype == torch.float32 and hidden.grad.dtype == torch.float32
    assert abs(total.item() - reference.item()) <= 0.01 * abs(reference.item())
    assert torch.allclose(hidden.grad, expected_grad, atol=0.02, rtol=0.05)


def test_a_run_says_which_precision_it_trains_in(demo_sft_run):
    console = (demo_sft_run / "console.log").read_text(encoding="utf-8")
    expected = "precision: bf16 mixed" if hardware_bf16() else "precision: fp32"
    assert console.count(expected) == 1, console[:3000]
