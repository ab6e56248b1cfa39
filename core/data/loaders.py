"""Read dataset files into raw records with their exact location, and validate them.

Files are read here rather than through `datasets.load_dataset`, because a user's error must
name the file and the line (JSON Lines, text, CSV), the record (JSON list, parquet) or the byte
offset (bad UTF-8). Hub datasets and local script folders go through `datasets` (imported only
inside the functions that need it).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from core.data.formats import RecordProblem, cli_map_hint, convert_record
from core.errors import UserError

if TYPE_CHECKING:
    from core.data.registry import DatasetSpec

DATA_EXTENSIONS = (".json", ".jsonl", ".csv", ".parquet", ".txt")


@dataclass
class RawRecord:
    """One record as read from a file; `where` is e.g. "data/x.jsonl: line 7"."""

    where: str
    value: Any


# ---------------------------------------------------------------------------- files


def data_files(path: Path) -> list[Path]:
    """The data files of a dataset path: the file itself, or a folder's files in name order.

    Hidden files and folders (a hub download's .cache/, .gitattributes) and files of other
    kinds (README.md) inside a folder are skipped.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path} does not exist or is not a readable file; pick the file again")
    files = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS and not any(part.startswith(".") for part in rel.parts):
            files.append(p)
    if not files:
        raise UserError(f"folder {path} holds no data files ({', '.join(DATA_EXTENSIONS)}); put the dataset files there")
    return files


def read_path(path: Path) -> tuple[list[RawRecord], list[str]]:
    """All raw records of a file or folder, plus line-level problems (bad JSON Lines)."""
    records: list[RawRecord] = []
    problems: list[str] = []
    for file in data_files(path):
        got, bad = read_file(file)
        records += got
        problems += bad
    return records, problems


def read_file(path: Path) -> tuple[list[RawRecord], list[str]]:
    """Raw records of one file and line-level problems; whole-file problems raise UserError."""
    suffix = path.suffix.lower()
    if suffix not in DATA_EXTENSIONS:
        raise UserError(f"{path}: unsupported file type '{suffix or '(none)'}'; use one of {', '.join(DATA_EXTENSIONS)}")
    if not path.is_file():  # an upload the server has already cleaned away, a file moved meanwhile
        raise UserError(f"{path} does not exist or is not a readable file; pick the file again")
    if suffix == ".parquet":
        return _read_parquet(path), []
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"{path} is empty: it holds no records; add records or pick another file")
    if suffix == ".txt":
        return _read_txt(path, text), []
    if suffix == ".csv":
        return _read_csv(path, text), []
    if suffix == ".jsonl" or not text.lstrip().startswith("["):
        return _read_json_or_lines(path, text)
    return _read_json_list(path, text), []


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UserError(
            f"{path} is not UTF-8 text: undecodable byte 0x{data[err.start]:02x} at byte offset {err.start} (line {line}); "
            "re-save the file as UTF-8"
        ) from None


