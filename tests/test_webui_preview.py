"""The Datasets tab's preview goes through the training tokenization: the template, the cut to
cutoff_len and train_on_prompt mark exactly the tokens a run trains on; lengths are counted whole."""

from __future__ import annotations

import re

from core.data.collator import IGNORE_INDEX
from core.data.preprocess import tokenize_pairwise, tokenize_sft
from core.data.registry import load_records
from core.data.templates import get_template
from webui import app as webapp
from webui.tabs.datasets.preview import NO_CUTOFF, render_preview


def _context(demo_model, dataset_dir, tmp_path):
    return webapp.make_context(webapp.parse_args([
        "--saves_dir", str(tmp_path / "saves"), "--dataset_dir", str(dataset_dir),
        "--demo_model", str(demo_model), "--no_demo_build",
    ]))


def _marks(block: str) -> tuple[int, int]:
    """(trained tokens, masked tokens) of a record's block: each span counts its tokens."""
    def count(kind: str) -> int:
        return sum(int(n) for n in re.findall(rf'class="tf-token-{kind}" data-tokens="(\d+)"', block))
    return count("trained"), count("masked")


def test_preview_marks_what_training_trains_on_after_the_cutoff(demo_model, dataset_dir, tmp_path):
    from transformers import AutoTokenizer

    ctx = _context(demo_model, dataset_dir, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(demo_model))
    template = get_template("llama2", tokenizer)
    records = load_records(dataset_dir, "alpaca_history_demo")
    batch = {"messages": [r["messages"] for r in records], "system": [r["system"] for r in records]}
    whole = tokenize_sft(batch, tokenizer, template, NO_CUTOFF, False, None)["length"]
    cutoff = 24
    assert whole[0] > cutoff, "the first record is cut, so the preview must show the cut"
    first = {"messages": batch["messages"][:1], "system": batch["system"][:1]}
    for train_on_prompt in (False, True):
        stats, blocks, figure = render_preview(ctx, "alpaca_history_demo", str(demo_model), "llama2", cutoff,
                                               train_on_prompt, 2, "en")
        labels = tokenize_sft(first, tokenizer, template, cutoff, train_on_prompt, None)["labels"][0]
        trained, masked = _marks(blocks.split("<hr>")[0])
        assert trained == sum(label != IGNORE_INDEX for label in labels), train_on_prompt
        assert masked == sum(label == IGNORE_INDEX for label in labels), train_on_prompt
        assert trained + masked == len(labels) <= cutoff
        assert (masked == 0) == train_on_prompt
    # The histogram counts whole records, so it shows how many the cutoff cuts.
    lengths = list(figure.data[0].x)
    assert lengths == whole
    over = sum(1 for x in lengths if x > cutoff)
    assert f"{100.0 * over / len(lengths):.1f}" in stats


def test_preview_of_a_ranking_set_shows_the_prompt_and_the_chosen_answer_as_rm_and_dpo_see_them(
        demo_model, dataset_dir, tmp_path):
    from transformers import AutoTokenizer

    ctx = _context(demo_model, dataset_dir, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(demo_model))
    template = get_template("llama2", tokenizer)
    record = load_records(dataset_dir, "demo_pref")[0]
    batch = {k: [record.get(k)] for k in ("messages", "system", "chosen", "rejected")}
    row = tokenize_pairwise(batch, tokenizer, template, 32, None)
    _, blocks, _ = render_preview(ctx, "demo_pref", str(demo_model), "llama2", 32, False, 1, "en")
    assert _marks(blocks) == (len(row["chosen_input_ids"][0]), len(row["prompt_input_ids"][0]))


def test_preview_decodes_runs_of_tokens_so_chinese_characters_stay_whole(demo_model, dataset_dir, tmp_path):
    """The demo tokenizer splits 家, 爱 and 安门 into byte pieces: one token at a time they showed as
    "请把这个国\ufffd\ufffd\ufffd翻译成英文"."""
    import json

    from transformers import AutoTokenizer

    from core.data.registry import add_dataset

    text, answer = "请把这个国家翻译成英文：我爱北京天安门。", "Translate: I love Tiananmen in Beijing."
    tokenizer = AutoTokenizer.from_pretrained(str(demo_model))
    pieces = [tokenizer.decode([i]) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert any("\ufffd" in p for p in pieces), "the record must split characters over tokens"
    src = tmp_path / "zh.jsonl"
    src.write_text(json.dumps({"instruction": text, "output": answer}, ensure_ascii=False) + "\n", encoding="utf-8")
    add_dataset(dataset_dir, "zh_preview", src)
    ctx = _context(demo_model, dataset_dir, tmp_path)
    _, blocks, _ = render_preview(ctx, "zh_preview", str(demo_model), "llama2", 256, False, 1, "en")
    assert "\ufffd" not in blocks
    assert text in blocks and answer in blocks
    assert re.search(r'class="tf-token-masked" data-tokens="\d+">[^<]*请把这个国家翻译成英文', blocks)
