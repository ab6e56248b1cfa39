"""dataset_info.json: specs, stage checks, atomic and locked registration, path safety."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from core.data import registry
from core.data.registry import (
    STAGE_SHAPES,
    add_dataset,
    check_dataset,
    check_stage,
    detect_shape_and_columns,
    get_spec,
    load_records,
    load_registry,
    register_existing,
    remove_dataset,
    safe_file_name,
)
from core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
GOOD = [{"instruction": "Say hi.", "input": "", "output": "Hi!"}, {"instruction": "Add", "input": "1 and 2", "output": "3"}]


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bundled_registry_shapes_and_unified_records():
    specs = load_registry(ROOT / "data")
    assert {n: specs[n].shape for n in ("wiki_demo", "alpaca_demo", "alpaca_history_demo", "comparison_demo", "sharegpt_demo")} == {
        "wiki_demo": "pt", "alpaca_demo": "sft", "alpaca_history_demo": "sft", "comparison_demo": "rw", "sharegpt_demo": "sft"}
    for name in ("wiki_demo", "alpaca_demo", "alpaca_history_demo", "comparison_demo", "sharegpt_demo"):
        report = check_dataset(ROOT / "data", name)
        assert report.ok and report.sha1_status == "ok", report
    assert set(load_records(ROOT / "data", "wiki_demo")[0]) == {"text"}
    hist = load_records(ROOT / "data", "alpaca_history_demo")
    assert any(len(r["messages"]) >= 4 for r in hist)
    for record in hist:
        roles = [m["role"] for m in record["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
    rw = load_records(ROOT / "data", "comparison_demo")[0]
    assert set(rw) == {"system", "messages", "chosen", "rejected"} and rw["messages"][-1]["role"] == "user"


def test_alpaca_query_is_appended_to_prompt_with_a_newline(tmp_path):
    add_dataset(tmp_path, "g", write_json(tmp_path / "g.json", GOOD))
    records = load_records(tmp_path, "g")
    assert records[0] == {"system": None, "messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"}]}
    assert records[1]["messages"][0]["content"] == "Add\n1 and 2"


def test_sharegpt_conversion_with_system_and_openai_style_messages(tmp_path):
    data = [
        {"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
        {"conversations": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "system": "S"},
    ]
    add_dataset(tmp_path, "sg", write_json(tmp_path / "sg.json", data), formatting="sharegpt")
    first, second = load_records(tmp_path, "sg")
    assert first == {"system": "Be kind.", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert second["system"] == "S" and second["messages"][1] == {"role": "assistant", "content": "b"}


def test_sharegpt_ranking_with_chosen_and_rejected_keys(tmp_path):
    data = [{"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "good"}, "rejected": "bad"}]
    spec = add_dataset(tmp_path, "sgr", write_json(tmp_path / "sgr.json", data), formatting="sharegpt", ranking=True)
    assert spec.shape == "rw"
    assert load_records(tmp_path, "sgr") == [{"system": None, "messages": [{"role": "user", "content": "q"}], "chosen": "good", "rejected": "bad"}]


def test_sharegpt_custom_tags(tmp_path):
    data = [{"dialog": [{"speaker": "me", "text": "hi"}, {"speaker": "bot", "text": "yo"}]}]
    write_json(tmp_path / "t.json", data)
    (tmp_path / "dataset_info.json").write_text(json.dumps({"t": {"file_name": "t.json", "formatting": "sharegpt", "columns": {"messages": "dialog"},
        "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"}}}))
    assert load_records(tmp_path, "t")[0]["messages"][1] == {"role": "assistant", "content": "yo"}


def test_pt_json_records_via_prompt_only_columns(tmp_path):
    spec = add_dataset(tmp_path, "txt", write_json(tmp_path / "c.json", [{"text": "doc one"}, {"text": "doc two"}]), columns={"prompt": "text"})
    assert spec.shape == "pt" and load_records(tmp_path, "txt") == [{"text": "doc one"}, {"text": "doc two"}]


def test_stage_compatibility_refused_by_name():
    specs = load_registry(ROOT / "data")
    assert STAGE_SHAPES == {"pt": ("pt",), "sft": ("sft",), "rm": ("rw",), "dpo": ("rw",), "kto": ("kto",), "grpo": ("sft",)}
    with pytest.raises(UserError, match=r"dataset 'comparison_demo' is a ranking \(rw\) dataset; stage sft needs instruction data without ranking: pick another dataset or use --stage rm/dpo"):
        check_stage(specs["comparison_demo"], "sft")
    with pytest.raises(UserError, match=r"dataset 'alpaca_demo' is instruction .*stage dpo needs ranking .*--stage sft"):
        check_stage(specs["alpaca_demo"], "dpo")
    with pytest.raises(UserError, match=r"dataset 'alpaca_demo' .* stage pt needs plain text"):
        check_stage(specs["alpaca_demo"], "pt")
    check_stage(specs["wiki_demo"], "pt")
    check_stage(specs["comparison_demo"], "rm")


def test_unknown_name_suggests_the_closest(tmp_path):
    with pytest.raises(UserError, match="did you mean 'alpaca_demo'"):
        get_spec(ROOT / "data", "alpaca_dem")
    assert load_registry(tmp_path / "nowhere") == {}


@pytest.mark.parametrize(
    "info, expected",
    [
        ("{ broken", "not valid JSON at line 1"),
        ('{"a": {"file_name": "a.json", "colums": {}}}', "unknown key 'colums'; did you mean 'columns'"),
        ('{"a": {"columns": {}}}', "needs exactly one of file_name"),
        ('{"a": {"file_name": "a.json", "formatting": "openai"}}', "formatting 'openai' is unknown"),
        ('{"a": {"file_name": "a.json", "columns": {"answer": "x"}}}', "column key 'answer'"),
        ('[1, 2]', "must hold an object"),
    ],
)
def test_broken_dataset_info_is_refused_in_one_line(tmp_path, info, expected):
    (tmp_path / "dataset_info.json").write_text(info)
    with pytest.raises(UserError, match=expected) as err:
        load_registry(tmp_path)
    assert "\n" not in str(err.value)


def test_sha1_mismatch_is_a_visible_warning_not_an_error(dataset_dir, caplog):
    with open(dataset_dir / "alpaca_demo.json", "a") as fh:
        fh.write("\n")
    with caplog.at_level(logging.WARNING, logger="tuneforge"):
        records = load_records(dataset_dir, "alpaca_demo")
    assert len(records) == 30
    assert "[tuneforge] warning: dataset alpaca_demo: file_sha1 does not match" in caplog.text
    assert "the file changed since it was registered" in caplog.text
    assert check_dataset(dataset_dir, "alpaca_demo").sha1_status == "mismatch"


@pytest.mark.parametrize("file_name", ["../outside.json", "/etc/passwd", "sub/../../outside.json", "link.json"])
def test_paths_escaping_the_dataset_dir_are_refused(tmp_path, file_name):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    write_json(tmp_path / "outside.json", GOOD)
    (data / "link.json").symlink_to(tmp_path / "outside.json")
    (data / "dataset_info.json").write_text(json.dumps({"x": {"file_name": file_name}}))
    with pytest.raises(UserError, match="outside|without '..'"):
        load_records(data, "x")
    with pytest.raises(UserError, match="outside|without '..'"):
        register_existing(data, "y", file_name)


@pytest.mark.parametrize(
    "raw, safe",
    [("../../etc/evil.json", "evil.json"), ("a/b\\c.jsonl", "c.jsonl"), ("CON.json", "_CON.json"), (".hidden.json", "hidden.json"),
     ("na\0me.json", "name.json"), ("my data (1).CSV", "my_data__1.csv"), ("...json", "dataset.json")],
)
def test_safe_file_name(raw, safe):
    assert safe_file_name(raw) == safe


def test_unknown_extension_and_symlink_sources_are_refused(tmp_path):
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(UserError, match="unsupported type '.xlsx'"):
        add_dataset(tmp_path / "d", "x", tmp_path / "x.xlsx")
    write_json(tmp_path / "real.json", GOOD)
    (tmp_path / "ln.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(UserError, match="symbolic link"):
        add_dataset(tmp_path / "d", "x", tmp_path / "ln.json")
    with pytest.raises(UserError, match="not allowed"):
        add_dataset(tmp_path / "d", ".x", tmp_path / "real.json")
    with pytest.raises(UserError, match="not allowed"):
        add_dataset(tmp_path / "d", "a/b", tmp_path / "real.json")


def test_add_copies_under_a_safe_name_and_records_sha1(tmp_path):
    data = tmp_path / "data"
    src = write_json(tmp_path / "My Data.json", GOOD)
    spec = add_dataset(data, "mine", src)
    assert spec.file_name == "My_Data.json" and (data / "My_Data.json").read_bytes() == src.read_bytes()
    info = json.loads((data / "dataset_info.json").read_text())
    assert info["mine"] == {"file_name": "My_Data.json", "file_sha1": registry.file_sha1(src)}
    # another dataset with a different file of the same name gets its own copy
    src.write_text(json.dumps(GOOD[:1]))
    assert add_dataset(data, "mine2", src).file_name == "My_Data_1.json"
    assert (data / "My_Data.json").read_text() == json.dumps(GOOD)


def test_refused_registrations_leave_dataset_info_byte_identical(dataset_dir, tmp_path):
    info = dataset_dir / "dataset_info.json"
    before = info.read_bytes()
    listing = sorted(os.listdir(dataset_dir))
    bad = [
        (write_json(tmp_path / "bad.json", [{"instruction": "a"}]), {}),
        (write_json(tmp_path / "rank.json", GOOD), {"ranking": True}),
        (tmp_path / "missing.json", {}),
    ]
    for src, kwargs in bad:
        with pytest.raises(UserError):
            add_dataset(dataset_dir, "newname", src, **kwargs)
    with pytest.raises(UserError, match="dataset 'alpaca_demo' already exists; pass --replace to overwrite"):
        add_dataset(dataset_dir, "alpaca_demo", write_json(tmp_path / "ok.json", GOOD))
    assert info.read_bytes() == before
    assert sorted(os.listdir(dataset_dir)) == [n for n in sorted(os.listdir(dataset_dir)) if n in listing or n == ".dataset_info.json.lock"]


def test_interrupted_write_leaves_dataset_info_byte_identical(dataset_dir, tmp_path, monkeypatch):
    info = dataset_dir / "dataset_info.json"
    before = info.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        add_dataset(dataset_dir, "newname", write_json(tmp_path / "ok.json", GOOD))
    assert info.read_bytes() == before
    assert not [n for n in os.listdir(dataset_dir) if n.startswith(".dataset_info-") or n.startswith(".upload-")]


def test_replace_and_remove(tmp_path):
    data = tmp_path / "data"
    add_dataset(data, "d", write_json(tmp_path / "d.json", GOOD))
    write_json(tmp_path / "d.json", GOOD[:1])
    spec = add_dataset(data, "d", tmp_path / "d.json", replace=True)
    assert spec.file_name == "d.json" and len(load_records(data, "d")) == 1
    assert remove_dataset(data, "d", delete_file=True) == (data / "d.json").resolve()
    assert not (data / "d.json").exists() and "d" not in load_registry(data)
    with pytest.raises(UserError, match="unknown dataset 'd'"):
        remove_dataset(data, "d")


def test_remove_keeps_a_file_another_dataset_uses(tmp_path):
    data = tmp_path / "data"
    src = write_json(tmp_path / "s.json", GOOD)
    add_dataset(data, "a", src)
    add_dataset(data, "b", src)  # identical content: the copy is reused
    assert load_registry(data)["b"].file_name == "s.json"
    assert remove_dataset(data, "a", delete_file=True) is None
    assert (data / "s.json").exists()


def _add_one(args):
    data, i = args
    src = Path(data).parent / f"src{i}.json"
    add_dataset(data, f"ds{i}", src)
    return i


def _make_sources(tmp_path: Path, n: int) -> Path:
    for i in range(n):
        write_json(tmp_path / f"src{i}.json", [{"instruction": f"q{i}", "output": f"a{i}"}])
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset_info.json").write_text(json.dumps({"keep": {"file_name": "keep.txt"}}))
    return data


def _assert_all_registered(data: Path, n: int) -> None:
    info = json.loads((data / "dataset_info.json").read_text())
    assert set(info) == {"keep"} | {f"ds{i}" for i in range(n)}
    for i in range(n):
        assert load_records(data, f"ds{i}")[0]["messages"][1]["content"] == f"a{i}"


def test_twenty_concurrent_adds_from_threads(tmp_path):
    data = _make_sources(tmp_path, 20)
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            _add_one((data, i))
        except BaseException as err:  # a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _assert_all_registered(data, 20)


def test_twenty_concurrent_adds_from_processes(tmp_path):
    data = _make_sources(tmp_path, 20)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        assert sorted(pool.map(_add_one, [(str(data), i) for i in range(20)], chunksize=1)) == list(range(20))
    _assert_all_registered(data, 20)


def test_detect_shape_and_columns(tmp_path):
    write_json(tmp_path / "qa.json", [{"question": "q", "answer": "a", "context": "c", "system": "s"}])
    assert detect_shape_and_columns(tmp_path / "qa.json") == (
        "sft", ["question", "answer", "context", "system"],
        {"prompt": "question", "response": "answer", "query": "context", "system": "system"}, False, "alpaca")
    write_json(tmp_path / "r.json", [{"instruction": "q", "input": "", "output": ["a", "b"]}])
    shape, _, proposed, ranking, _ = detect_shape_and_columns(tmp_path / "r.json")
    assert (shape, ranking, proposed) == ("rw", True, {"prompt": "instruction", "response": "output", "query": "input"})
    write_json(tmp_path / "sg.json", [{"messages": [{"role": "user", "content": "x"}]}])
    assert detect_shape_and_columns(tmp_path / "sg.json")[2:] == ({"messages": "messages"}, False, "sharegpt")
    (tmp_path / "t.jsonl").write_text('{"text": "a doc"}\n')
    assert detect_shape_and_columns(tmp_path / "t.jsonl")[0:3:2] == ("pt", {"prompt": "text"})
    (tmp_path / "w.txt").write_text("line\n")
    assert detect_shape_and_columns(tmp_path / "w.txt")[0] == "pt"


def test_hub_dataset_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"remote": {"hf_hub_url": "someone/not-cached-dataset-xyz"}}))
    assert get_spec(tmp_path, "remote").source == "hub"
    with pytest.raises(UserError) as err:
        load_records(tmp_path, "remote")
    message = str(err.value)
    assert "huggingface-cli download --repo-type dataset someone/not-cached-dataset-xyz --local-dir data/remote" in message
    assert "\"file_name\": \"remote\"" in message


def test_script_folder_with_loading_script_is_refused_and_plain_folder_loads(tmp_path):
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "legacy.py").write_text("# a datasets loading script")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in GOOD))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"legacy": {"script_url": "legacy"}, "plain": {"script_url": "plain"}}))
    with pytest.raises(UserError, match="datasets 5 no longer runs loading scripts"):
        load_records(tmp_path, "legacy")
    assert len(load_records(tmp_path, "plain")) == 2
