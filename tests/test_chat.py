"""Chat with a trained adapter: the training answer comes back, the base does not give it, prompts
are the training encoding, streams stop on request, and the terminal chat refuses bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from core.chat import ChatSession, build_prompt, generate_text, load_chat_model, stream_reply
from core.data.templates import get_template
from core.errors import UserError
from tests.conftest import PYTHON, ROOT, assert_one_line_refusal, run_cli

TEMPLATES = ("default", "alpaca", "vicuna", "llama2", "chatml", "auto")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sft_run(demo_sft_run) -> Path:
    return demo_sft_run  # the shared demo SFT run of tests/conftest.py


@pytest.fixture(scope="module")
def session(demo_model, sft_run) -> ChatSession:
    loaded = load_chat_model(str(demo_model), str(sft_run), template="llama2")
    yield loaded
    loaded.close()


def identity_records(data: Path) -> list[dict]:
    """The demo's identity questions (English and Chinese): the base model cannot know their answer."""
    records = json.loads((data / "demo_sft.json").read_text(encoding="utf-8"))
    found = [r for r in records if r["instruction"] in ("Who are you?", "你是什么模型？") and not r.get("history")]
    assert len(found) == 2
    return found


@pytest.fixture(scope="module")
def single_turn() -> list[dict]:
    return identity_records(ROOT / "data")


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------------- the adapter learned


@pytest.mark.slow
def test_adapter_gives_the_training_answer_and_the_base_does_not(session, single_turn):
    for record in single_turn:
        answer = generate_text(session, ask(record["instruction"]), do_sample=False, max_new_tokens=48)
        base = generate_text(session, ask(record["instruction"]), use_adapter=False, do_sample=False, max_new_tokens=48)
        assert answer.strip() == record["output"].strip(), "the adapter reproduces its training answer greedily"
        assert base.strip() != record["output"].strip(), "the base model (adapter off) does not know it"


@pytest.mark.slow
def test_adapter_off_is_the_plain_base_model_from_the_same_weights(demo_model, session, single_turn):
    plain = load_chat_model(str(demo_model), template="llama2")
    try:
        prompt = ask(single_turn[0]["instruction"])
        expected = generate_text(plain, prompt, do_sample=False, max_new_tokens=24)
        assert generate_text(session, prompt, use_adapter=False, do_sample=False, max_new_tokens=24) == expected
        # The adapter is back on afterwards.
        assert generate_text(session, prompt, do_sample=False, max_new_tokens=24) != expected
    finally:
        plain.close()


@pytest.mark.slow
def test_template_and_system_come_from_the_run(demo_model, sft_run):
    loaded = load_chat_model(str(demo_model), str(sft_run))  # no template given: run.yaml's llama2
    try:
        assert loaded.template.name == "llama2"
        assert loaded.adapter_path == str(sft_run) and not loaded.notes
    finally:
        loaded.close()


# ---------------------------------------------------------------------------- prompts = training encoding


@pytest.mark.parametrize("template_name", TEMPLATES)
@pytest.mark.parametrize("system", [None, "You answer briefly."])
def test_chat_prompt_is_the_training_encoding_of_the_same_conversation(demo_model, template_name, system):
    from transformers import AutoTokenizer

    from core.data.preprocess import tokenize_sft
    from core.data.registry import load_records

    tokenizer = AutoTokenizer.from_pretrained(str(demo_model))
    template = get_template(template_name, tokenizer)
    chat = ChatSession(model=None, tokenizer=tokenizer, template=template, model_path=str(demo_model))
    records = [r for r in load_records(ROOT / "data", "demo_sft") if len(r["messages"]) >= 4][:3]
    assert records, "demo_sft has multi-turn records"
    for record in records:
        messages = record["messages"]
        trained = tokenize_sft({"messages": [messages], "system": [system]}, tokenizer, template, 4096, False, None)
        input_ids, labels = trained["input_ids"][0], trained["labels"][0]
        prompt = build_prompt(chat, messages[:-1], system=system)
        # The chat prompt is exactly the training sequence up to where the last answer is trained.
        assert input_ids[:len(prompt)] == prompt
        assert labels[len(prompt) - 1] == -100 and labels[len(prompt)] != -100
        # And it is what encode_multiturn gives for the same conversation.
        pairs = template.encode_multiturn(tokenizer, messages, system)
        assert prompt == [i for p, r in pairs[:-1] for i in p + r] + pairs[-1][0]


# ---------------------------------------------------------------------------- streaming and stopping


