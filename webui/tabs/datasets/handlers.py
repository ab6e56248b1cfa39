"""The Datasets tab's event handlers: the registry table, uploads with a column mapping,
registering, unregistering, and the tokenized preview.

Registration goes through core.data.registry (validation, safe name, atomic dataset_info.json
rewrite); this tab only proposes the mapping and shows the first problems with their record
numbers. A handler takes the app's context first (bound by layout.py), then its inputs' values.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from core.errors import UserError
from webui.context import AppContext
from webui.form import NONE
from webui.i18n import headers, t
from webui.tabs.datasets.preview import render_preview

TABLE_COLUMNS = ("name", "shape", "records", "file", "sha1")
COLUMN_KEYS = ("prompt", "query", "response", "history", "system", "messages", "chosen", "rejected")
SHAREGPT_KEYS = ("messages", "system", "chosen", "rejected")
ALPACA_KEYS = ("prompt", "query", "response", "history", "system", "chosen", "rejected")
DATA_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
MAX_SHOWN_PROBLEMS = 10  # of a refused upload; the count says how many there are in all


# ---------------------------------------------------------------------------- the table


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


def refresh(ctx: AppContext, lang: str):
    """(table, unregister picker, preview picker, unregistered files, message)."""
    import gradio as gr

    try:
        table = dataset_table(ctx)
    except UserError as err:
        gr.Warning(str(err))
        return [gr.skip()] * 5
    names = [row[0] for row in table]
    registered = {row[3] for row in table}
    files = sorted(p.name for p in ctx.dataset_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
                   and p.name != "dataset_info.json" and p.name not in registered) if ctx.dataset_dir.is_dir() else []
    return (gr.Dataframe(value=table, headers=headers(lang, TABLE_COLUMNS)),
            gr.Dropdown(choices=names, value=None), gr.Dropdown(choices=names, value=names[0] if names else None),
            gr.Dropdown(choices=files, value=None), "")


def retitle(ctx: AppContext, lang: str):
    """The table in the language just chosen."""
    import gradio as gr

    try:
        return gr.Dataframe(value=dataset_table(ctx), headers=headers(lang, TABLE_COLUMNS))
    except UserError:
        return gr.skip()  # the refresh button says what is wrong with the registry


# ---------------------------------------------------------------------------- upload and register


def proposed_name(file_name: str) -> str:
    stem = Path(file_name).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip("._-") or "dataset"
    return stem[:100]


def mapping_keys(formatting: str) -> tuple[str, ...]:
    return SHAREGPT_KEYS if formatting == "sharegpt" else ALPACA_KEYS


def as_uploaded(text: str, path: Path) -> str:
    """A message about an upload, naming the user's file instead of the server's temporary copy
    (Gradio keeps the uploaded file's name as the last part of that copy's path)."""
    return text.replace(str(path), path.name)


def map_hint(lang: str) -> Callable[[str], str]:
    """How this tab maps a missing column: its column box (the CLI says --columns)."""
    def hint(key: str) -> str:
        if key in COLUMN_KEYS:
            return t(lang, "data.map_hint", box=t(lang, f"data.col.{key}"))
        return t(lang, "data.map_hint_other", key=key)
    return hint


def on_upload(file: Any, lang: str) -> list[Any]:
    """A file was uploaded: [its path, what was detected, a proposed name, formatting, ranking,
    *the column boxes (proposed mapping: core.data.registry.COLUMN_SYNONYMS)]."""
    import gradio as gr

    from core.data.registry import detect_shape_and_columns

    if file is None:
        return [None, "", "", gr.skip(), gr.skip(), *[gr.skip()] * len(COLUMN_KEYS)]
    path = Path(file if isinstance(file, str) else file.name)
    try:
        shape, found, proposed, ranking, formatting = detect_shape_and_columns(path)
    except UserError as err:
        message = as_uploaded(str(err), path)
        gr.Warning(message)
        return [None, f"**{html.escape(message)}**", "", gr.skip(), gr.skip(), *[gr.skip()] * len(COLUMN_KEYS)]
    detected = t(lang, "data.detected", shape=shape, formatting=formatting,
                 ranking=t(lang, "data.ranking") if ranking else "",
                 columns=", ".join(f"`{column}`" for column in found) or "–")
    # Every column key of the formatting is offered (a .txt file has no columns to map).
    keys = mapping_keys(formatting)
    boxes = [gr.Dropdown(choices=[NONE, *found], value=proposed.get(k, NONE), visible=bool(found) and k in keys)
             for k in COLUMN_KEYS]
    return [str(path), detected, proposed_name(path.name), formatting, ranking, *boxes]


def on_formatting(formatting: str) -> list[Any]:
    import gradio as gr

    return [gr.Dropdown(visible=k in mapping_keys(formatting)) for k in COLUMN_KEYS]


@dataclass
class UploadCheck:
    """An upload checked under the chosen mapping: its records, how many are invalid, and the
    first problems (each naming the uploaded file, the record and, for a missing column, the box)."""

    records: int
    invalid: int
    problems: list[str]


def validate_upload(ctx: AppContext, path: Path, name: str, columns: dict[str, str], ranking: bool,
                    formatting: str, lang: str = "en") -> UploadCheck:
    """Every record of a file under the chosen mapping, without registering it. A required column
    that is neither chosen nor in the file under its default name is one UserError, not one
    problem per record."""
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
    raw, unreadable = read_path(path)
    _refuse_unchosen_column(spec, raw, path, lang)
    _, bad = convert_all(raw, spec, max_errors=None, map_hint=map_hint(lang))
    problems = unreadable + bad
    return UploadCheck(len(raw) + len(unreadable), len(problems),
                       [as_uploaded(p, path) for p in problems[:MAX_SHOWN_PROBLEMS]])


def _refuse_unchosen_column(spec: Any, raw: list, path: Path, lang: str) -> None:
    rows = [r.value for r in raw if isinstance(r.value, dict)]
    if not rows:  # lines of a .txt file: no columns
        return
    present = {str(k) for row in rows for k in row}
    required = {"alpaca": "prompt", "sharegpt": "messages"}.get(spec.formatting)
    column = spec.columns.get(required) if required else None
    if required and column not in present:
        raise UserError(t(lang, "data.no_column", file=path.name, box=t(lang, f"data.col.{required}"), column=column,
                          columns=", ".join(sorted(present))))


def register(ctx: AppContext, path: Optional[str], name: str, formatting: str, ranking: bool, lang: str, *cols: str):
    """Validate and register the upload; a name already taken asks for Replace."""
    return _register(ctx, False, path, name, formatting, ranking, lang, *cols)


def replace(ctx: AppContext, path: Optional[str], name: str, formatting: str, ranking: bool, lang: str, *cols: str):
    """Register the upload in place of the dataset of the same name."""
    return _register(ctx, True, path, name, formatting, ranking, lang, *cols)


def _register(ctx: AppContext, replacing: bool, path: Optional[str], name: str, formatting: str, ranking: bool,
              lang: str, *cols: str):
    """Outputs (message, Replace button, *refresh's table and pickers, message line)."""
    import gradio as gr

    from core.data.registry import add_dataset, columns_to_register, detect_shape_and_columns, load_registry

    columns = {k: v for k, v in zip(COLUMN_KEYS, cols) if k in mapping_keys(formatting) and v and v != NONE}
    try:
        if not path:
            raise UserError(t(lang, "data.no_file"))
        shape = detect_shape_and_columns(Path(path))[0]
        columns = columns_to_register(columns, shape, formatting, bool(ranking))
        name = (name or "").strip()
        if not replacing and name in load_registry(ctx.dataset_dir):
            return t(lang, "data.exists", name=name), gr.Button(visible=True), *[gr.skip()] * 5
        check = validate_upload(ctx, Path(path), name, columns, bool(ranking), formatting, lang)
        if check.problems:
            lines = "\n".join(f"- {html.escape(p)}" for p in check.problems)
            head = t(lang, "data.errors", count=check.invalid, total=check.records, shown=len(check.problems))
            return head + "\n" + lines, gr.Button(visible=False), *[gr.skip()] * 5
        spec = add_dataset(ctx.dataset_dir, name, path, columns=columns or None, ranking=bool(ranking),
                           formatting=formatting, replace=bool(replacing))
    except UserError as err:
        message = as_uploaded(str(err), Path(path)) if path else str(err)
        return f"**{html.escape(message)}**", gr.Button(visible=False), *[gr.skip()] * 5
    message = t(lang, "data.registered", name=name, records=check.records, shape=spec.shape)
    gr.Info(message)
    table, remove_pick, preview_pick, existing, _ = refresh(ctx, lang)
    return message, gr.Button(visible=False), table, remove_pick, preview_pick, existing, ""


def register_existing_file(ctx: AppContext, file_name: Optional[str], name: str, lang: str):
    """Register a file already in the dataset folder, with the proposed mapping; outputs as refresh's."""
    import gradio as gr

    from core.data.registry import detect_shape_and_columns, register_existing

    try:
        if not file_name or not (name or "").strip():
            raise UserError(t(lang, "data.no_file"))
        shape, _, proposed, ranking, formatting = detect_shape_and_columns(ctx.dataset_dir / file_name)
        register_existing(ctx.dataset_dir, name.strip(), file_name, columns=proposed or None,
                          ranking=ranking, formatting=formatting)
    except UserError as err:
        gr.Warning(str(err))
        return [gr.skip()] * 5
    out = list(refresh(ctx, lang))
    out[4] = t(lang, "data.registered", name=name.strip(), records="?", shape=shape)
    return out


def unregister(ctx: AppContext, name: Optional[str], delete_file: bool, lang: str):
    """Remove a dataset from the registry (and its file if asked); outputs as refresh's."""
    import gradio as gr

    from core.data.registry import remove_dataset

    try:
        if not name:
            raise UserError(t(lang, "runs.pick"))
        remove_dataset(ctx.dataset_dir, name, delete_file=bool(delete_file))
    except UserError as err:
        gr.Warning(str(err))
        return [gr.skip()] * 5
    out = list(refresh(ctx, lang))
    out[4] = t(lang, "data.unregistered", name=name)
    return out


# ---------------------------------------------------------------------------- preview


def preview(ctx: AppContext, name: Optional[str], model: str, template: Optional[str], cutoff: Any,
            train_on_prompt: bool, n: Any, lang: str):
    """(stats, tokenized records, length histogram) of a dataset, as training tokenizes it."""
    import gradio as gr

    try:
        return render_preview(ctx, name, model, template, int(cutoff or 1024), bool(train_on_prompt), int(n or 3), lang)
    except UserError as err:
        gr.Warning(str(err))
        return f"**{html.escape(str(err))}**", "", None
