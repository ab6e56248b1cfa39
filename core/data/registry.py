"""The dataset registry: dataset_info.json, its entries as DatasetSpec, and registration.

dataset_info.json maps a name to a source (`file_name` inside the dataset dir, a `hf_hub_url`,
or a local `script_url` folder), its `columns`, `formatting` (alpaca | sharegpt) and `ranking`.
Registration validates every record first, copies the file under a sanitised name, records its
SHA-1 and rewrites dataset_info.json atomically under a file lock, so a rejected or interrupted
registration leaves the previous file byte-identical.

Light imports only: the web UI reads the registry at start.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from core.atomic import write_atomic
from core.data.loaders import (
    DATA_EXTENSIONS,
    RawRecord,
    convert_all,
    data_files,
    first_problem,
    read_file,
    read_hub,
    read_path,
    read_script_folder,
)
from core.errors import UserError

logger = logging.getLogger("tuneforge")

INFO_FILE = "dataset_info.json"
LOCK_FILE = ".dataset_info.json.lock"
LOCK_TIMEOUT_S = 60

FORMATTINGS = ("alpaca", "sharegpt", "choice")
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": None,
                  "system": "system", "chosen": None, "rejected": None, "kto_tag": None}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system", "chosen": "chosen", "rejected": "rejected",
                    "kto_tag": None}
# choice: a multiple-choice benchmark (MMLU, C-Eval, CMMLU style) for `launch.py eval`, not for training.
CHOICE_COLUMNS = {"question": "question", "A": "A", "B": "B", "C": "C", "D": "D", "answer": "answer", "subject": "subject"}
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag")
ENTRY_KEYS = ("file_name", "file_sha1", "hf_hub_url", "script_url", "formatting", "ranking", "columns",
              "tags", "split", "subset")

# Which data shapes each training stage accepts. pt takes plain text only: instruction data
# would need a rule for which fields become the text, and no user asked for one yet.
# grpo takes instruction data: the prompt is sampled from, the answer is exact_match's reference.
STAGE_SHAPES: dict[str, tuple[str, ...]] = {"pt": ("pt",), "sft": ("sft",), "rm": ("rw",), "dpo": ("rw",),
                                            "kto": ("kto",), "grpo": ("sft",)}
SHAPE_NAMES = {"pt": "plain text (pt)", "sft": "instruction (sft) data without ranking", "rw": "a ranking (rw) dataset",
               "kto": "unpaired (kto) data with a kto_tag"}
STAGE_NEEDS = {
    "pt": "plain text (a .txt file, one sample a line, or records with columns {\"prompt\": \"text\"})",
    "sft": "instruction data without ranking",
    "rm": "ranking (rw) data with [chosen, rejected] answers",
    "dpo": "ranking (rw) data with [chosen, rejected] answers",
    "kto": "unpaired data: one answer a record and a desirable (true) or undesirable (false) kto_tag column",
    "grpo": "instruction data (prompts with a reference answer)",
}
SHAPE_STAGES = {"pt": "--stage pt", "sft": "--stage sft/grpo", "rw": "--stage rm/dpo", "kto": "--stage kto"}
# A benchmark is not trained on: its name goes to `launch.py eval --task NAME` (core/benchmark.py).
SHAPE_NAMES["mc"] = "a multiple-choice benchmark (formatting choice)"
SHAPE_STAGES["mc"] = "`launch.py eval --task NAME` to score a model on it"

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@dataclass
class DatasetSpec:
    """One dataset_info.json entry, with column defaults filled in."""

    name: str
    file_name: Optional[str] = None
    file_sha1: Optional[str] = None
    hf_hub_url: Optional[str] = None
    script_url: Optional[str] = None
    formatting: str = "alpaca"
    ranking: bool = False
    columns: dict[str, Optional[str]] = field(default_factory=dict)
    tags: Optional[dict[str, str]] = None
    split: str = "train"
    subset: Optional[str] = None
    text: bool = False  # plain-text data: a .txt source, or columns naming only a prompt column

    @property
    def shape(self) -> str:
        if self.ranking:
            return "rw"
        if self.formatting == "choice":
            return "mc"
        if self.columns.get("kto_tag"):
            return "kto"
        return "pt" if self.text else "sft"

    @property
    def source(self) -> str:
        if self.hf_hub_url:
            return "hub"
        return "script" if self.script_url else "file"

    @property
    def location(self) -> str:
        return self.file_name or self.hf_hub_url or self.script_url or ""


@dataclass
class DatasetReport:
    """What `data check` and the UI's dataset table show for one dataset."""

    name: str
    shape: str
    source: str
    location: str
    records: Optional[int]  # None when not counted (hub datasets are not downloaded to count)
    sha1_status: str  # "ok" | "mismatch" | "none"
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------- reading the registry


