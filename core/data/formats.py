"""Turn one raw record (alpaca, sharegpt, ranking or plain text) into a unified record.

Unified records are what the trainer, chat and web UI rely on:
  pt:  {"text": str}
  sft: {"system": str | None, "messages": [{"role": "user"|"assistant", "content": str}, ...]}
       alternating, starting with a user turn and ending with an assistant turn
  rw:  {"system": str | None, "messages": [... ending with a user turn], "chosen": str, "rejected": str}
  mc:  {"subject": str, "question": str, "choices": [A, B, C, D texts], "answer": "A".."D"} (a benchmark)
  kto: like sft, plus "kto_tag": bool (the last answer is desirable or not)

Conversion and validation are the same code path: a converter either returns a unified record
or raises RecordProblem naming the field, so a checked dataset and a loaded one cannot drift.
The caller (loaders.py) adds the file and record number to the message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from core.data.registry import DatasetSpec


def cli_map_hint(key: str) -> str:
    """How the command line maps a column to a mapping key (the web UI says it its own way)."""
    return f"map the column with --columns {key}=NAME"


class RecordProblem(Exception):
    """What is wrong with one record, without its location (the loader adds that).

    A missing column names its mapping key (`column_key`); `text(map_hint)` then ends with how to
    map it, which each front end words for its own controls (the CLI's --columns by default).
    """

    def __init__(self, message: str, column_key: Optional[str] = None):
        super().__init__(message)
        self.column_key = column_key

    def text(self, map_hint: Callable[[str], str] = cli_map_hint) -> str:
        message = str(self.args[0])
        return f"{message}; add it or {map_hint(self.column_key)}" if self.column_key else message

    def __str__(self) -> str:
        return self.text()


# sharegpt: the default tags (ShareGPT's own), and the OpenAI-style ones accepted when the
# dataset entry sets no tags, so both common conventions load without configuration.
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "system_tag": "system",
}
OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}


def convert_record(value: Any, spec: "DatasetSpec") -> dict:
    """One raw record -> one unified record of the spec's shape; RecordProblem if invalid."""
    if spec.shape == "pt":
        return _convert_text(value, spec)
    if not isinstance(value, dict):
        raise RecordProblem(f"is a {type(value).__name__}, not an object with fields; each record must be a JSON object")
    if spec.formatting == "sharegpt":
        return _convert_sharegpt(value, spec)
    if spec.formatting == "choice":
        return _convert_choice(value, spec)
    return _convert_alpaca(value, spec)


# ---------------------------------------------------------------------------- pt


def _convert_text(value: Any, spec: "DatasetSpec") -> dict:
    if isinstance(value, str):  # a line of a .txt file
        text = value
    elif isinstance(value, dict):
        column = spec.columns["prompt"]
        text = _required_str(value, column, "text")
    else:
        raise RecordProblem(f"is a {type(value).__name__}; plain-text records must be lines of text or objects with a text field")
    if not text.strip():
        raise RecordProblem("is empty; remove empty samples")
    return {"text": text}


# ---------------------------------------------------------------------------- alpaca


def _convert_alpaca(record: dict, spec: "DatasetSpec") -> dict:
    cols = spec.columns
    prompt = _required_str(record, cols["prompt"], "prompt")
    query = _optional_str(record, cols.get("query"))
    content = prompt + "\n" + query if query.strip() else prompt
    messages = _history_messages(record, cols.get("history"))
    messages.append({"role": "user", "content": content})
    system = _optional_str(record, cols.get("system")) or None
    if not spec.ranking:
        response = _required_str(record, cols["response"], "response")
        messages.append({"role": "assistant", "content": response})
        return _with_kto_tag({"system": system, "messages": messages}, record, spec)
    chosen, rejected = _alpaca_pair(record, cols)
    return {"system": system, "messages": messages, "chosen": chosen, "rejected": rejected}


def _alpaca_pair(record: dict, cols: dict) -> tuple[str, str]:
    # Either separate chosen/rejected columns, or the response column holding [chosen, rejected].
    if cols.get("chosen") and cols.get("rejected"):
        chosen = _required_str(record, cols["chosen"], "chosen answer")
        rejected = _required_str(record, cols["rejected"], "rejected answer")
        field = f"{cols['chosen']}/{cols['rejected']}"
    else:
        field = cols["response"]
        if field not in record:
            raise RecordProblem(f"has no field '{field}' (the response column)", column_key="response")
        pair = _maybe_json_list(record[field])
        if not isinstance(pair, list) or len(pair) != 2:
            got = f"a list of {len(pair)}" if isinstance(pair, list) else f"a {type(pair).__name__}"
            raise RecordProblem(f"field '{field}' must be a list of 2 answers [chosen, rejected] in a ranking dataset, got {got}")
        if not all(isinstance(x, str) for x in pair):
            raise RecordProblem(f"field '{field}' must hold 2 strings [chosen, rejected]; found {[type(x).__name__ for x in pair]}")
        chosen, rejected = pair
        if not chosen.strip() or not rejected.strip():
            which = "chosen (first)" if not chosen.strip() else "rejected (second)"
            raise RecordProblem(f"field '{field}' has an empty {which} answer; give both answers text")
    if chosen.strip() == rejected.strip():
        raise RecordProblem(f"field '{field}' has the same chosen and rejected answer; a ranking pair needs two different answers")
    return chosen, rejected


def _history_messages(record: dict, column: Optional[str]) -> list[dict]:
    if not column or record.get(column) is None:
        return []
    history = _maybe_json_list(record[column])
    if not isinstance(history, list):
        raise RecordProblem(f"field '{column}' must be a list of [user, assistant] pairs, got a {type(history).__name__}")
    messages: list[dict] = []
    for i, turn in enumerate(history, start=1):
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(x, str) for x in turn)):
            raise RecordProblem(f"field '{column}' turn {i} must be a pair of strings [user, assistant], got {_short(turn)}")
        if not turn[0].strip() or not turn[1].strip():
            raise RecordProblem(f"field '{column}' turn {i} has an empty {'user' if not turn[0].strip() else 'assistant'} text; fill it or remove the turn")
        messages.append({"role": "user", "content": turn[0]})
        messages.append({"role": "assistant", "content": turn[1]})
    return messages


