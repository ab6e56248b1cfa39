"""The demo model builder (core/demo_model.py) and the bundled demo datasets (core/demo_data.py).

Model tests use a --quick build (no pretraining) on a copy of the two demo data files, so they
take seconds; the full build runs the same code plus a fixed number of pretraining steps.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from core import demo_data
from core.demo_model import REQUIRED_FILES, build_demo_model, main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for name in (demo_data.SFT_FILE, demo_data.PREF_FILE, "dataset_info.json"):
        shutil.copy(DATA / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data_dir) -> Path:
    return build_demo_model(str(tmp_path_factory.mktemp("m") / "demo"), str(data_dir), pretrain_seconds=0)


# ---------------------------------------------------------------------------- model


def test_quick_build_is_byte_identical_for_the_same_seed(tmp_path, data_dir, model_dir):
    again = build_demo_model(str(tmp_path / "demo"), str(data_dir), pretrain_seconds=0)
    assert _hashes(again) == _hashes(model_dir)
    assert set(REQUIRED_FILES) <= set(_hashes(model_dir))


def test_model_and_tokenizer_load_offline(model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok)
    assert model.config.intermediate_size % 32 == 0  # bitsandbytes 4-bit CPU generation needs it
    assert not model.config.tie_word_embeddings
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 2e7
    assert model.generation_config.eos_token_id == tok.eos_token_id == 2
    assert model.generation_config.pad_token_id == tok.pad_token_id == 3
    ids = tok("Who are you?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 3 or out[0, -1].item() == tok.eos_token_id


def test_special_token_ids(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert [tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id] == [0, 1, 2, 3]
    assert [tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token] == ["<unk>", "<s>", "</s>", "<pad>"]
    assert tok("hello")["input_ids"][0] == tok.bos_token_id  # LLaMA-style: <s> first


@pytest.mark.parametrize("text", ["The capital of France is Paris.", "我是 TuneForge 助手，一个用 TuneForge 微调的小模型。", "Mixed 中文 and English 123!"])
def test_tokenizer_round_trips_english_and_chinese(model_dir, text):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_tokenizer_merges_chinese_of_the_bundled_data(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(demo_data.IDENTITY_ZH, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(demo_data.IDENTITY_ZH)  # merged tokens, not 3 bytes per character


def test_chat_template_renders_llama2(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "I am TuneForge Assistant."},
        {"role": "user", "content": "你是谁？"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWho are you? [/INST] I am TuneForge Assistant. </s>"
        "<s>[INST] 你是谁？ [/INST]"
    )
    plain = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert plain == "<s>[INST] Hi [/INST]"


def test_complete_model_is_kept_without_force(model_dir, data_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    assert build_demo_model(str(model_dir), str(data_dir), pretrain_seconds=0) == model_dir
    assert "already holds the demo model" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def test_interrupted_build_leaves_no_half_model(tmp_path, data_dir, monkeypatch):
    import core.demo_model as dm

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dm, "init_model", boom)
    with pytest.raises(KeyboardInterrupt):
        build_demo_model(str(tmp_path / "demo"), str(data_dir), pretrain_seconds=0)
    assert list(tmp_path.iterdir()) == []


def test_progress_callback_reaches_one(tmp_path, data_dir):
    seen: list[tuple[float, str]] = []
    build_demo_model(str(tmp_path / "demo"), str(data_dir), pretrain_seconds=0, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


def test_cli_without_data_says_so_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--out", str(tmp_path / "m"), "--data_dir", str(empty), "--quick"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("[demo-model] error:") and "\n" not in err


# ---------------------------------------------------------------------------- data


def _load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_committed_demo_data_matches_its_generator():
    assert demo_data.main(["--check", "--data_dir", str(DATA)]) == 0


def test_demo_sft_has_enough_chinese_and_multi_turn_records():
    records = _load(demo_data.SFT_FILE)
    assert len(records) >= 240
    for r in records:
        assert set(r) == {"instruction", "input", "output", "history"}
        assert r["instruction"].strip() and isinstance(r["output"], str) and r["output"].strip()
        assert all(len(turn) == 2 and all(isinstance(t, str) and t for t in turn) for turn in r["history"])
    chinese = sum(bool(CJK.search(r["instruction"] + r["input"])) for r in records)
    assert chinese / len(records) >= 0.3
    assert sum(bool(r["history"]) for r in records) >= 30
    assert any(r["output"] == demo_data.IDENTITY_EN for r in records if r["instruction"] == "Who are you?")
    assert (DATA / demo_data.SFT_FILE).stat().st_size < 200_000


def test_demo_pref_pairs_differ_and_are_not_empty():
    records = _load(demo_data.PREF_FILE)
    assert len(records) >= 240
    for r in records:
        assert set(r) == {"instruction", "input", "output", "history"} and r["history"] == []
        chosen, rejected = r["output"]
        assert chosen.strip() and rejected.strip() and chosen != rejected
    assert sum(bool(CJK.search(r["instruction"])) for r in records) / len(records) >= 0.3


def test_dataset_info_registers_demo_files_with_their_sha1():
    info = json.loads((DATA / "dataset_info.json").read_text(encoding="utf-8"))
    for name, file_name in (("demo_sft", demo_data.SFT_FILE), ("demo_pref", demo_data.PREF_FILE)):
        assert info[name]["file_name"] == file_name
        assert info[name]["file_sha1"] == hashlib.sha1((DATA / file_name).read_bytes()).hexdigest()
    assert info["demo_pref"]["ranking"] is True
