"""The curated model list (core/model_zoo.py): every model issue 11 names is offered, with its
family's chat template, its size and, where the hub asks for a license, a gated note; and the
Train tab preselects that template when the id is picked or typed."""

from __future__ import annotations

import re

import pytest

from core.data.templates import TEMPLATES
from core.model_zoo import KNOWN_MODELS, KnownModel, known_model
from webui.choices import template_for_model

# (hub id, as a pattern where the issue names no version; the family's template; gated on the hub)
REQUIRED = [
    ("meta-llama/Llama-2-7b-chat-hf", "llama2", True),
    ("meta-llama/Llama-3.2-1B-Instruct", "llama3", True),
    ("meta-llama/Llama-3.2-3B-Instruct", "llama3", True),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama3", True),
    ("Qwen/Qwen2.5-0.5B-Instruct", "qwen", False),
    ("Qwen/Qwen2.5-1.5B-Instruct", "qwen", False),
    ("Qwen/Qwen2.5-3B-Instruct", "qwen", False),
    ("Qwen/Qwen2.5-7B-Instruct", "qwen", False),
    (r"mistralai/Mistral-7B-Instruct(-v0\.\d)?", "mistral", None),  # the issue does not say; the hub gates v0.2+
    ("google/gemma-2-2b-it", "gemma", True),
    # SmolLM2's own chat template is chatml plus a default system prompt: `auto` renders it exactly.
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "auto", False),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", "auto", False),
    ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "auto", False),
]


def entry(pattern: str) -> KnownModel:
    found = [m for m in KNOWN_MODELS if re.fullmatch(pattern, m.hub_id)]
    assert len(found) == 1, f"{pattern}: {[m.hub_id for m in found]} in the curated list"
    return found[0]


@pytest.mark.parametrize("pattern, template, gated", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_the_curated_list_holds_each_named_model_with_its_template_size_and_gate(pattern, template, gated):
    model = entry(pattern)
    assert model.template == template
    assert model.template in TEMPLATES  # a named template the trainer knows ("auto" included)
    # The size is the one in the model's own name (0.5B, 1.7B, 7b, 2b ...), so it is not a guess.
    assert re.fullmatch(r"\d+(\.\d+)?[MB]", model.params), model.params
    assert f"-{model.params.lower()}" in model.hub_id.lower(), (model.params, model.hub_id)
    if gated is not None:
        assert model.gated is gated
    label = model.label()
    assert model.params in label and f"template {template}" in label
    assert ("gated" in label and "HF_TOKEN" in label) == model.gated, label


@pytest.mark.parametrize("pattern, template, gated", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_picking_or_typing_a_curated_id_preselects_its_template(pattern, template, gated):
    hub_id = entry(pattern).hub_id
    assert template_for_model(hub_id) == template
    assert template_for_model(f" {hub_id.lower()} ") == template  # typed: the hub resolves ids case-insensitively
    assert known_model(hub_id.upper()).hub_id == hub_id


def test_every_curated_entry_is_unique_and_uses_a_known_template():
    ids = [m.hub_id.lower() for m in KNOWN_MODELS]
    assert len(ids) == len(set(ids))
    assert {m.template for m in KNOWN_MODELS} <= set(TEMPLATES)
