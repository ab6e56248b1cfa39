"""Common column names, English and Chinese, map by themselves (web UI upload and `data add`
without --columns), and the Datasets tab's errors speak of its own boxes and the user's file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.data.cli import main as data_cli
from core.data.registry import COLUMN_SYNONYMS, detect_shape_and_columns, load_records
from webui import app as webapp
from webui.form import NONE
from webui.tabs.datasets import handlers
from webui.tabs.datasets.handlers import COLUMN_KEYS


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("names, expected", [
    (("问题", "补充", "答案"), {"prompt": "问题", "query": "补充", "response": "答案"}),
    (("指令", "输入", "输出", "历史"), {"prompt": "指令", "query": "输入", "response": "输出", "history": "历史"}),
    (("提问", "上下文", "回答", "对话历史"), {"prompt": "提问", "query": "上下文", "response": "回答", "history": "对话历史"}),
    (("question", "context", "answer"), {"prompt": "question", "query": "context", "response": "answer"}),
    (("Prompt", "Input", "Response"), {"prompt": "Prompt", "query": "Input", "response": "Response"}),
    (("Instruction", "Output", "History"), {"prompt": "Instruction", "response": "Output", "history": "History"}),
    (("query", "answer"), {"prompt": "query", "response": "answer"}),  # no instruction: the input is the prompt
])
def test_common_column_names_are_mapped_by_themselves(tmp_path, names, expected):
    record = {name: ([["你好", "你好！"]] if name in COLUMN_SYNONYMS["history"] or name == "History" else f"{name} text")
              for name in names}
    path = write_jsonl(tmp_path / "data.jsonl", [record])
    shape, found, proposed, ranking, formatting = detect_shape_and_columns(path)
    assert (shape, ranking, formatting) == ("sft", False, "alpaca")
    assert proposed == expected


def test_data_add_without_columns_maps_chinese_names_and_says_so(dataset_dir, tmp_path, capsys):
    src = write_csv(tmp_path / "问答.csv", ["问题", "补充", "答案"],
                    [["把这个词翻译成英文", "狗", "dog"], ["2 加 3 等于几？", "", "5"]])
    assert data_cli(["--dataset_dir", str(dataset_dir), "add", "zh_qa", str(src)]) == 0
    out = capsys.readouterr().out
    assert "mapped columns: prompt=问题, query=补充, response=答案" in out and "(sft, 2 records)" in out
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["zh_qa"]["columns"] == {"prompt": "问题", "query": "补充", "response": "答案"}
    first = load_records(dataset_dir, "zh_qa")[0]
    assert first["messages"] == [{"role": "user", "content": "把这个词翻译成英文\n狗"}, {"role": "assistant", "content": "dog"}]
    # --columns still decides when given: nothing else is mapped
    assert data_cli(["--dataset_dir", str(dataset_dir), "add", "zh_qa2", str(src), "--columns", "prompt=问题,response=答案"]) == 0
    assert "mapped columns" not in capsys.readouterr().out
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["zh_qa2"]["columns"] == {"prompt": "问题", "response": "答案"}
    # a file without answers is refused as instruction data, not registered as plain text
    no_answer = write_csv(tmp_path / "q.csv", ["问题"], [["x"]])
    assert data_cli(["--dataset_dir", str(dataset_dir), "add", "q", str(no_answer)]) == 2
    assert "has no field 'output' (the response column" in capsys.readouterr().err


def _ctx(dataset_dir, tmp_path):
    return webapp.make_context(webapp.parse_args([
        "--saves_dir", str(tmp_path / "saves"), "--dataset_dir", str(dataset_dir), "--no_demo_build"]))


def _boxes(**chosen) -> list[str]:
    return [chosen.get(key, NONE) for key in COLUMN_KEYS]


def _upload(tmp_path: Path, name: str) -> Path:
    """Where Gradio puts an upload: a temporary folder of its own, the user's file name last."""
    folder = tmp_path / "gradio" / "3f9c0e1d2b"
    folder.mkdir(parents=True)
    return folder / name


def test_ui_errors_count_every_invalid_record_and_name_the_file_and_the_box(dataset_dir, tmp_path):
    ctx = _ctx(dataset_dir, tmp_path)
    path = write_jsonl(_upload(tmp_path, "我的数据.jsonl"), [{"问题": f"问题 {i}", "备注": "x"} for i in range(30)])
    message, *_ = handlers.register(ctx, str(path), "zh_bad", "alpaca", False, "en", *_boxes(prompt="问题"))
    assert "Rejected: 30 of 30 records are invalid; the first 10:" in message
    assert message.count("\n- ") == 10
    assert "我的数据.jsonl: line 1 has no field &#x27;output&#x27;" in message  # html-escaped for the Markdown box
    assert "choose its column in the “Answer column (response)” box above" in message
    assert str(path.parent) not in message and "--columns" not in message
    zh, *_ = handlers.register(ctx, str(path), "zh_bad", "alpaca", False, "zh", *_boxes(prompt="问题"))
    assert "30 条无效" in zh and "“回答列（response）”框" in zh and "--columns" not in zh


def test_ui_says_which_box_to_fill_when_nothing_is_mapped(dataset_dir, tmp_path):
    ctx = _ctx(dataset_dir, tmp_path)
    path = write_csv(_upload(tmp_path, "odd names.csv"), ["q_text", "a_text"], [["a", "b"]] * 30)
    message, *_ = handlers.register(ctx, str(path), "odd", "alpaca", False, "en", *_boxes())
    assert message.count("\n") == 0, message  # one line, not 30
    assert "No column of odd names.csv is chosen in the “Instruction column (prompt)” box" in message
    assert "q_text" in message and str(path.parent) not in message and "--columns" not in message


def test_ui_upload_of_chinese_columns_proposes_the_mapping_and_registers(dataset_dir, tmp_path):
    ctx = _ctx(dataset_dir, tmp_path)
    path = write_csv(_upload(tmp_path, "zh.csv"), ["问题", "补充", "答案"], [["把这个国家翻译成英文", "中国", "China"]] * 3)
    out = handlers.on_upload(str(path), "en")
    boxes = dict(zip(COLUMN_KEYS, out[5:]))
    assert {k: boxes[k].value for k in ("prompt", "query", "response")} == {"prompt": "问题", "query": "补充", "response": "答案"}
    chosen = {k: boxes[k].value for k in COLUMN_KEYS if boxes[k].value != NONE}
    message, *_ = handlers.register(ctx, out[0], "zh_ok", out[3], out[4], "en", *_boxes(**chosen))
    assert message.startswith("Registered zh_ok: 3 records"), message
