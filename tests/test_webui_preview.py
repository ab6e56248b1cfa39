"""The Datasets tab's preview: records through the template, trained tokens marked, lengths."""

from __future__ import annotations

import re

from core.data.registry import load_records
from core.data.templates import get_template
from webui import app as webapp
from webui.tabs.datasets import render_preview


def test_preview_marks_exactly_the_trained_tokens_and_counts_records_over_the_cutoff(demo_model, dataset_dir, tmp_path):
    from transformers import AutoTokenizer

    ctx = webapp.make_context(webapp.parse_args([
        "--saves_dir", str(tmp_path / "saves"), "--dataset_dir", str(dataset_dir),
        "--demo_model", str(demo_model), "--no_demo_build",
    ]))
    stats, blocks, figure = render_preview(ctx, "alpaca_history_demo", str(demo_model), "llama2", 64, 2, "en")

    tokenizer = AutoTokenizer.from_pretrained(str(demo_model))
    template = get_template("llama2", tokenizer)
    first = load_records(dataset_dir, "alpaca_history_demo")[0]
    pairs = template.encode_multiturn(tokenizer, first["messages"], first["system"])
    first_block = blocks.split("<hr>")[0]
    trained = re.findall(r'class="tf-token-trained"', first_block)
    masked = re.findall(r'class="tf-token-masked"', first_block)
    assert len(trained) == sum(len(r) for _, r in pairs), "every answer token is marked trained"
    assert len(masked) == sum(len(p) for p, _ in pairs), "every prompt token is marked masked"
    assert len(pairs) >= 2, "the first record of the history set has several turns"

    lengths = list(figure.data[0].x)
    records = load_records(dataset_dir, "alpaca_history_demo")
    assert len(lengths) == len(records)
    over = sum(1 for x in lengths if x > 64)
    assert f"{100.0 * over / len(lengths):.1f}" in stats
