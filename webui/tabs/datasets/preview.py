"""The Datasets tab's preview: records as training tokenizes them, trained tokens marked, and the
token lengths against cutoff_len.

The tokens come from core/data/preprocess.py's own functions (the template's encoding, the cut
to cutoff_len, train_on_prompt's labels), so the preview shows what a run trains on. Loads a
tokenizer (transformers) only when asked for; never the model.
"""

from __future__ import annotations

import html
from itertools import groupby
from typing import Any, Optional

from core.errors import UserError
from webui.context import AppContext
from webui.form import NONE
from webui.i18n import t
from webui.paths import resolve_path

PREVIEW_SAMPLE_CAP = 2000  # records tokenized for the length histogram
NO_CUTOFF = 1 << 30  # a cutoff_len that cuts nothing: a record's whole length


def tokenized(records: list[dict], shape: str, tokenizer: Any, template: Any, cutoff_len: int,
              train_on_prompt: bool) -> list[tuple[list[int], list[bool], int]]:
    """(ids, trained or not per id, the length training groups by) of each record, as training
    tokenizes it. A ranking (rw) record shows its prompt and chosen answer, as rm and dpo train."""
    from core.data.collator import IGNORE_INDEX
    from core.data.preprocess import tokenize_pairwise, tokenize_pt, tokenize_sft

    if shape == "pt":  # training packs documents into blocks; a record alone shows its first block
        rows = [tokenize_pt({"text": [r["text"]]}, tokenizer, cutoff_len) for r in records]
        return [(row["input_ids"][0], [True] * len(row["input_ids"][0]), row["length"][0]) for row in rows]
    batch = {"messages": [r["messages"] for r in records], "system": [r.get("system") for r in records]}
    if shape in ("sft", "kto"):  # a kto record is an sft record plus its tag
        rows = tokenize_sft(batch, tokenizer, template, cutoff_len, train_on_prompt, None)
        return [(ids, [label != IGNORE_INDEX for label in labels], length)
                for ids, labels, length in zip(rows["input_ids"], rows["labels"], rows["length"])]
    batch.update(chosen=[r["chosen"] for r in records], rejected=[r["rejected"] for r in records])
    rows = tokenize_pairwise(batch, tokenizer, template, cutoff_len, None)
    return [(prompt + chosen, [False] * len(prompt) + [True] * len(chosen), length)
            for prompt, chosen, length in zip(rows["prompt_input_ids"], rows["chosen_input_ids"], rows["length"])]


def decoded_spans(tokenizer: Any, ids: list[int], trained: list[bool]) -> list[tuple[str, bool, int]]:
    """(text, trained or not, token count) of each run of consecutive tokens of the same kind.

    A run is decoded as a whole: a byte-level tokenizer spreads one Chinese character over two or
    three tokens, so decoding token by token showed each piece as "\ufffd".
    """
    spans = []
    for on, run in groupby(zip(ids, trained), key=lambda pair: pair[1]):
        tokens = [tok for tok, _ in run]
        spans.append((tokenizer.decode(tokens), on, len(tokens)))
    return spans


def load_tokenizer(model: str) -> Any:
    """The tokenizer of a model folder, a .gguf file or a downloaded hub model (never the weights)."""
    from transformers import AutoTokenizer

    from core.model_source import check_model_source, is_hub_id

    source = check_model_source(model if is_hub_id(model) else str(resolve_path(model or "")))
    if source.folder is None:
        raise UserError(f"'{model}' is not downloaded yet: start a run with it (or `python launch.py get-model`) first")
    try:
        return AutoTokenizer.from_pretrained(str(source.folder), gguf_file=source.gguf_file)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load a tokenizer from '{model}': {str(err).strip().splitlines()[0]}") from None


def render_preview(ctx: AppContext, name: Optional[str], model: str, template_name: Optional[str], cutoff: int,
                   train_on_prompt: bool, n: int, lang: str) -> tuple[str, str, Any]:
    """(stats, the first n records with trained tokens marked, a histogram of token lengths)."""
    if not name:
        raise UserError(t(lang, "runs.pick"))
    import plotly.graph_objects as go

    from core.data.registry import get_spec, load_records
    from core.data.templates import get_template

    tokenizer = load_tokenizer(model)
    spec = get_spec(ctx.dataset_dir, name)
    template = get_template(None if template_name in (None, "", NONE) else template_name, tokenizer)
    records = load_records(ctx.dataset_dir, name, max_samples=PREVIEW_SAMPLE_CAP)
    lengths = [length for _, _, length in tokenized(records, spec.shape, tokenizer, template, NO_CUTOFF, train_on_prompt)]
    blocks = []
    shown = tokenized(records[:n], spec.shape, tokenizer, template, cutoff, train_on_prompt)
    for i, (ids, trained, length) in enumerate(shown):
        spans = "".join(f'<span class="{"tf-token-trained" if on else "tf-token-masked"}" data-tokens="{count}">'
                        f'{html.escape(text)}</span>' for text, on, count in decoded_spans(tokenizer, ids, trained))
        blocks.append(f'<div class="tf-preview"><b>#{i + 1}</b> ({lengths[i]} tokens, {length} after cutoff_len)<br>{spans}</div><hr>')
    over = sum(1 for x in lengths if x > cutoff)
    share = 100.0 * over / len(lengths) if lengths else 0.0
    stats = t(lang, "data.over_cutoff", share=f"{share:.1f}", n=len(lengths), cutoff=cutoff) + "\n\n" + t(lang, "data.preview_legend")
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, name="tokens"))
    fig.add_vline(x=cutoff, line_dash="dash", line_color="#d62728", annotation_text=f"cutoff_len {cutoff}")
    fig.update_layout(height=300, template="plotly_white", xaxis_title="tokens", yaxis_title="records",
                      margin={"l": 50, "r": 20, "t": 20, "b": 40})
    return stats, "".join(blocks), fig
