"""Chat templates: names, token-level encoding, prompt/training agreement, auto and proposals."""

from __future__ import annotations

import json

import pytest

from core.args import TEMPLATE_NAMES
from core.data.templates import TEMPLATES, get_template, propose_template
from core.errors import UserError

CORPUS = [
    "[INST] <<SYS>> You are helpful. <</SYS>> What is the capital of France? [/INST] Paris is the capital.",
    "### Instruction: Give three tips. ### Response: Eat well, sleep, walk.",
    "USER: hello there ASSISTANT: hi, how can I help? Human: thanks Assistant: you are welcome",
    "<|im_start|>system a chat <|im_end|> <|im_start|>user question <|im_end|> <|im_start|>assistant answer",
    "The quick brown fox jumps over the lazy dog. A chat between a curious human and an assistant.",
]


def make_tokenizer(add_bos: bool = True, chat_template: str | None = None):
    """A tiny byte-level BPE tokenizer with <s>, </s>, <pad>, <unk>, trained in memory (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    if add_bos:  # LLaMA-like: the tokenizer itself prepends <s>
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    if chat_template:
        out.chat_template = chat_template
    return out


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


THREE_TURNS = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome."},
    {"role": "user", "content": "Thanks!"},
    {"role": "assistant", "content": "You are welcome."},
]


def test_template_names_match_the_args_choices():
    assert set(TEMPLATES) == set(TEMPLATE_NAMES)


def test_llama2_encodes_bos_eos_as_ids_and_folds_system_into_first_inst(tok):
    t = get_template("llama2", tok)
    pairs = t.encode_multiturn(tok, THREE_TURNS, system="Be brief.")
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    assert pairs[0][0] == [tok.bos_token_id] + enc("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is the capital of France? [/INST]")
    assert pairs[0][1] == enc(" Paris. ") + [tok.eos_token_id]
    assert pairs[1][0] == [tok.bos_token_id] + enc("[INST] And of Italy? [/INST]")
    assert "<<SYS>>" not in tok.decode(pairs[1][0]) and "<<SYS>>" not in tok.decode(pairs[2][0])
    for _, response in pairs:
        assert response[-1] == tok.eos_token_id


def test_literal_special_text_in_a_message_is_not_a_template_marker(tok):
    t = get_template("alpaca", tok)
    pairs = t.encode_multiturn(tok, [{"role": "user", "content": "say {bos} and {eos}"}, {"role": "assistant", "content": "ok"}])
    assert pairs[0][0].count(tok.bos_token_id) == 1  # only the conversation's own bos


@pytest.mark.parametrize("name", ["default", "alpaca", "vicuna", "llama2", "chatml"])
def test_encode_prompt_is_exactly_the_training_prefix(tok, name):
    t = get_template(name, tok)
    pairs = t.encode_multiturn(tok, THREE_TURNS, system="sys")
    training = [i for p, r in pairs for i in p + r]
    prefix = pairs[0][0] + pairs[0][1] + pairs[1][0] + pairs[1][1] + pairs[2][0]
    assert t.encode_prompt(tok, THREE_TURNS[:5], system="sys") == prefix
    assert training[: len(prefix)] == prefix
    assert all(r[-1] == tok.eos_token_id for _, r in pairs)


def test_bos_added_where_the_tokenizer_wants_it():
    with_bos, without = make_tokenizer(add_bos=True), make_tokenizer(add_bos=False)
    msgs = THREE_TURNS[:2]
    assert get_template("alpaca", with_bos).encode_multiturn(with_bos, msgs)[0][0][0] == with_bos.bos_token_id
    assert get_template("alpaca", without).encode_multiturn(without, msgs)[0][0][0] != without.bos_token_id


def test_alpaca_and_vicuna_use_their_default_system(tok):
    alpaca = tok.decode(get_template("alpaca", tok).encode_prompt(tok, THREE_TURNS[:1]))
    assert "Below is an instruction" in alpaca and "### Instruction:\nWhat is the capital" in alpaca
    assert alpaca.endswith("### Response:\n")
    vicuna = tok.decode(get_template("vicuna", tok).encode_prompt(tok, THREE_TURNS[:1]))
    assert vicuna.endswith("USER: What is the capital of France? ASSISTANT:")


def test_chatml_stops_at_im_end_and_eos(tok):
    t = get_template("chatml", tok)
    text = tok.decode(t.encode_prompt(tok, THREE_TURNS[:1], system="S"))
    assert text.startswith("<s><|im_start|>system\nS<|im_end|>\n<|im_start|>user\n")
    assert tok.eos_token_id in t.stop_token_ids(tok)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_auto_splits_the_chat_template_rendering_into_turns():
    tok = make_tokenizer(chat_template=CHAT_TEMPLATE)
    t = get_template(None, tok)
    assert t.name == "auto"
    pairs = t.encode_multiturn(tok, THREE_TURNS[:4], system="S")
    whole = tok.apply_chat_template([{"role": "system", "content": "S"}] + THREE_TURNS[:4], tokenize=False)
    assert "".join(tok.decode(p + r) for p, r in pairs) == whole
    assert tok.decode(pairs[0][1]) == "Paris.</s>"  # jinja trim_blocks eats the newline
    assert t.encode_prompt(tok, THREE_TURNS[:3], system="S") == pairs[0][0] + pairs[0][1] + pairs[1][0]


def test_auto_without_chat_template_is_refused_and_none_means_default(tok):
    with pytest.raises(UserError, match="needs a tokenizer with a chat template"):
        get_template("auto", tok)
    assert get_template(None, tok).name == "default"
    with pytest.raises(UserError, match="unknown template 'zephyr'"):
        get_template("zephyr", tok)


def test_propose_template_reads_only_tokenizer_files(tmp_path):
    assert propose_template(tmp_path) == "default"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ '[INST] <<SYS>>' + m }}"}))
    assert propose_template(tmp_path) == "llama2"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ '[INST] ' + m + '[/INST]' }}"}))
    assert propose_template(tmp_path) == "mistral"  # [INST] without <<SYS>>: more in test_templates_families.py
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "<|im_start|>{{ x }}"}))
    assert propose_template(tmp_path) == "chatml"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({}))
    (tmp_path / "chat_template.jinja").write_text("<|user|>{{ x }}")
    assert propose_template(tmp_path) == "auto"


def test_templates_module_imports_no_torch_or_transformers():
    import subprocess
    import sys

    code = "import sys, core.data.templates, core.data.registry, core.data.cli; print('torch' in sys.modules, 'transformers' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]
