"""Side by side (issue 13, item 5): base and adapter answers grow together from one copy of the
weights, token for token what each gives alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.chat import generate_text, load_chat_model, stream_side_by_side


@pytest.fixture(scope="module")
def session(demo_model, tmp_path_factory):
    """The demo model with a random (non-zero) LoRA adapter: it answers differently from the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(demo_model))
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "lm_head"],
                                           init_lora_weights=False))
    adapter = Path(tmp_path_factory.mktemp("random_adapter"))
    peft.save_pretrained(str(adapter))
    return load_chat_model(str(demo_model), str(adapter), "llama2")


def test_side_by_side_streams_both_answers_at_once_and_matches_each_alone(session):
    messages = [{"role": "user", "content": "Tell me about the sea."}]
    greedy = dict(do_sample=False, max_new_tokens=12)
    steps = list(stream_side_by_side(session, messages, **greedy))
    base, adapter = steps[-1]
    assert base == generate_text(session, messages, use_adapter=False, **greedy)
    assert adapter == generate_text(session, messages, use_adapter=True, **greedy)
    assert base and adapter and base != adapter
    # Both columns grow in the same steps: the adapter's answer starts before the base's ends.
    first_adapter = next(i for i, (_, a) in enumerate(steps) if a)
    first_full_base = next(i for i, (b, _) in enumerate(steps) if b == base)
    assert first_adapter < first_full_base or len(steps) == 1, [s for s in steps[:4]]
