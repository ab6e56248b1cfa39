"""Every refused input names the file, the record (or line) and the field in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data.registry import add_dataset, check_dataset, load_records, register_existing
from core.errors import UserError


def write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


GOOD = {"instruction": "Say hi.", "input": "", "output": "Hi!"}


def refusal(tmp_path: Path, name: str, content, **kwargs) -> str:
    src = write(tmp_path / name, content)
    with pytest.raises(UserError) as err:
        add_dataset(tmp_path / "data", "x", src, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    assert str(src) in message, message
    return message


@pytest.mark.parametrize(
    "records, expected",
    [
        ([GOOD, {"instruction": ["a"], "output": "b"}], ["record 2", "'instruction'", "must be a string"]),
        ([GOOD, GOOD, {"question": "a", "output": "b"}], ["record 3", "'instruction'", "--columns prompt="]),
        ([{"instruction": "a"}], ["record 1", "'output'", "response"]),
        ([GOOD, {"instruction": "   ", "output": "b"}], ["record 2", "'instruction'", "empty"]),
        ([{"instruction": "a", "output": ""}], ["record 1", "'output'", "empty"]),
        ([GOOD, "just text"], ["record 2", "is a str"]),
    ],
)
def test_alpaca_record_refusals_name_record_and_field(tmp_path, records, expected):
    message = refusal(tmp_path, "bad.json", records)
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize(
    "history, expected",
    [
        ("not a list", "must be a list of [user, assistant] pairs"),
        ([["q", "a"], ["only one"]], "turn 2 must be a pair of strings"),
        ([["q", 3]], "turn 1 must be a pair of strings"),
        ([["q", " "]], "turn 1 has an empty assistant text"),
    ],
)
def test_malformed_history_is_refused(tmp_path, history, expected):
    records = [GOOD, {**GOOD, "history": history}]
    message = refusal(tmp_path, "hist.json", records, columns={"history": "history"})
    assert "record 2" in message and "'history'" in message and expected in message, message


@pytest.mark.parametrize(
    "output, expected",
    [
        ("one answer", "must be a list of 2 answers"),
        (["a", "b", "c"], "got a list of 3"),
        (["a", 5], "must hold 2 strings"),
        (["a", ""], "empty rejected (second) answer"),
        (["same", "same"], "same chosen and rejected"),
    ],
)
def test_ranking_mismatches_are_refused(tmp_path, output, expected):
    records = [{"instruction": "q", "output": ["good", "bad"]}, {"instruction": "q", "output": output}]
    message = refusal(tmp_path, "rank.json", records, ranking=True)
    assert "record 2" in message and "'output'" in message and expected in message, message


def test_bad_jsonl_line_names_its_line_number(tmp_path):
    text = json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n{\"instruction\": \"a\", oops}\n"
    message = refusal(tmp_path, "bad.jsonl", text)
    assert "line 4" in message and "not valid JSON" in message


def test_jsonl_record_problem_names_the_line(tmp_path):
    text = json.dumps(GOOD) + "\n" + json.dumps({"instruction": "a", "output": 7}) + "\n"
    message = refusal(tmp_path, "bad.jsonl", text)
    assert "line 2" in message and "'output'" in message


def test_undecodable_bytes_name_file_offset_and_line(tmp_path):
    data = json.dumps([GOOD]).encode()[:-1] + b",\n{\"instruction\": \"caf\xe9\", \"output\": \"x\"}]"
    message = refusal(tmp_path, "latin1.json", data)
    offset = data.index(b"\xe9")
    assert "not UTF-8" in message and f"byte offset {offset}" in message and "line 2" in message


@pytest.mark.parametrize("name, content", [("empty.json", ""), ("empty2.json", "[]"), ("empty.txt", "\n  \n"), ("empty.csv", "instruction,output\n")])
def test_empty_file_is_refused(tmp_path, name, content):
    assert "empty" in refusal(tmp_path, name, content)


def test_json_syntax_error_names_line_and_column(tmp_path):
    message = refusal(tmp_path, "broken.json", '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": }\n]')
    assert "line 3" in message and "column" in message


def test_sharegpt_refusals(tmp_path):
    h, g = {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}
    cases = [
        ({"conversations": [h, h]}, "message 2 is from the user, expected the assistant"),
        ({"conversations": [h]}, "must end with the assistant"),
        ({"conversations": [h, {"from": "bot", "value": "x"}]}, "from='bot'"),
        ({"conversations": "hi"}, "non-empty list of messages"),
        ({"messages": [h, g]}, "no field 'conversations'"),
        ({"conversations": [h, {"from": "gpt", "value": ""}]}, "message 2 is empty"),
    ]
    for i, (record, expected) in enumerate(cases):
        message = refusal(tmp_path, f"sg{i}.json", [{"conversations": [h, g]}, record], formatting="sharegpt")
        assert "record 2" in message and expected in message, message


def test_csv_rows_and_list_cells(tmp_path):
    src = write(tmp_path / "qa.csv", 'question,answer,history\nhi,hello,"[[""a"", ""b""]]"\nbye,,\n')
    with pytest.raises(UserError, match=r"qa.csv: line 3 has no field 'answer'"):
        add_dataset(tmp_path / "data", "qa", src, columns={"prompt": "question", "response": "answer", "history": "history"})
    write(src, 'question,answer,history\nhi,hello,"[[""a"", ""b""]]"\n')
    add_dataset(tmp_path / "data", "qa", src, columns={"prompt": "question", "response": "answer", "history": "history"})
    (record,) = load_records(tmp_path / "data", "qa")
    assert [m["content"] for m in record["messages"]] == ["a", "b", "hi", "hello"]


def test_parquet_is_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([GOOD, {"instruction": "b", "input": "ctx", "output": "c"}]), tmp_path / "p.parquet")
    add_dataset(tmp_path / "data", "p", tmp_path / "p.parquet")
    records = load_records(tmp_path / "data", "p")
    assert records[1]["messages"][0]["content"] == "b\nctx"


def test_check_collects_several_problems_for_the_ui(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write(data / "many.json", [GOOD, {"instruction": ""}, {"output": "x"}, GOOD, {"instruction": 1, "output": "y"}])
    (data / "dataset_info.json").write_text(json.dumps({"many": {"file_name": "many.json"}}))
    report = check_dataset(data, "many", max_errors=20)
    assert report.records == 5 and len(report.errors) == 3
    assert [e.split(": ")[1].split(" ")[:2] for e in report.errors] == [["record", "2"], ["record", "3"], ["record", "5"]]
    assert len(check_dataset(data, "many", max_errors=2).errors) == 2
    with pytest.raises(UserError, match="record 2"):
        load_records(data, "many")


def test_register_existing_validates_a_folder(tmp_path):
    data = tmp_path / "data"
    (data / "hub_copy" / "data").mkdir(parents=True)
    (data / "hub_copy" / ".cache").mkdir()
    write(data / "hub_copy" / "data" / "train-0.jsonl", "\n".join(json.dumps(GOOD) for _ in range(3)))
    write(data / "hub_copy" / ".cache" / "junk.json", "not json")
    write(data / "hub_copy" / "README.md", "# card")
    spec = register_existing(data, "hub_copy", "hub_copy")
    assert spec.shape == "sft" and len(load_records(data, "hub_copy")) == 3