def load_registry(dataset_dir: str | Path) -> dict[str, DatasetSpec]:
    """Every dataset of dataset_dir/dataset_info.json by name; a missing file is an empty registry."""
    info = _read_info(Path(dataset_dir))
    return {name: spec_from_entry(name, entry, Path(dataset_dir)) for name, entry in info.items()}


def get_spec(dataset_dir: str | Path, name: str) -> DatasetSpec:
    registry = load_registry(dataset_dir)
    if name not in registry:
        raise UserError(_unknown(name, list(registry), Path(dataset_dir)))
    return registry[name]


def check_stage(spec: DatasetSpec, stage: str) -> None:
    """Refuse, by name, a dataset whose shape the stage cannot train on."""
    if stage not in STAGE_SHAPES:
        raise UserError(f"unknown stage '{stage}'; choose one of {', '.join(STAGE_SHAPES)}")
    if spec.shape not in STAGE_SHAPES[stage]:
        raise UserError(
            f"dataset '{spec.name}' is {SHAPE_NAMES[spec.shape]}; stage {stage} needs {STAGE_NEEDS[stage]}: "
            f"pick another dataset or use {SHAPE_STAGES[spec.shape]}"
        )


def _read_info(dataset_dir: Path) -> dict[str, dict]:
    path = dataset_dir / INFO_FILE
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON at line {err.lineno} column {err.colno} ({err.msg}); fix the syntax there") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    if not isinstance(info, dict):
        raise UserError(f"{path} must hold an object mapping dataset names to entries, not a {type(info).__name__}")
    return info


def spec_from_entry(name: str, entry: object, dataset_dir: Path) -> DatasetSpec:
    """Check one dataset_info.json entry and fill in its defaults; one line per problem."""
    where = f"{dataset_dir / INFO_FILE}: dataset '{name}'"
    if not isinstance(entry, dict):
        raise UserError(f"{where} must be an object like {{\"file_name\": \"x.json\"}}, not a {type(entry).__name__}")
    for key in entry:
        if key not in ENTRY_KEYS:
            close = difflib.get_close_matches(key, ENTRY_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(ENTRY_KEYS)}"
            raise UserError(f"{where} has unknown key '{key}'; {hint}")
    sources = [k for k in ("file_name", "hf_hub_url", "script_url") if entry.get(k)]
    if len(sources) != 1:
        raise UserError(f"{where} needs exactly one of file_name, hf_hub_url or script_url (has {', '.join(sources) or 'none'})")
    for key in ("file_name", "file_sha1", "hf_hub_url", "script_url", "split", "subset"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise UserError(f"{where}: '{key}' must be a string, got {json.dumps(entry[key])}")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise UserError(f"{where}: formatting '{formatting}' is unknown; use one of {', '.join(FORMATTINGS)}")
    ranking = entry.get("ranking", False)
    if not isinstance(ranking, bool):
        raise UserError(f"{where}: 'ranking' must be true or false, got {json.dumps(ranking)}")
    given = _string_map(entry.get("columns"), where, "columns")
    defaults = {"sharegpt": SHAREGPT_COLUMNS, "choice": CHOICE_COLUMNS}.get(formatting, ALPACA_COLUMNS)
    for key in given:
        if key not in defaults:
            raise UserError(f"{where}: column key '{key}' is not used by {formatting} data; allowed: {', '.join(defaults)}")
    tags = _string_map(entry.get("tags"), where, "tags") or None
    for key in tags or {}:
        if key not in TAG_KEYS:
            raise UserError(f"{where}: tag key '{key}' is unknown; allowed: {', '.join(TAG_KEYS)}")
    if tags and formatting != "sharegpt":
        raise UserError(f"{where}: 'tags' only apply to sharegpt data; add \"formatting\": \"sharegpt\" or remove them")
    spec = DatasetSpec(
        name=name,
        file_name=entry.get("file_name"),
        file_sha1=entry.get("file_sha1"),
        hf_hub_url=entry.get("hf_hub_url"),
        script_url=entry.get("script_url"),
        formatting=formatting,
        ranking=ranking,
        columns={**defaults, **given},
        tags={**_default_tags(), **tags} if tags else None,
        split=entry.get("split") or "train",
        subset=entry.get("subset"),
        text=_is_text(entry, given, formatting, dataset_dir),
    )
    if formatting == "choice" and ranking:
        raise UserError(f"{where}: a \"choice\" benchmark cannot be a ranking dataset; remove \"ranking\"")
    if spec.text and spec.ranking:
        raise UserError(f"{where} is plain text and cannot be a ranking dataset; remove \"ranking\" or map a response column")
    if spec.ranking and spec.columns.get("kto_tag"):
        raise UserError(f"{where} has both \"ranking\" and a kto_tag column; a kto record holds one answer and its tag: "
                        "remove one of them")
    return spec


def _string_map(value: object, where: str, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) or v is None for v in value.values()):
        raise UserError(f"{where}: '{key}' must map names to strings, like {{\"prompt\": \"question\"}}")
    return value


