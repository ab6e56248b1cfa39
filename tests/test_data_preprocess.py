"""Per-stage tokenization: label masks, truncation budgets, pt blocks, pairwise rows, caching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.args import DataArguments
from core.data import preprocess
from core.data.collator import PairwiseCollator, SFTCollator
from core.data.preprocess import IGNORE_INDEX, get_dataset, infer_seqlen, tokenize_pt, truncate_turns
from core.data.templates import get_template
from core.errors import UserError

CORPUS = [
    "[INST] <<SYS>> You are helpful. <</SYS>> What is the capital of France? [/INST] Paris is the capital.",
    "### Instruction: Give three tips. ### Response: Eat well, sleep, walk.",
    "Human: hello there Assistant: hi, how can I help? The quick brown fox jumps over the lazy dog.",
]


def make_tokenizer():
    """A tiny LLaMA-like byte-level BPE tokenizer (<s> prepended), trained in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


def register(data: Path, name: str, records, **entry) -> None:
    data.mkdir(exist_ok=True)
    suffix = ".txt" if isinstance(records, str) else ".json"
    (data / f"{name}{suffix}").write_text(records if isinstance(records, str) else json.dumps(records))
    info_path = data / "dataset_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info[name] = {"file_name": f"{name}{suffix}", **entry}
    info_path.write_text(json.dumps(info))


def args(**kw) -> DataArguments:
    return DataArguments(**{"cutoff_len": 1024, **kw})


THREE_TURNS = {
    "instruction": "Thanks!",
    "output": "You are welcome.",
    "history": [["What is the capital of France?", "Paris."], ["And of Italy?", "Rome."]],
}


def test_three_turn_llama2_label_mask_is_exact(tmp_path, tok):
    register(tmp_path, "chat", [THREE_TURNS], columns={"history": "history"})
    template = get_template("llama2", tok)
    train, evaluation = get_dataset(tmp_path, "chat", "sft", tok, template, args(), cache_dir=tmp_path / "cache")
    assert evaluation is None
    row = train[0]
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    bos, eos = tok.bos_token_id, tok.eos_token_id
    turns = [
        ([bos] + enc("[INST] What is the capital of France? [/INST]"), enc(" Paris. ") + [eos]),
        ([bos] + enc("[INST] And of Italy? [/INST]"), enc(" Rome. ") + [eos]),
        ([bos] + enc("[INST] Thanks! [/INST]"), enc(" You are welcome. ") + [eos]),
    ]
    expected_ids, expected_labels = [], []
    for prompt, answer in turns:
        expected_ids += prompt + answer
        expected_labels += [IGNORE_INDEX] * len(prompt) + answer
    assert row["input_ids"] == expected_ids
    assert row["labels"] == expected_labels
    assert row["length"] == len(expected_ids)
    trained = [i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX]
    assert tok.decode([row["input_ids"][i] for i in trained]) == " Paris. </s> Rome. </s> You are welcome. </s>"
    # train_on_prompt trains every token
    train, _ = get_dataset(tmp_path, "chat", "sft", tok, template, args(train_on_prompt=True), cache_dir=tmp_path / "cache")
    assert train[0]["labels"] == expected_ids


def test_infer_seqlen_keeps_a_response_budget():
    assert infer_seqlen(10, 5, 100) == (10, 5)
    assert infer_seqlen(100, 10, 50) == (40, 10)  # short answer kept whole, prompt cut
    assert infer_seqlen(10, 100, 50) == (10, 40)  # short prompt kept whole, answer cut
    assert infer_seqlen(300, 100, 40) == (30, 10)  # both long: shared in proportion
    assert infer_seqlen(1000, 1, 8)[1] == 1 and infer_seqlen(1000, 1, 8)[0] == 7
    assert infer_seqlen(5000, 2, 3) == (2, 1)  # never an empty answer