def _read_txt(path: Path, text: str) -> list[RawRecord]:
    # One sample a line; blank lines separate nothing and are skipped.
    return [RawRecord(f"{path}: line {n}", line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _read_json_list(path: Path, text: str) -> list[RawRecord]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON at line {err.lineno} column {err.colno} ({err.msg}); fix the syntax there") from None
    if not data:
        raise UserError(f"{path} is empty: its list holds no records; add records or pick another file")
    return [RawRecord(f"{path}: record {i}", value) for i, value in enumerate(data, start=1)]


def _read_json_or_lines(path: Path, text: str) -> tuple[list[RawRecord], list[str]]:
    """A .json file that is not a list is JSON Lines, or one object (refused with a hint)."""
    if path.suffix.lower() == ".json":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # not one JSON document: read it as JSON Lines below
        if isinstance(whole, dict) and text.strip().count("\n") > 0:
            raise UserError(f"{path} holds one JSON object, not a list of records; wrap the records in [ ... ] or write one record a line (JSON Lines)")
    records: list[RawRecord] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(RawRecord(f"{path}: line {n}", json.loads(line)))
        except json.JSONDecodeError as err:
            problems.append(f"{path}: line {n}: not valid JSON ({err.msg} at column {err.colno}); fix or remove that line")
    return records, problems


def _read_csv(path: Path, text: str) -> list[RawRecord]:
    # The stdlib refuses cells over 128 KiB by default; long documents are normal here.
    csv.field_size_limit(2**31 - 1)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records = []
    try:
        for row in reader:
            # Cells of a short row come back as None; an empty cell is a missing value.
            clean = {k: (v if v != "" else None) for k, v in row.items() if k is not None}
            records.append(RawRecord(f"{path}: line {reader.line_num}", clean))
    except csv.Error as err:
        raise UserError(f"{path}: line {reader.line_num}: not valid CSV ({err}); fix the quoting there") from None
    if not records:
        raise UserError(f"{path} is empty: it has a header but no rows; add rows or pick another file")
    return records


def _read_parquet(path: Path) -> list[RawRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path}: not a readable parquet file ({str(err).splitlines()[0]}); re-export it") from None
    if not rows:
        raise UserError(f"{path} is empty: it holds no rows; add rows or pick another file")
    return [RawRecord(f"{path}: row {i}", row) for i, row in enumerate(rows, start=1)]


# ---------------------------------------------------------------------------- hub and script folders


def read_hub(url: str, split: str = "train", subset: Optional[str] = None, local_name: str = "NAME") -> list[RawRecord]:
    """Rows of a Hugging Face Hub dataset, through datasets' own download cache."""
    import datasets

    try:
        ds = datasets.load_dataset(url, name=subset, split=split)
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        offline = " (offline mode is on)" if _offline() else ""
        raise UserError(
            f"cannot load hub dataset '{url}'{offline}: {reason}; on a connected machine run "
            f"`huggingface-cli download --repo-type dataset {url} --local-dir data/{local_name}` "
            f"and register that folder with \"file_name\": \"{local_name}\""
        ) from None
    return [RawRecord(f"{url}: row {i}", row) for i, row in enumerate(ds, start=1)]


def read_script_folder(folder: Path, split: str = "train") -> list[RawRecord]:
    """Rows of a local dataset folder, through datasets' folder loader (json/csv/parquet/txt)."""
    scripts = sorted(p.name for p in folder.glob("*.py"))
    if scripts:
        raise UserError(
            f"{folder} holds a loading script ({scripts[0]}): datasets 5 no longer runs loading scripts; "
            "convert the data to json/jsonl/parquet files and register them with \"file_name\""
        )
    import datasets

    try:
        ds = datasets.load_dataset(str(folder), split=split)
    except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        raise UserError(f"cannot load dataset folder {folder}: {str(err).splitlines()[0]}; put json/jsonl/csv/parquet files there") from None
    return [RawRecord(f"{folder}: row {i}", row) for i, row in enumerate(ds, start=1)]


def _offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


# ---------------------------------------------------------------------------- validation


def convert_all(
    raw: Iterable[RawRecord], spec: "DatasetSpec", max_errors: Optional[int] = 20,
    map_hint: Callable[[str], str] = cli_map_hint,
) -> tuple[list[dict], list[str]]:
    """Unified records and the problems found (each "<file>: <record>: <what>"), up to max_errors.

    `map_hint(key)` says how to map a missing column (the CLI's --columns unless a caller, the
    web UI, names its own controls).
    """
    records: list[dict] = []
    problems: list[str] = []
    for item in raw:
        try:
            records.append(convert_record(item.value, spec))
        except RecordProblem as err:
            problems.append(_locate(item.where, err.text(map_hint)))
            if max_errors is not None and len(problems) >= max_errors:
                break
    return records, problems


def _locate(where: str, message: str) -> str:
    # "record 3 is a list ..." reads better than "record 3: is a list ..."
    sep = " " if message.startswith(("is ", "has ")) else ": "
    return where + sep + message


def first_problem(problems: list[str]) -> None:
    """Raise the first problem as the CLI's one-line error."""
    if problems:
        more = " (and more problems after it)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)