def _default_tags() -> dict[str, str]:
    from core.data.formats import SHAREGPT_TAGS

    return dict(SHAREGPT_TAGS)


def _is_text(entry: dict, given_columns: dict, formatting: str, dataset_dir: Path) -> bool:
    """Plain-text (pt) data: a .txt file (or a folder of them), or columns naming only a prompt."""
    if formatting != "alpaca":
        return False
    if given_columns and set(given_columns) == {"prompt"}:
        return True
    file_name = entry.get("file_name")
    if not file_name:
        return False
    if file_name.lower().endswith(".txt"):
        return True
    folder = dataset_dir / file_name
    if folder.is_dir() and ".." not in Path(file_name).parts:
        files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS]
        return bool(files) and all(p.suffix.lower() == ".txt" for p in files)
    return False


def _unknown(name: str, known: list[str], dataset_dir: Path) -> str:
    if not known:
        return f"unknown dataset '{name}': {dataset_dir / INFO_FILE} has no datasets; add one with `python launch.py data add NAME FILE`"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown dataset '{name}' in {dataset_dir / INFO_FILE}; {hint}known: {', '.join(known)}"


# ---------------------------------------------------------------------------- paths and hashes


def resolve_inside(dataset_dir: str | Path, rel: str, what: str) -> Path:
    """dataset_dir/rel, refusing absolute paths, '..' and symlinks that lead outside dataset_dir."""
    if "\0" in rel or Path(rel).is_absolute() or ".." in Path(rel).parts or re.match(r"^[A-Za-z]:", rel):
        raise UserError(f"{what}: path '{rel}' must be relative to {dataset_dir} without '..'; move the file into {dataset_dir}")
    root = Path(dataset_dir).resolve()
    path = (root / rel).resolve()
    if path == root or root not in path.parents:
        raise UserError(f"{what}: '{rel}' resolves to {path}, outside {root} (a symlink?); copy the file into {dataset_dir}")
    return path


def file_sha1(path: Path) -> str:
    """SHA-1 of a file, or of a folder's data files (their relative names and contents)."""
    digest = hashlib.sha1()
    if path.is_file():
        _hash_file(digest, path)
        return digest.hexdigest()
    for file in data_files(path):
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        _hash_file(digest, file)
    return digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def _sha1_status(spec: DatasetSpec, path: Path) -> str:
    if not spec.file_sha1:
        return "none"
    return "ok" if file_sha1(path) == spec.file_sha1 else "mismatch"