def test_truncation_keeps_answers_and_drops_later_turns_that_do_not_fit():
    long_prompt = list(range(100))
    pairs = [(long_prompt, [1, 2, 3]), ([7] * 5, [8] * 5), ([9] * 5, [10] * 5)]
    kept = truncate_turns(pairs, 20)
    assert len(kept) == 1 and kept[0][1] == [1, 2, 3] and len(kept[0][0]) == 17
    kept = truncate_turns([([1] * 4, [2] * 4), ([3] * 10, [4] * 10)], 9)
    assert kept == [([1] * 4, [2] * 4)]  # one token left: the second turn is dropped, not left answerless
    kept = truncate_turns([([1] * 4, [2] * 4), ([3] * 4, [4] * 4)], 12)
    assert kept[1][1] and sum(len(s) + len(t) for s, t in kept) == 12


def test_sft_rows_respect_cutoff_len(tmp_path, tok):
    register(tmp_path, "chat", [THREE_TURNS, {"instruction": "word " * 200, "output": "short answer"}], columns={"history": "history"})
    train, _ = get_dataset(tmp_path, "chat", "sft", tok, "llama2", args(cutoff_len=16), cache_dir=tmp_path / "cache")
    for row in train:
        assert len(row["input_ids"]) <= 16 and any(label != IGNORE_INDEX for label in row["labels"])


def test_pt_chunks_documents_into_blocks(tok):
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    docs = ["The quick brown fox.", "jumps over the lazy dog.", "hello there"]
    stream = []
    for d in docs:
        stream += [tok.bos_token_id] + enc(d) + [tok.eos_token_id]
    out = tokenize_pt({"text": docs}, tok, 8)
    assert out["input_ids"] == [stream[i : i + 8] for i in range(0, len(stream) // 8 * 8, 8)]
    assert out["labels"] == out["input_ids"] and out["length"] == [8] * (len(stream) // 8)
    single = tokenize_pt({"text": ["hello"]}, tok, 64)
    assert single["input_ids"] == [[tok.bos_token_id] + enc("hello") + [tok.eos_token_id]]  # the only block is kept


def test_pt_stage_from_a_text_file(tmp_path, tok):
    register(tmp_path, "wiki", "The quick brown fox jumps over the lazy dog.\n" * 20)
    train, evaluation = get_dataset(tmp_path, "wiki", "pt", tok, None, args(cutoff_len=32, val_size=0.25), cache_dir=tmp_path / "cache")
    assert all(len(r["input_ids"]) == 32 for r in train) and evaluation is not None and len(evaluation) >= 1
    assert set(train.column_names) == {"input_ids", "labels", "length"}


def test_pairwise_rows_and_collator_order(tmp_path, tok):
    register(tmp_path, "pref", [{"instruction": "What is the capital of France?", "output": ["Paris is the capital.", "Rome."]}], ranking=True)
    train, _ = get_dataset(tmp_path, "pref", "dpo", tok, "llama2", args(), cache_dir=tmp_path / "cache")
    row = train[0]
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    assert row["prompt_input_ids"] == [tok.bos_token_id] + enc("[INST] What is the capital of France? [/INST]")
    assert row["chosen_input_ids"] == enc(" Paris is the capital. ") + [tok.eos_token_id]
    assert row["rejected_input_ids"] == enc(" Rome. ") + [tok.eos_token_id]
    assert row["length"] == len(row["prompt_input_ids"]) + max(len(row["chosen_input_ids"]), len(row["rejected_input_ids"]))

    batch = PairwiseCollator(tok.pad_token_id)([row, row])
    n_prompt = len(row["prompt_input_ids"])
    chosen_len, rejected_len = len(row["chosen_input_ids"]), len(row["rejected_input_ids"])
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape[1] % 8 == 0
    for i in (0, 1):  # first B rows: prompt + chosen
        assert batch["input_ids"][i, n_prompt : n_prompt + chosen_len].tolist() == row["chosen_input_ids"]
        assert batch["labels"][i, :n_prompt].tolist() == [IGNORE_INDEX] * n_prompt
    for i in (2, 3):  # last B rows: prompt + rejected
        assert batch["input_ids"][i, n_prompt : n_prompt + rejected_len].tolist() == row["rejected_input_ids"]
        assert batch["attention_mask"][i].sum().item() == n_prompt + rejected_len


def test_pairwise_truncation_never_empties_an_answer(tmp_path, tok):
    register(tmp_path, "pref", [{"instruction": "word " * 100, "output": ["Paris is the capital. " * 10, "Rome."]}], ranking=True)
    train, _ = get_dataset(tmp_path, "pref", "rm", tok, "llama2", args(cutoff_len=24), cache_dir=tmp_path / "cache")
    row = train[0]
    assert row["chosen_input_ids"] and row["rejected_input_ids"]
    assert len(row["prompt_input_ids"]) + max(len(row["chosen_input_ids"]), len(row["rejected_input_ids"])) <= 24


def test_sft_collator_pads_ids_labels_and_mask(tok):
    batch = SFTCollator(tok.pad_token_id)([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "length": 3}, {"input_ids": [5], "labels": [5], "length": 1}])
    assert batch["input_ids"].tolist() == [[5, 6, 7] + [tok.pad_token_id] * 5, [5] + [tok.pad_token_id] * 7]
    assert batch["labels"].tolist()[1] == [5] + [IGNORE_INDEX] * 7
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]]
    assert SFTCollator(0, pad_to_multiple_of=None)([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}])["input_ids"].shape == (1, 3)


