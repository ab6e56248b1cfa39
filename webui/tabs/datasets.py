"""The Datasets tab: the registry, uploads with a column mapping, and a tokenized preview.

Registration goes through core.data.registry (validation, safe name, atomic dataset_info.json
rewrite); this tab only proposes the mapping and shows the first problems with their record
numbers. The preview loads a tokenizer (transformers) only when asked for.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Optional

from core.errors import UserError
from webui.context import AppContext, display_path, resolve_path
from webui.form import NONE
from webui.i18n import I18N, headers, t

TABLE_COLUMNS = ("name", "shape", "records", "file", "sha1")
COLUMN_KEYS = ("prompt", "query", "response", "history", "system", "messages", "chosen", "rejected")
SHAREGPT_KEYS = ("messages", "system", "chosen", "rejected")
ALPACA_KEYS = ("prompt", "query", "response", "history", "system", "chosen", "rejected")
PREVIEW_SAMPLE_CAP = 2000  # records tokenized for the length histogram


# (dataset dir, name, entry, file stat) -> (records, sha1 status): checking reads every record,
# so a page load re-checks only the datasets whose entry or file changed since the last look.
_CHECKED: dict[tuple, tuple[Any, str]] = {}


def _file_stamp(path: Path) -> tuple:
    try:
        st = path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return ()


def _checked(ctx: AppContext, name: str, spec: Any) -> tuple[Any, str]:
    from core.data.registry import check_dataset

    key = (str(ctx.dataset_dir), name, repr(spec), _file_stamp(ctx.dataset_dir / (spec.file_name or "")))
    if key not in _CHECKED:
        try:
            report = check_dataset(ctx.dataset_dir, name, max_errors=1)
            records, sha1 = report.records, report.sha1_status
            if report.errors:
                sha1 = f"{sha1}; {report.errors[0]}"
        except UserError as err:
            records, sha1 = None, str(err)
        _CHECKED[key] = (records, sha1)
    return _CHECKED[key]


def dataset_table(ctx: AppContext) -> list[list[Any]]:
    from core.data.registry import load_registry

    rows = []
    for name, spec in sorted(load_registry(ctx.dataset_dir).items()):
        records, sha1 = _checked(ctx, name, spec)
        rows.append([name, spec.shape, "" if records is None else records, spec.location, sha1])
    return rows


def proposed_name(file_name: str) -> str:
    stem = Path(file_name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip("._-") or "dataset"
    return stem[:100]


def validate_upload(ctx: AppContext, path: Path, name: str, columns: dict[str, str], ranking: bool,
                    formatting: str, max_errors: int = 10) -> tuple[int, list[str]]:
    """(records, first problems) of a file under the chosen mapping, without registering it."""
    from core.data.loaders import convert_all, read_path
    from core.data.registry import spec_from_entry

    entry: dict[str, Any] = {"file_name": path.name}
    if formatting != "alpaca":
        entry["formatting"] = formatting
    if ranking:
        entry["ranking"] = True
    if columns:
        entry["columns"] = columns
    spec = spec_from_entry(name or "upload", entry, ctx.dataset_dir)
    raw, problems = read_path(path)
    _, bad = convert_all(raw, spec, max_errors=max_errors)
    return len(raw), (problems + bad)[:max_errors]


def build(ctx: AppContext, lang) -> dict[str, Any]:
    import gradio as gr

    c: dict[str, Any] = {}
    with gr.Row():
        c["refresh"] = gr.Button(I18N("data.refresh"), elem_id="data-refresh", scale=0, min_width=120)
        c["message"] = gr.Markdown("", elem_id="data-message")
    c["table"] = gr.Dataframe(value=[], headers=headers("en", TABLE_COLUMNS), interactive=False,
                              elem_id="data-table", label=I18N("data.table"), wrap=True)
    with gr.Accordion(I18N("data.upload"), open=True, elem_id="data-upload-box"):
        with gr.Row():
            c["file"] = gr.File(label=I18N("data.upload"), file_types=[".json", ".jsonl", ".csv", ".parquet", ".txt"],
                                elem_id="data-file", scale=2)
            with gr.Column(scale=3):
                c["detected"] = gr.Markdown("", elem_id="data-detected")
                with gr.Row():
                    c["name"] = gr.Textbox(label=I18N("data.name"), elem_id="data-name")
                    c["formatting"] = gr.Dropdown(choices=["alpaca", "sharegpt"], value="alpaca", label="formatting",
                                                  elem_id="data-formatting")
                    c["ranking"] = gr.Checkbox(value=False, label="ranking", elem_id="data-ranking")
        with gr.Row():
            c["cols"] = {key: gr.Dropdown(choices=[NONE], value=NONE, label=I18N(f"data.col.{key}"),
                                          elem_id=f"data-col-{key}", allow_custom_value=False, min_width=160,
                                          visible=key in ALPACA_KEYS)
                         for key in COLUMN_KEYS}
        with gr.Row():
            c["register"] = gr.Button(I18N("data.register"), variant="primary", elem_id="data-register")
            c["replace"] = gr.Button(I18N("data.replace"), variant="stop", visible=False, elem_id="data-replace")
        c["errors"] = gr.Markdown("", elem_id="data-errors")
    with gr.Accordion(I18N("data.manage"), open=False, elem_id="data-manage-box"):
        with gr.Row():
            c["existing_file"] = gr.Dropdown(choices=[], label=I18N("data.existing_file"), elem_id="data-existing-file")
            c["existing_name"] = gr.Textbox(label=I18N("data.name"), elem_id="data-existing-name")
            c["register_existing"] = gr.Button(I18N("data.register_existing"), elem_id="data-register-existing")
        with gr.Row():
            c["remove_pick"] = gr.Dropdown(choices=[], label=I18N("data.pick"), elem_id="data-remove-pick")
            c["delete_file"] = gr.Checkbox(value=False, label=I18N("data.delete_file"))
            c["remove"] = gr.Button(I18N("data.unregister"), variant="stop", elem_id="data-remove")
    with gr.Accordion(I18N("data.preview"), open=False, elem_id="data-preview-box"):
        with gr.Row():
            c["preview_pick"] = gr.Dropdown(choices=[], label=I18N("data.pick"), elem_id="data-preview-pick")
            c["preview_model"] = gr.Textbox(value=display_path(ctx.demo_model), label=I18N("field.model_name_or_path"),
                                            elem_id="data-preview-model")
            c["preview_template"] = gr.Dropdown(choices=[NONE, *_template_names()], value="llama2",
                                                label=I18N("field.template"), elem_id="data-preview-template")
            c["preview_cutoff"] = gr.Number(value=_default("cutoff_len"), precision=0, label=I18N("field.cutoff_len"),
                                            elem_id="data-preview-cutoff")
            c["preview_n"] = gr.Slider(1, 20, value=3, step=1, label=I18N("data.preview_records"))
        c["preview_run"] = gr.Button(I18N("data.preview_run"), elem_id="data-preview-run")
        c["preview_stats"] = gr.Markdown("", elem_id="data-preview-stats")
        c["preview_html"] = gr.HTML("", elem_id="data-preview-html")
        c["preview_hist"] = gr.Plot(label=I18N("data.histogram"), elem_id="data-preview-hist")
    c["upload_path"] = gr.State(None)
    _wire(ctx, c, lang)
    return c


def _template_names() -> tuple[str, ...]:
    from core.args import TEMPLATE_NAMES

    return TEMPLATE_NAMES


def _default(name: str) -> Any:
    from webui.form import field_spec

    return field_spec(name).default


def _wire(ctx: AppContext, c: dict[str, Any], lang) -> None:
    import gradio as gr

    col_boxes = [c["cols"][k] for k in COLUMN_KEYS]

    def refresh(lang_value):
        try:
            table = dataset_table(ctx)
        except UserError as err:
            gr.Warning(str(err))
            return [gr.skip()] * 5
        names = [row[0] for row in table]
        registered = {row[3] for row in table}
        files = sorted(p.name for p in ctx.dataset_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in (".json", ".jsonl", ".csv", ".parquet", ".txt")
                       and p.name != "dataset_info.json" and p.name not in registered) if ctx.dataset_dir.is_dir() else []
        return (gr.Dataframe(value=table, headers=headers(lang_value, TABLE_COLUMNS)),
                gr.Dropdown(choices=names, value=None), gr.Dropdown(choices=names, value=names[0] if names else None),
                gr.Dropdown(choices=files, value=None), "")

    refresh_out = [c["table"], c["remove_pick"], c["preview_pick"], c["existing_file"], c["message"]]
    c["refresh"].click(refresh, lang, refresh_out)

    def retitle(lang_value):
        try:
            return gr.Dataframe(value=dataset_table(ctx), headers=headers(lang_value, TABLE_COLUMNS))
        except UserError:
            return gr.skip()  # the refresh button says what is wrong with the registry

    lang.change(retitle, lang, c["table"])
    ctx.hooks["datasets_refresh"] = (refresh, lang, refresh_out)

    def on_upload(file, lang_value):
        from core.data.registry import detect_shape_and_columns

        if file is None:
            return [None, "", "", gr.skip(), gr.skip(), *[gr.skip()] * len(COLUMN_KEYS)]
        path = Path(file if isinstance(file, str) else file.name)
        try:
            shape, found, proposed, ranking, formatting = detect_shape_and_columns(path)
        except UserError as err:
            gr.Warning(str(err))
            return [None, f"**{html.escape(str(err))}**", "", gr.skip(), gr.skip(), *[gr.skip()] * len(COLUMN_KEYS)]
        keys = SHAREGPT_KEYS if formatting == "sharegpt" else ALPACA_KEYS
        detected = t(lang_value, "data.detected", shape=shape, formatting=formatting,
                     ranking=t(lang_value, "data.ranking") if ranking else "",
                     columns=", ".join(f"`{c_}`" for c_ in found) or "–")
        # Every column key of the formatting is offered (a .txt file has no columns to map).
        boxes = [gr.Dropdown(choices=[NONE, *found], value=proposed.get(k, NONE), visible=bool(found) and k in keys)
                 for k in COLUMN_KEYS]
        return [str(path), detected, proposed_name(path.name), formatting, ranking, *boxes]

    c["file"].upload(on_upload, [c["file"], lang],
                     [c["upload_path"], c["detected"], c["name"], c["formatting"], c["ranking"], *col_boxes])

    def on_formatting(formatting):
        keys = SHAREGPT_KEYS if formatting == "sharegpt" else ALPACA_KEYS
        return [gr.Dropdown(visible=k in keys) for k in COLUMN_KEYS]

    c["formatting"].input(on_formatting, c["formatting"], col_boxes)

    def register(replace, path, name, formatting, ranking, lang_value, *cols):
        from core.data.registry import add_dataset, load_registry

        keys = SHAREGPT_KEYS if formatting == "sharegpt" else ALPACA_KEYS
        columns = {k: v for k, v in zip(COLUMN_KEYS, cols) if k in keys and v and v != NONE}
        try:
            if not path:
                raise UserError(t(lang_value, "data.no_file"))
            name = (name or "").strip()
            if not replace and name in load_registry(ctx.dataset_dir):
                return t(lang_value, "data.exists", name=name), gr.Button(visible=True), *[gr.skip()] * 5
            records, problems = validate_upload(ctx, Path(path), name, columns, bool(ranking), formatting)
            if problems:
                lines = "\n".join(f"- {html.escape(p)}" for p in problems)
                return (t(lang_value, "data.errors", count=len(problems)) + "\n" + lines,
                        gr.Button(visible=False), *[gr.skip()] * 5)
            spec = add_dataset(ctx.dataset_dir, name, path, columns=columns or None, ranking=bool(ranking),
                               formatting=formatting, replace=bool(replace))
        except UserError as err:
            return f"**{html.escape(str(err))}**", gr.Button(visible=False), *[gr.skip()] * 5
        message = t(lang_value, "data.registered", name=name, records=records, shape=spec.shape)
        gr.Info(message)
        table, remove_pick, preview_pick, existing, _ = refresh(lang_value)
        return message, gr.Button(visible=False), table, remove_pick, preview_pick, existing, ""

    reg_inputs = [c["upload_path"], c["name"], c["formatting"], c["ranking"], lang, *col_boxes]
    reg_outputs = [c["errors"], c["replace"], c["table"], c["remove_pick"], c["preview_pick"], c["existing_file"], c["message"]]
    c["register"].click(lambda *a: register(False, *a), reg_inputs, reg_outputs)
    c["replace"].click(lambda *a: register(True, *a), reg_inputs, reg_outputs)

    def register_existing_file(file_name, name, lang_value):
        from core.data.registry import detect_shape_and_columns, register_existing

        try:
            if not file_name or not (name or "").strip():
                raise UserError(t(lang_value, "data.no_file"))
            shape, _, proposed, ranking, formatting = detect_shape_and_columns(ctx.dataset_dir / file_name)
            register_existing(ctx.dataset_dir, name.strip(), file_name, columns=proposed or None,
                              ranking=ranking, formatting=formatting)
        except UserError as err:
            gr.Warning(str(err))
            return [gr.skip()] * 5
        out = list(refresh(lang_value))
        out[4] = t(lang_value, "data.registered", name=name.strip(), records="?", shape=shape)
        return out

    c["register_existing"].click(register_existing_file, [c["existing_file"], c["existing_name"], lang], refresh_out)

    def remove(name, delete_file, lang_value):
        from core.data.registry import remove_dataset

        try:
            if not name:
                raise UserError(t(lang_value, "runs.pick"))
            remove_dataset(ctx.dataset_dir, name, delete_file=bool(delete_file))
        except UserError as err:
            gr.Warning(str(err))
            return [gr.skip()] * 5
        out = list(refresh(lang_value))
        out[4] = t(lang_value, "data.unregistered", name=name)
        return out

    c["remove"].click(remove, [c["remove_pick"], c["delete_file"], lang], refresh_out)

    def preview(name, model, template, cutoff, n, lang_value):
        try:
            return render_preview(ctx, name, model, template, int(cutoff or 1024), int(n or 3), lang_value)
        except UserError as err:
            gr.Warning(str(err))
            return f"**{html.escape(str(err))}**", "", None
        except OSError as err:  # a folder without tokenizer files
            gr.Warning(f"{model}: cannot load a tokenizer ({err})".splitlines()[0])
            return "", "", None

    c["preview_run"].click(preview, [c["preview_pick"], c["preview_model"], c["preview_template"], c["preview_cutoff"],
                                     c["preview_n"], lang],
                           [c["preview_stats"], c["preview_html"], c["preview_hist"]])


def _record_pairs(template, tokenizer, record: dict) -> list[tuple[list[int], list[int]]]:
    """(prompt_ids, response_ids) pairs of one unified record, as training would see them."""
    if "text" in record:
        ids = tokenizer(record["text"], add_special_tokens=False)["input_ids"]
        return [([], ids)]
    messages = list(record["messages"])
    if "chosen" in record:  # rw: preview the chosen answer
        messages.append({"role": "assistant", "content": record["chosen"]})
    return template.encode_multiturn(tokenizer, messages, record.get("system"))


def render_preview(ctx: AppContext, name: Optional[str], model: str, template_name: Optional[str],
                   cutoff: int, n: int, lang: str) -> tuple[str, str, Any]:
    if not name:
        raise UserError(t(lang, "runs.pick"))
    from transformers import AutoTokenizer  # only here: the preview is the one place that needs it

    import plotly.graph_objects as go

    from core.data.registry import load_records
    from core.data.templates import get_template

    from core.model import check_model_dir

    folder = check_model_dir(str(resolve_path(model or "")))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load a tokenizer from '{model}': {str(err).strip().splitlines()[0]}") from None
    template = get_template(None if template_name in (None, "", NONE) else template_name, tokenizer)
    records = load_records(ctx.dataset_dir, name, max_samples=PREVIEW_SAMPLE_CAP)
    lengths, blocks = [], []
    for i, record in enumerate(records):
        pairs = _record_pairs(template, tokenizer, record)
        lengths.append(sum(len(p) + len(r) for p, r in pairs))
        if i < n:
            spans = []
            for prompt_ids, response_ids in pairs:
                for ids, cls in ((prompt_ids, "tf-token-masked"), (response_ids, "tf-token-trained")):
                    for tok in ids:
                        piece = tokenizer.decode([tok])
                        spans.append(f'<span class="{cls}">{html.escape(piece)}</span>')
            blocks.append(f'<div class="tf-preview"><b>#{i + 1}</b> ({lengths[-1]} tokens)<br>{"".join(spans)}</div><hr>')
    over = sum(1 for x in lengths if x > cutoff)
    share = 100.0 * over / len(lengths) if lengths else 0.0
    stats = t(lang, "data.over_cutoff", share=f"{share:.1f}", n=len(lengths), cutoff=cutoff) + "\n\n" + t(lang, "data.preview_legend")
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, name="tokens"))
    fig.add_vline(x=cutoff, line_dash="dash", line_color="#d62728", annotation_text=f"cutoff_len {cutoff}")
    fig.update_layout(height=300, template="plotly_white", xaxis_title="tokens", yaxis_title="records",
                      margin={"l": 50, "r": 20, "t": 20, "b": 40})
    return stats, "".join(blocks), fig
