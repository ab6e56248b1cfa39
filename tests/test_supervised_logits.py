"""The speed levers of the trainer change nothing the model learns from.

Logits at supervised positions only (core/train/logits.py) must give the loss and gradients of
transformers' own full-logits path; a run that does not quantize must not import bitsandbytes.
"""

from __future__ import annotations

import subprocess

import pytest

from core.args import raw_value
from tests.conftest import PYTHON, ROOT


def _tiny_model(lora: bool):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    model = LlamaForCausalLM(config).train()
    if not lora:  # full fine-tuning: the output layer's weight gets a gradient too
        return model
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))


def _batch():
    import torch

    ids = torch.randint(4, 300, (3, 24))
    labels = ids.clone()
    labels[:, :7] = -100  # prompt
    labels[1, 18:] = -100  # padding
    ids[1, 18:] = 3
    mask = torch.ones_like(ids)
    mask[1, 18:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _loss_and_grads(trainer, model, batch, num_items):
    model.zero_grad()
    loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    return loss.detach(), grads


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_supervised_logits_give_the_full_logits_loss_and_gradients(tmp_path, lora):
    import torch
    from transformers import Trainer, TrainingArguments

    from core.train.logits import accepts_logits_mask, plain_head, supervised_logits_trainer

    model = _tiny_model(lora)
    base = model.get_base_model() if lora else model
    assert accepts_logits_mask(type(base)) and plain_head(base) is not None  # the chunked path
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    batch = _batch()
    full = Trainer(model=model, args=args)
    ours = supervised_logits_trainer()(model=model, args=args)
    for num_items in (None, (batch["labels"][:, 1:] != -100).sum()):
        loss_full, grads_full = _loss_and_grads(full, model, batch, num_items)
        loss_ours, grads_ours = _loss_and_grads(ours, model, batch, num_items)
        assert torch.allclose(loss_full, loss_ours, rtol=1e-6, atol=1e-7)
        for a, b in zip(grads_full, grads_ours):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    model.eval()  # evaluation: logits at the supervised positions, through transformers' own loss
    with torch.no_grad():
        loss_full = full.compute_loss(model, dict(batch), return_outputs=True)[0]
        loss_ours = ours.compute_loss(model, dict(batch), return_outputs=True)[0]
    assert torch.allclose(loss_full, loss_ours, rtol=1e-6, atol=1e-7)


def test_supervised_positions_are_the_shifted_trained_labels():
    import torch

    from core.train.logits import supervised_positions

    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, 8, 9, 10]])
    keep, shifted = supervised_positions(labels)
    assert keep.tolist() == [[False, True, True, False, False], [True, True, True, True, False]]
    assert shifted.tolist() == [5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--quantization_bit", "4"], "4"),
        (["--quantization_bit=8"], "8"),
        (["--stage", "sft"], None),
    ],
)
def test_raw_value_reads_a_flag_before_parsing(argv, expected):
    assert raw_value(argv, "quantization_bit") == expected


def test_raw_value_reads_the_config_file_and_argv_overrides_it(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("quantization_bit: 4\n", encoding="utf-8")
    assert raw_value([str(config)], "quantization_bit") == 4
    assert raw_value([str(config), "--quantization_bit", "8"], "quantization_bit") == "8"


def test_a_run_without_quantization_never_imports_bitsandbytes():
    code = (
        "import sys\n"
        "from core.train.run import hide_unused_packages\n"
        "hide_unused_packages(['--stage', 'sft'])\n"
        "import peft, transformers.trainer\n"
        "print('bitsandbytes' in sys.modules and sys.modules['bitsandbytes'] is not None)\n"
    )
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