def test_stage_mismatch_and_val_size_refusals(tmp_path, tok):
    register(tmp_path, "pref", [{"instruction": "q", "output": ["a", "b"]}], ranking=True)
    with pytest.raises(UserError, match="dataset 'pref' is a ranking"):
        get_dataset(tmp_path, "pref", "sft", tok, "default", args(), cache_dir=tmp_path / "cache")
    register(tmp_path, "one", [{"instruction": "q", "output": "a"}])
    with pytest.raises(UserError, match="--val_size 5 leaves no training samples"):
        get_dataset(tmp_path, "one", "sft", tok, "default", args(val_size=5), cache_dir=tmp_path / "cache")


def test_cache_is_reused_and_rebuilt_with_overwrite_cache(tmp_path, tok, monkeypatch):
    register(tmp_path, "a", [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(6)])
    register(tmp_path, "b", [{"instruction": "x", "output": "y"}])
    calls = []
    real = preprocess.tokenize_sft
    monkeypatch.setattr(preprocess, "tokenize_sft", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "cache"
    first, _ = get_dataset(tmp_path, "a,b", "sft", tok, "alpaca", args(), cache_dir=cache)
    assert len(first) == 7 and len(calls) == 1 and len(list(cache.glob("*.arrow"))) == 1
    second, _ = get_dataset(tmp_path, "a,b", "sft", tok, "alpaca", args(), cache_dir=cache)
    assert len(calls) == 1 and second["input_ids"] == first["input_ids"]
    assert second.cache_files[0]["filename"] == first.cache_files[0]["filename"]
    get_dataset(tmp_path, "a,b", "sft", tok, "alpaca", args(overwrite_cache=True), cache_dir=cache)
    assert len(calls) == 2
    get_dataset(tmp_path, "a,b", "sft", tok, "alpaca", args(cutoff_len=512), cache_dir=cache)  # new key: new file
    assert len(calls) == 3 and len(list(cache.glob("*.arrow"))) == 2
    register(tmp_path, "b", [{"instruction": "x", "output": "changed"}])
    get_dataset(tmp_path, "a,b", "sft", tok, "alpaca", args(), cache_dir=cache)
    assert len(calls) == 4


def test_default_cache_dir_is_under_hf_datasets_cache(tmp_path, tok, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    register(tmp_path, "a", [{"instruction": "q", "output": "a"}])
    train, _ = get_dataset(tmp_path, "a", "sft", tok, "alpaca", args())
    assert Path(train.cache_files[0]["filename"]).parent == tmp_path / "hf" / "tuneforge"