def _warn_if_changed(spec: DatasetSpec, path: Path) -> None:
    if _sha1_status(spec, path) == "mismatch":
        logger.warning(
            f"[tuneforge] warning: dataset {spec.name}: file_sha1 does not match {path}; the file changed since it was registered "
            f"(re-register it with `python launch.py data add {spec.name} FILE --replace` to silence this)"
        )


# ---------------------------------------------------------------------------- loading records


def _raw_records(dataset_dir: Path, spec: DatasetSpec) -> tuple[list[RawRecord], list[str]]:
    what = f"dataset '{spec.name}'"
    if spec.source == "hub":
        return read_hub(spec.hf_hub_url, spec.split, spec.subset, local_name=spec.name), []
    if spec.source == "script":
        folder = resolve_inside(dataset_dir, spec.script_url, what)
        if not folder.is_dir():
            raise UserError(f"{what}: script_url '{spec.script_url}' must be a folder inside {dataset_dir}")
        return read_script_folder(folder, spec.split), []
    path = resolve_inside(dataset_dir, spec.file_name, what)
    if not path.exists():
        raise UserError(f"{what}: file {path} does not exist; put it there or fix file_name in {dataset_dir / INFO_FILE}")
    _warn_if_changed(spec, path)
    return read_path(path)


def load_records(dataset_dir: str | Path, name: str, max_samples: Optional[int] = None) -> list[dict]:
    """The dataset's unified records (see formats.py), every one validated; UserError otherwise."""
    spec = get_spec(dataset_dir, name)
    raw, problems = _raw_records(Path(dataset_dir), spec)
    first_problem(problems)
    if max_samples is not None:
        raw = raw[:max_samples]
    records, problems = convert_all(raw, spec, max_errors=1)
    first_problem(problems)
    return records


def check_dataset(dataset_dir: str | Path, name: str, max_errors: int = 20) -> DatasetReport:
    """Validate every record of one dataset and report, collecting up to max_errors problems."""
    dataset_dir = Path(dataset_dir)
    spec = get_spec(dataset_dir, name)
    report = DatasetReport(name, spec.shape, spec.source, spec.location, None, "none")
    try:
        if spec.source == "file":
            path = resolve_inside(dataset_dir, spec.file_name, f"dataset '{name}'")
            if path.exists():
                report.sha1_status = _sha1_status(spec, path)
        raw, problems = _raw_records(dataset_dir, spec)
    except UserError as err:
        report.errors = [str(err)]
        return report
    report.records = len(raw)
    _, bad = convert_all(raw, spec, max_errors=max(0, max_errors - len(problems)) or 1)
    report.errors = (problems + bad)[:max_errors]
    return report


# ---------------------------------------------------------------------------- upload flow


# Column names that mean a mapping key, in English and Chinese, so that an upload (web UI) or
# `data add` without --columns maps common names by itself. Matched without regard to case,
# spaces, '-' and '_'; earlier names win when a file has several.
COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "prompt": ("instruction", "prompt", "question", "问题", "指令", "提问", "问", "题目", "指示"),
    "query": ("input", "query", "context", "补充", "输入", "上下文", "背景", "补充信息", "补充说明"),
    "response": ("output", "response", "answer", "completion", "target", "reply", "答案", "回答", "输出", "回复", "答"),
    "history": ("history", "历史", "对话历史", "历史对话"),
    "system": ("system", "system_prompt", "系统", "系统提示", "系统提示词"),
}
# Without a prompt-like column, an input-like or text column is the prompt (plain text when no
# response column exists either).
PROMPT_FALLBACKS = ("query", "input", "context", "text", "content", "输入", "文本", "内容")
MESSAGES_CANDIDATES = ("conversations", "messages", "conversation", "dialog", "对话", "消息")


def _column_key(name: object) -> str:
    return re.sub(r"[\s_-]+", "", str(name)).lower()


def find_column(found: list[str], names: tuple[str, ...], taken: tuple[Optional[str], ...] = ()) -> Optional[str]:
    """The file's column that is one of `names` (the first of them that matches), not one already taken."""
    by_key: dict[str, str] = {}
    for column in found:
        if column not in taken:
            by_key.setdefault(_column_key(column), column)
    return next((by_key[_column_key(n)] for n in names if _column_key(n) in by_key), None)