# ---------------------------------------------------------------------------- sharegpt


def _convert_sharegpt(record: dict, spec: "DatasetSpec") -> dict:
    cols = spec.columns
    column = cols["messages"]
    if column not in record:
        raise RecordProblem(f"has no field '{column}' (the messages column)", column_key="messages")
    raw = _maybe_json_list(record[column])
    if not isinstance(raw, list) or not raw:
        raise RecordProblem(f"field '{column}' must be a non-empty list of messages, got {_short(raw)}")
    system = _optional_str(record, cols.get("system")) or None
    messages: list[dict] = []
    for i, message in enumerate(raw, start=1):
        role, content = _sharegpt_message(message, spec.tags, f"field '{column}' message {i}")
        if role == "system":
            if i != 1:
                raise RecordProblem(f"field '{column}' message {i} is a system message; only the first message may be one")
            system = content
            continue
        expected = "user" if len(messages) % 2 == 0 else "assistant"
        if role != expected:
            raise RecordProblem(f"field '{column}' message {i} is from the {role}, expected the {expected}; turns must alternate user, assistant, ...")
        messages.append({"role": role, "content": content})
    if not messages:
        raise RecordProblem(f"field '{column}' holds only a system message; add user and assistant turns")
    if not spec.ranking:
        if messages[-1]["role"] != "assistant":
            raise RecordProblem(f"field '{column}' ends with a user message; a conversation must end with the assistant's answer")
        return _with_kto_tag({"system": system, "messages": messages}, record, spec)
    if messages[-1]["role"] != "user":
        raise RecordProblem(f"field '{column}' ends with an assistant message; in a ranking dataset it must end with the user turn that chosen/rejected answer")
    chosen = _sharegpt_answer(record, cols["chosen"], spec.tags)
    rejected = _sharegpt_answer(record, cols["rejected"], spec.tags)
    if chosen.strip() == rejected.strip():
        raise RecordProblem(f"fields '{cols['chosen']}' and '{cols['rejected']}' are the same answer; a ranking pair needs two different answers")
    return {"system": system, "messages": messages, "chosen": chosen, "rejected": rejected}


def _sharegpt_message(message: Any, tags: Optional[dict], where: str) -> tuple[str, str]:
    """(role, content) of one message, role normalised to user/assistant/system."""
    if not isinstance(message, dict):
        raise RecordProblem(f"{where} must be an object like {{\"from\": \"human\", \"value\": \"...\"}}, got {_short(message)}")
    if tags:
        chosen_tags = tags
    else:  # no tags configured: accept ShareGPT's and OpenAI's conventions
        chosen_tags = SHAREGPT_TAGS if SHAREGPT_TAGS["role_tag"] in message else OPENAI_TAGS
    role_tag, content_tag = chosen_tags["role_tag"], chosen_tags["content_tag"]
    if role_tag not in message or content_tag not in message:
        raise RecordProblem(f"{where} needs '{role_tag}' and '{content_tag}' keys, has {sorted(message)}; set \"tags\" in dataset_info.json if yours differ")
    roles = {chosen_tags["user_tag"]: "user", chosen_tags["assistant_tag"]: "assistant", chosen_tags["system_tag"]: "system"}
    role = roles.get(message[role_tag])
    if role is None:
        raise RecordProblem(f"{where} has {role_tag}={message[role_tag]!r}; allowed: {', '.join(map(repr, roles))}")
    content = message[content_tag]
    if not isinstance(content, str):
        raise RecordProblem(f"{where} '{content_tag}' must be a string, got a {type(content).__name__}")
    if not content.strip():
        raise RecordProblem(f"{where} is empty; give every message text")
    return role, content