@pytest.mark.slow
def test_stream_yields_growing_text_and_stops_on_the_event(session):
    stop = threading.Event()
    seen = []
    for text in stream_reply(session, ask("Tell me a very long story."), stop_event=stop, max_new_tokens=1000,
                             temperature=5.0, top_p=1.0, top_k=0, seed=1):
        seen.append(text)
        if len(seen) == 4:
            stop.set()
    assert 4 <= len(seen) <= 8, "generation goes on for at most a token or two after Stop"
    assert all(b.startswith(a) for a, b in zip(seen, seen[1:])), "each yield extends the text so far"
    # The model is free again at once: the next answer does not wait for the stopped one.
    assert generate_text(session, ask("Who are you?"), do_sample=False, max_new_tokens=4)


@pytest.mark.slow
def test_leaving_a_stream_early_ends_its_generation(session):
    stream = stream_reply(session, ask("Tell me a very long story."), max_new_tokens=1000, temperature=5.0, top_p=1.0, top_k=0, seed=2)
    next(stream)
    stream.close()  # what a new message or a closed page does
    assert not [t for t in threading.enumerate() if t.name == "chat-generate"]
    assert session.lock.acquire(timeout=1)
    session.lock.release()


@pytest.mark.slow
def test_same_seed_same_sampled_answer(session):
    a = generate_text(session, ask("Tell me something."), seed=7, max_new_tokens=16)
    b = generate_text(session, ask("Tell me something."), seed=7, max_new_tokens=16)
    assert a == b


# ---------------------------------------------------------------------------- errors are one line


def test_missing_adapter_folder_is_one_user_error(demo_model, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_chat_model(str(demo_model), str(tmp_path / "nope"))
    with pytest.raises(UserError, match="not a LoRA adapter"):
        load_chat_model(str(demo_model), str(tmp_path))


@pytest.mark.slow
def test_adapter_of_another_base_model_is_one_user_error(demo_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    other = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, vocab_size=8000))
    get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "other")
    with pytest.raises(UserError, match="trained on another base model"):
        load_chat_model(str(demo_model), str(tmp_path / "other"))


# ---------------------------------------------------------------------------- terminal chat


def chat_cli(args: list[str], stdin: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, str(ROOT / "launch.py"), "chat", *args], input=stdin, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_terminal_chat_answers_like_the_library_then_clears_and_exits(demo_model, sft_run, session, single_turn):
    question = single_turn[0]["instruction"]
    expected = generate_text(session, ask(question), do_sample=False, max_new_tokens=48)
    assert expected.strip()
    proc = chat_cli(["--model_name_or_path", str(demo_model), "--adapter_name_or_path", str(sft_run),
                     "--do_sample", "false", "--max_new_tokens", "48"],  # template: the run's (llama2)
                    f"{question}\nclear\n{question}\nexit\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "template llama2" in proc.stdout
    # The same greedy answer, after `clear` too (a second turn would have changed the prompt).
    assert proc.stdout.count(f"Assistant: {expected}\n") == 2, proc.stdout
    assert "History cleared." in proc.stdout


def test_terminal_chat_with_a_bad_adapter_is_one_line(demo_model, tmp_path):
    result = run_cli(["chat", "--model_name_or_path", str(demo_model), "--adapter_name_or_path", str(tmp_path / "missing")])
    line = assert_one_line_refusal(result)
    assert "adapter folder" in line and "does not exist" in line


def test_terminal_chat_bad_flag_is_one_line(demo_model):
    line = assert_one_line_refusal(run_cli(["chat", "--model_name_or_path", str(demo_model), "--template", "nope"]))
    assert "--template" in line


# ---------------------------------------------------------------------------- the Chat tab's choices


def _fake_run(folder: Path, state: str, config: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "run.yaml").write_text(config, encoding="utf-8")
    (folder / "status.json").write_text(json.dumps({"state": state, "error": None, "updated": time.time()}), encoding="utf-8")
    return folder


def test_chat_tab_offers_finished_runs_newest_first_and_proposes_their_settings(demo_model, tmp_path):
    from webui.context import AppContext
    from webui.choices import finished_adapters, proposal

    saves = tmp_path / "saves"
    older = _fake_run(saves / "older", "finished", f"model_name_or_path: {demo_model}\n")
    os.utime(older / "status.json", (time.time() - 100, time.time() - 100))
    _fake_run(saves / "broken", "failed", f"model_name_or_path: {demo_model}\n")
    newer = _fake_run(saves / "newer", "finished",
                      f"model_name_or_path: {demo_model}\ntemplate: alpaca\nsystem: Be brief.\n")
    ctx = AppContext(saves, ROOT / "data", Path(demo_model), runner=None, demo=None)
    assert finished_adapters(ctx) == [str(newer), str(older)]
    assert proposal(None, str(newer)) == {"model": str(demo_model), "template": "alpaca", "system": "Be brief."}
    # A run trained without --template used the tokenizer's own chat template (the demo has one).
    assert proposal(None, str(older))["template"] == "auto"
    # A model alone: the template its tokenizer files suggest.
    assert proposal(str(demo_model), None)["template"] == "llama2"