def detect_shape_and_columns(path: str | Path) -> tuple[str, list[str], dict[str, str], bool, str]:
    """(shape, columns found, proposed columns mapping, ranking, formatting) of a file to upload.

    Reads the file's first records and proposes a mapping from its own column names; the UI
    shows the proposal for the user to confirm before add_dataset validates everything.
    """
    path = Path(path)
    if path.suffix.lower() == ".txt":
        read_file(path)  # refuses empty / non-UTF-8 files now rather than at registration
        return "pt", [], {}, False, "alpaca"
    raw, _ = read_file(path)
    rows = [r.value for r in raw[:50] if isinstance(r.value, dict)]
    found: list[str] = []
    for row in rows:
        found += [k for k in row if k not in found]
    first = rows[0] if rows else {}

    def is_message_list(col: str) -> bool:
        value = first.get(col)
        return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)

    # kto: LLaMA-Factory's kto_tag column, or trl's unpaired `label`, holding true/false.
    kto_tag = next((c for c in ("kto_tag", "label") if isinstance(first.get(c), bool)), None)
    listed = find_column([c for c in found if is_message_list(c)], MESSAGES_CANDIDATES)
    messages = [listed] if listed else [c for c in found if is_message_list(c)]
    if messages:
        ranking = "chosen" in found and "rejected" in found
        proposed = {"messages": messages[0]}
        system = find_column(found, COLUMN_SYNONYMS["system"])
        if system:
            proposed["system"] = system
        if kto_tag and not ranking:
            return "kto", found, {**proposed, "kto_tag": kto_tag}, False, "sharegpt"
        return ("rw" if ranking else "sft"), found, proposed, ranking, "sharegpt"

    proposed = {}
    instruction = find_column(found, COLUMN_SYNONYMS["prompt"])
    prompt = instruction or find_column(found, PROMPT_FALLBACKS)
    if prompt:
        proposed["prompt"] = prompt
    response = find_column(found, COLUMN_SYNONYMS["response"], taken=(prompt,))
    if "chosen" in found and "rejected" in found:
        proposed.update(chosen="chosen", rejected="rejected")
        ranking = True
    else:
        ranking = response is not None and isinstance(first.get(response), list) and len(first[response]) == 2
    if response:
        proposed["response"] = response
    if prompt and not instruction and not response and not ranking:  # a text column alone: plain text
        return "pt", found, {"prompt": prompt}, False, "alpaca"
    for key in ("query", "history", "system"):
        col = find_column(found, COLUMN_SYNONYMS[key], taken=(prompt, response))
        if col:
            proposed[key] = col
    if kto_tag and not ranking:
        return "kto", found, {**proposed, "kto_tag": kto_tag}, False, "alpaca"
    return ("rw" if ranking else "sft"), found, proposed, ranking, "alpaca"


def columns_to_register(columns: dict[str, str], shape: str, formatting: str, ranking: bool) -> dict[str, str]:
    """The mapping to register for a file detected as `shape`. A prompt column alone means plain
    text to the registry (see _is_text): instruction data without an answer column keeps the
    default one, so that checking its records says the answers are missing."""
    if shape != "pt" and formatting == "alpaca" and not ranking and set(columns) == {"prompt"}:
        return {**columns, "response": ALPACA_COLUMNS["response"]}
    return dict(columns)


# ---------------------------------------------------------------------------- registration


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UserError(f"dataset name {name!r} is not allowed; use letters, digits, '_', '.', '-' (no leading dot, at most 100)")


def safe_file_name(name: str) -> str:
    """A file name safe to create in the dataset dir: no folders, '..', NUL, dotfiles or reserved names."""
    base = name.replace("\0", "").replace("\\", "/").split("/")[-1]
    # rpartition, not splitext: "...json" and ".hidden.json" still have an extension here.
    stem, dot, ext = base.rpartition(".")
    ext = (dot + ext).lower() if dot else ""
    if ext not in DATA_EXTENSIONS:
        raise UserError(f"file '{base}' has an unsupported type '{ext or '(none)'}'; use one of {', '.join(DATA_EXTENSIONS)}")
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._-") or "dataset"
    if stem.split(".")[0].upper() in WINDOWS_RESERVED:
        stem = "_" + stem
    return stem[:100] + ext