def _sharegpt_answer(record: dict, column: str, tags: Optional[dict]) -> str:
    # LLaMA-Factory stores chosen/rejected as one message each; a plain string is accepted too.
    if column not in record:
        raise RecordProblem(f"has no field '{column}'; a sharegpt ranking record needs 'chosen' and 'rejected' answers")
    value = record[column]
    if isinstance(value, str):
        if not value.strip():
            raise RecordProblem(f"field '{column}' is empty; give the answer text")
        return value
    role, content = _sharegpt_message(value, tags, f"field '{column}'")
    if role != "assistant":
        raise RecordProblem(f"field '{column}' is a {role} message; it must be the assistant's answer")
    return content


# ---------------------------------------------------------------------------- kto


KTO_TAG_TEXT = {"true": True, "false": False, "1": True, "0": False}  # CSV cells hold text


def _with_kto_tag(unified: dict, record: dict, spec: "DatasetSpec") -> dict:
    """An sft record, plus its kto_tag when the dataset maps one (kto data)."""
    column = spec.columns.get("kto_tag")
    if not column:
        return unified
    if column not in record or record[column] is None:
        raise RecordProblem(f"has no field '{column}' (the kto_tag column); give each answer true (desirable) or false (undesirable)")
    tag = record[column]
    if isinstance(tag, str) and tag.strip().lower() in KTO_TAG_TEXT:
        tag = KTO_TAG_TEXT[tag.strip().lower()]
    if not isinstance(tag, bool):
        raise RecordProblem(f"field '{column}' (kto_tag) must be true or false, got {_short(tag)}")
    return {**unified, "kto_tag": tag}


# ---------------------------------------------------------------------------- choice (benchmarks)


CHOICE_LETTERS = ("A", "B", "C", "D")


def _convert_choice(record: dict, spec: "DatasetSpec") -> dict:
    """A multiple-choice question: its text, four choices and the right letter (A-D, or the index
    0-3 that MMLU's hub files use); the subject defaults to the dataset's name."""
    cols = spec.columns
    question = _required_str(record, cols["question"], "question")
    choices = [_choice_text(record, cols[letter], letter) for letter in CHOICE_LETTERS]
    column = cols["answer"]
    if column not in record or record[column] is None:
        raise RecordProblem(f"has no field '{column}' (the answer column); give the right choice's letter, A-D")
    answer = record[column]
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(CHOICE_LETTERS):
        answer = CHOICE_LETTERS[answer]
    elif isinstance(answer, str) and answer.strip().upper() in CHOICE_LETTERS:
        answer = answer.strip().upper()
    else:
        raise RecordProblem(f"field '{column}' (answer) must be one of the letters A, B, C, D, got {_short(answer)}")
    subject = _optional_str(record, cols.get("subject")).strip() or spec.name
    return {"subject": subject, "question": question, "choices": choices, "answer": answer}


def _choice_text(record: dict, column: Optional[str], letter: str) -> str:
    if not column or column not in record or record[column] is None:
        raise RecordProblem(f"has no field '{column}' (choice {letter}); a question needs the four choices A, B, C, D")
    value = record[column]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # CSV and JSON benchmarks hold numeric choices as numbers
    if not isinstance(value, str) or not value.strip():
        raise RecordProblem(f"field '{column}' (choice {letter}) must be a non-empty text, got {_short(value)}")
    return value


# ---------------------------------------------------------------------------- helpers


def _required_str(record: dict, column: str, what: str) -> str:
    if column not in record or record[column] is None:
        return _missing(record, column, what)
    value = record[column]
    if not isinstance(value, str):
        raise RecordProblem(f"field '{column}' ({what}) must be a string, got a {type(value).__name__}")
    if not value.strip():
        raise RecordProblem(f"field '{column}' ({what}) is empty; give it text or remove the record")
    return value


def _missing(record: dict, column: str, what: str) -> str:
    key = {"prompt": "prompt", "response": "response", "text": "prompt"}.get(what, what.split()[0])
    raise RecordProblem(
        f"has no field '{column}' (the {what} column; fields present: {', '.join(sorted(map(str, record))) or 'none'})",
        column_key=key,
    )


def _optional_str(record: dict, column: Optional[str]) -> str:
    if not column or record.get(column) is None:
        return ""
    value = record[column]
    if not isinstance(value, str):
        raise RecordProblem(f"field '{column}' must be a string, got a {type(value).__name__}")
    return value


def _maybe_json_list(value: Any) -> Any:
    # CSV cells hold lists as JSON text; decode them so CSV files can carry history and pairs.
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