def add_dataset(
    dataset_dir: str | Path,
    name: str,
    src_path: str | Path,
    columns: Optional[dict[str, str]] = None,
    ranking: bool = False,
    formatting: str = "alpaca",
    replace: bool = False,
) -> DatasetSpec:
    """Validate every record of src_path, copy it into dataset_dir and register it as `name`."""
    dataset_dir = Path(dataset_dir)
    check_name(name)
    src = Path(src_path)
    if src.is_symlink():
        raise UserError(f"{src} is a symbolic link; pass the real file")
    if not src.is_file():
        raise UserError(f"{src} is not a file; pass a {', '.join(DATA_EXTENSIONS)} file (folders: put them in {dataset_dir} and use register_existing)")
    target_name = safe_file_name(src.name)
    entry = _new_entry(target_name, columns, ranking, formatting)
    _refuse_clash(dataset_dir, name, replace)
    spec = _validate(dataset_dir, name, entry, src)
    sha1 = file_sha1(src)
    with _registry_lock(dataset_dir):
        info = _read_info(dataset_dir)
        load_registry(dataset_dir)  # refuse to rewrite a broken dataset_info.json
        _refuse_clash(dataset_dir, name, replace, info)
        target, created = _place_file(dataset_dir, src, target_name, sha1, info, name if replace else None)
        entry = {"file_name": target.name, "file_sha1": sha1, **{k: v for k, v in entry.items() if k != "file_name"}}
        try:
            _write_info(dataset_dir, {**info, name: entry})
        except BaseException:
            if created:
                target.unlink(missing_ok=True)
            raise
    spec.file_name, spec.file_sha1 = target.name, sha1
    return spec


def register_existing(
    dataset_dir: str | Path,
    name: str,
    file_name: str,
    columns: Optional[dict[str, str]] = None,
    ranking: bool = False,
    formatting: str = "alpaca",
    replace: bool = False,
) -> DatasetSpec:
    """Register a file or folder already inside dataset_dir (e.g. a hub download) as `name`."""
    dataset_dir = Path(dataset_dir)
    check_name(name)
    path = resolve_inside(dataset_dir, file_name, f"dataset '{name}'")
    if not path.exists():
        raise UserError(f"{path} does not exist; put the file inside {dataset_dir} first")
    entry = _new_entry(file_name, columns, ranking, formatting)
    _refuse_clash(dataset_dir, name, replace)
    spec = _validate(dataset_dir, name, entry, path)
    sha1 = file_sha1(path)
    with _registry_lock(dataset_dir):
        info = _read_info(dataset_dir)
        load_registry(dataset_dir)
        _refuse_clash(dataset_dir, name, replace, info)
        _write_info(dataset_dir, {**info, name: {"file_name": file_name, "file_sha1": sha1, **{k: v for k, v in entry.items() if k != "file_name"}}})
    spec.file_sha1 = sha1
    return spec


def remove_dataset(dataset_dir: str | Path, name: str, delete_file: bool = False) -> Optional[Path]:
    """Unregister `name`; with delete_file, also delete its file when no other dataset uses it.

    Returns the deleted file, or None. Folders are never deleted (too easy to lose data).
    """
    dataset_dir = Path(dataset_dir)
    with _registry_lock(dataset_dir):
        info = _read_info(dataset_dir)
        if name not in info:
            raise UserError(_unknown(name, list(info), dataset_dir))
        entry = info.pop(name)
        doomed = None
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if delete_file and file_name and not any(isinstance(e, dict) and e.get("file_name") == file_name for e in info.values()):
            path = resolve_inside(dataset_dir, file_name, f"dataset '{name}'")
            if path.is_file() and not (dataset_dir / file_name).is_symlink():
                doomed = path
        _write_info(dataset_dir, info)
        if doomed is not None:
            doomed.unlink()
    return doomed


def _new_entry(file_name: str, columns: Optional[dict[str, str]], ranking: bool, formatting: str) -> dict:
    entry: dict = {"file_name": file_name}
    if formatting != "alpaca":
        entry["formatting"] = formatting
    if ranking:
        entry["ranking"] = True
    if columns:
        entry["columns"] = dict(columns)
    return entry


def _refuse_clash(dataset_dir: Path, name: str, replace: bool, info: Optional[dict] = None) -> None:
    info = _read_info(dataset_dir) if info is None else info
    if name in info and not replace:
        raise UserError(f"dataset '{name}' already exists; pass --replace to overwrite")


def _validate(dataset_dir: Path, name: str, entry: dict, path: Path) -> DatasetSpec:
    spec = spec_from_entry(name, entry, dataset_dir)
    if path.is_dir():  # the entry's name decides text-ness for files; a folder's files decide here
        spec.text = spec.text or all(p.suffix.lower() == ".txt" for p in data_files(path))
    raw, problems = read_path(path)
    first_problem(problems)
    _, problems = convert_all(raw, spec, max_errors=2)
    first_problem(problems)
    return spec


def _place_file(dataset_dir: Path, src: Path, target_name: str, sha1: str, info: dict, replacing: Optional[str]) -> tuple[Path, bool]:
    """Where the copy goes: the sanitised name, or name_1, name_2... if a different file holds it.

    Returns (path, created): an identical file already there is reused, not copied again.
    """
    dataset_dir.mkdir(parents=True, exist_ok=True)
    stem, ext = os.path.splitext(target_name)
    used = {e.get("file_name") for n, e in info.items() if isinstance(e, dict) and n != replacing}
    for i in range(10_000):
        candidate = dataset_dir / (target_name if i == 0 else f"{stem}_{i}{ext}")
        if candidate.is_symlink() or candidate.is_dir():
            continue
        if candidate.exists():
            if file_sha1(candidate) == sha1:
                return candidate, False
            if candidate.name in used or replacing is None or info.get(replacing, {}).get("file_name") != candidate.name:
                continue
        _atomic_copy(src, candidate)
        return candidate, True
    raise UserError(f"no free file name for {target_name} in {dataset_dir}; remove old copies")


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
TEMP_PREFIXES = (".upload-", ".dataset_info-")


def _disk_full(err: OSError, what: str, where: Path) -> UserError:
    return UserError(f"disk full: could not write {what} in {where} ({err.strerror}); {INFO_FILE} and the dataset files "
                     "are unchanged; free some space and register again")


def _atomic_copy(src: Path, dst: Path) -> None:
    try:
        with open(src, "rb") as inp:
            write_atomic(dst, inp, temp_prefix=TEMP_PREFIXES[0])
    except OSError as err:
        if err.errno in DISK_FULL_ERRNOS:
            raise _disk_full(err, f"a copy of {src.name}", dst.parent) from None
        raise


def _write_info(dataset_dir: Path, info: dict) -> None:
    """Rewrite dataset_info.json atomically (core/atomic.py)."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(dataset_dir / INFO_FILE, json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                     temp_prefix=TEMP_PREFIXES[1])
    except OSError as err:
        if err.errno in DISK_FULL_ERRNOS:
            raise _disk_full(err, f"the new {INFO_FILE}", dataset_dir) from None
        raise


def _remove_stale_temps(dataset_dir: Path) -> None:
    """Temp files of a registration that was killed: every writer holds the lock, so under it they are orphans."""
    for entry in dataset_dir.iterdir():
        if entry.name.startswith(TEMP_PREFIXES) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


@contextmanager
def _registry_lock(dataset_dir: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    dataset_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(dataset_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            _remove_stale_temps(dataset_dir)
            yield
    except Timeout:
        raise UserError(
            f"{dataset_dir / INFO_FILE} is locked by another registration for over {LOCK_TIMEOUT_S}s; "
            f"retry, or delete {dataset_dir / LOCK_FILE} if none is running"
        ) from None
