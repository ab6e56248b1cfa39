"""Bad input: every refusal is one line naming what is wrong, and nothing is lost.

The CLI cases run `launch.py train` / `launch.py data` entry points; the UI cases call the real
Gradio handlers of an app built in this process (their warnings are the toasts a user sees).
After each group the registry, saved configs and run folders are compared byte for byte.
Record-level refusals of every format are proven in tests/test_data_validation.py; this file
covers what reaches the user through the trainer and the UI.
"""

from __future__ import annotations

import html
import json
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.reliability.conftest import call_handler, one_line, snapshot
from tests.test_webui_command import _defaults
from webui.tabs.datasets import handlers as datasets
from webui.tabs.train import handlers as train

GOOD = {"instruction": "Say hi.", "input": "", "output": "Hi!"}


# ---------------------------------------------------------------------------- CLI: the trainer


@pytest.fixture
def train_main(monkeypatch, capsys):
    """`launch.py train ARGV` in this process: (exit code, stderr). console.log capture stays off."""
    from core.train import run as train_run

    monkeypatch.setenv("TUNEFORGE_CONSOLE_CAPTURED", "1")  # no fd redirection inside pytest
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def call(argv: list[str]) -> tuple[int, str]:
        capsys.readouterr()
        # main() may mark bitsandbytes absent for the rest of its process (a run that does not
        # quantize); this process goes on to other tests, so that mark is undone afterwards.
        monkeypatch.setitem(sys.modules, "bitsandbytes", sys.modules.get("bitsandbytes"))
        if sys.modules["bitsandbytes"] is None:
            del sys.modules["bitsandbytes"]
        code = train_run.main([str(a) for a in argv])
        captured = capsys.readouterr()
        for s, h in saved.items():
            signal.signal(s, h)
        return code, captured.out + captured.err

    return call


def _refused_in_one_line(code: int, output: str) -> str:
    assert code != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "error:" in line]
    assert len(lines) == 1, output
    return lines[0]


def _train(model, data, out, *extra):
    return ["--model_name_or_path", model, "--dataset_dir", data, "--output_dir", out, "--do_train",
            "--template", "llama2", "--max_steps", "1", *extra]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--dataset", "alpaca_demo", "--learning_rat", "1e-4"], "unknown flag '--learning_rat'; did you mean 'learning_rate'"),
        (["--dataset", "alpaca_demo", "--learning_rate", "-1"], "--learning_rate must be greater than 0"),
        (["--dataset", "alpaca_demo", "--learning_rate", "0"], "--learning_rate must be greater than 0"),
        (["--dataset", "alpaca_demo", "--learning_rate", "fast"], "invalid float value: 'fast'"),
        (["--dataset", "alpaca_demo", "--num_train_epochs", "0"], "--num_train_epochs must be greater than 0"),
        (["--dataset", "alpaca_demo", "--per_device_train_batch_size", "-2"], "--per_device_train_batch_size must be greater than 0"),
        (["--dataset", "alpaca_demo", "--cutoff_len", "0"], "--cutoff_len must be greater than 0"),
        (["--dataset", "alpaca_demo", "--lora_rank", "lots"], "invalid int value: 'lots'"),
        (["--dataset", "alpaca_demo", "--template", "llama9"], "invalid choice: 'llama9'"),
        (["--dataset", "alpaca_dem"], "unknown dataset 'alpaca_dem'"),
        (["--dataset", "comparison_demo"], "'comparison_demo' is a ranking"),
    ],
)
def test_cli_refuses_bad_flags_in_one_line_before_writing_anything(train_main, demo_model, dataset_dir, tmp_path, extra, expected):
    before = snapshot(dataset_dir)
    out = tmp_path / "out"
    line = _refused_in_one_line(*train_main(_train(demo_model, dataset_dir, out, *extra)))
    assert expected in line, line
    assert not out.exists(), "a refused run writes nothing"
    assert snapshot(dataset_dir) == before


def test_cli_refuses_a_missing_model_folder_and_bad_config_files(train_main, demo_model, dataset_dir, tmp_path):
    out = tmp_path / "out"
    line = _refused_in_one_line(*train_main(_train(tmp_path / "no_model", dataset_dir, out, "--dataset", "alpaca_demo")))
    assert "model path" in line and "does not exist" in line
    cases = {
        "broken.yaml": ("model_name_or_path: [unclosed\n  - : :", "is not valid YAML/JSON"),
        "list.yaml": ("- a\n- b\n", "must hold key: value pairs"),
        "typo.yaml": (f"model_name_or_path: {demo_model}\nlora_rnak: 8\n", "unknown key 'lora_rnak'"),
        "bad.json": ("{\"model_name_or_path\": ", "is not valid YAML/JSON"),
        "latin1.yaml": ("system: caf\xe9\n".encode("latin-1"), "is not valid YAML/JSON"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        before = path.read_bytes()
        line = _refused_in_one_line(*train_main([path, "--output_dir", out]))
        assert expected in line, (name, line)
        assert path.read_bytes() == before
    assert not out.exists()


def _register_by_hand(data: Path, name: str, file_name: str, content: bytes | None, entry: dict | None = None) -> None:
    if content is not None:
        (data / file_name).write_bytes(content)
    info = json.loads((data / "dataset_info.json").read_text())
    info[name] = entry or {"file_name": file_name}
    (data / "dataset_info.json").write_text(json.dumps(info))


@pytest.mark.slow
def test_cli_run_on_a_broken_dataset_file_fails_in_one_line(train_main, demo_model, dataset_dir, tmp_path):
    """Files edited by hand after registration: each format's breakage ends the run in one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"instruction": "a", "output": 1}]), dataset_dir / "types.parquet")
    (tmp_path / "outside.json").write_text(json.dumps([GOOD]))
    cases = {
        "empty_json": ("e.json", b"", None, "is empty"),
        "bad_jsonl": ("b.jsonl", json.dumps(GOOD).encode() + b"\n{oops\n", None, "line 2: not valid JSON"),
        "bad_csv": ("c.csv", b'instruction,output\n"unclosed,x\n', None, "c.csv"),
        "latin1_txt": ("t.txt", "caf\xe9 au lait\n".encode("latin-1"), None, "is not UTF-8"),
        "junk_parquet": ("j.parquet", b"PAR1 not really", None, "not a readable parquet file"),
        "types_parquet": ("types.parquet", None, None, "'output' (response) must be a string, got a int"),
        "history": ("h.json", json.dumps([{**GOOD, "history": [["only one"]]}]).encode(),
                    {"file_name": "h.json", "columns": {"history": "history"}}, "turn 1 must be a pair of strings"),
        "outside": ("o.json", None, {"file_name": "../outside.json"}, "without '..'"),
    }
    for name, (file_name, content, entry, _) in cases.items():
        _register_by_hand(dataset_dir, name, file_name, content, entry)
    for name, (_, _, _, expected) in cases.items():
        out = tmp_path / f"run-{name}"
        stage = ["--stage", "pt"] if name.endswith("_txt") else []
        line = _refused_in_one_line(*train_main(_train(demo_model, dataset_dir, out, "--dataset", name, *stage)))
        assert expected in line, (name, line)
        status = json.loads((out / "status.json").read_text())
        assert status["state"] == "failed" and expected in status["error"], status


def test_data_cli_refusals_are_one_line_and_leave_the_registry(dataset_dir, tmp_path):
    before = snapshot(dataset_dir)
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "latin1.json").write_bytes(json.dumps([{"instruction": "caf\xe9", "output": "x"}], ensure_ascii=False).encode("latin-1"))
    (tmp_path / "rank.json").write_text(json.dumps([{"instruction": "q", "output": ["same", "same"]}]))
    cases = [
        (["add", "x", tmp_path / "x.xlsx"], "unsupported file type '.xlsx'"),
        (["add", "x", tmp_path / "empty.jsonl"], "is empty"),
        (["add", "x", tmp_path / "latin1.json"], "is not UTF-8"),
        (["add", "x", tmp_path / "rank.json", "--ranking"], "same chosen and rejected"),
        (["add", "../x", tmp_path / "rank.json"], "is not allowed"),
        (["add", "x", "/etc/passwd"], "unsupported file type"),
        (["check", "no_such"], "unknown dataset 'no_such'"),
        (["list", "--frobnicate"], "unrecognized arguments"),
    ]
    for argv, expected in cases:
        result = run_cli(["data", "--dataset_dir", str(dataset_dir), *map(str, argv)])
        assert result.returncode == 2 and "Traceback" not in result.output, result.output
        line = one_line(result.stderr)
        assert line.startswith("error: ") and expected in line, line
    assert snapshot(dataset_dir) == before


# ---------------------------------------------------------------------------- the UI's handlers


def _upload_file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return str(path)


def test_ui_refuses_bad_uploads_in_one_line_and_keeps_the_registry(ui, tmp_path):
    data = ui.ctx.dataset_dir
    before = snapshot(data, ui.ctx.saves_dir)

    bad_files = {
        "empty.json": (b"", "is empty"),
        "blank.txt": (b"\n \n", "is empty"),
        "latin1.jsonl": (json.dumps({"instruction": "caf\xe9", "output": "x"}, ensure_ascii=False).encode("latin-1"), "not UTF-8"),
        "sheet.xlsx": (b"PK\x03\x04junk", "unsupported file type '.xlsx'"),
        "broken.json": (b'[{"instruction": "a", "output": ', "not valid JSON"),
        "junk.parquet": (b"PAR1 garbage", "not a readable parquet file"),
    }
    for name, (content, expected) in bad_files.items():
        path = _upload_file(tmp_path, name, content)
        result, shown = call_handler(datasets.on_upload, path, "en")
        assert result[0] is None, name  # nothing to register
        assert len(shown) == 1 and expected in one_line(shown[0]), (name, shown)

    # Files that parse but whose records are wrong: the Register button lists the first problems,
    # one line each, and registers nothing.
    cols = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
    records_cases = {
        "types.json": ([GOOD, {"instruction": ["a"], "output": "b"}], False, "record 2: field 'instruction' (prompt) must be a string"),
        "history.json": ([{**GOOD, "history": "hi"}], False, "field 'history' must be a list of [user, assistant] pairs"),
        "rank.json": ([{"instruction": "q", "input": "", "output": ["a", "b", "c"]}], True, "got a list of 3"),
    }
    for name, (records, ranking, expected) in records_cases.items():
        path = _upload_file(tmp_path, name, json.dumps(records).encode())
        col_values = [cols.get(k, "none") for k in ("prompt", "query", "response", "history", "system", "messages", "chosen", "rejected")]
        result, shown = call_handler(datasets.register, ui.ctx, path, "new_set", "alpaca", ranking, "en", *col_values)
        message = html.unescape(result[0])
        problems = [line for line in message.splitlines() if line.startswith("- ")]
        assert problems and expected in problems[0], message
        assert "Traceback" not in message
    # Names that cannot be a dataset name, and a file that vanished between upload and Register.
    ok = _upload_file(tmp_path, "ok.json", json.dumps([GOOD]).encode())
    for name, path, expected in (("../evil", ok, "is not allowed"), ("", ok, "is not allowed"),
                                 ("fine", str(tmp_path / "gone.json"), "does not exist"), ("fine", None, "Upload a file first")):
        result, shown = call_handler(datasets.register, ui.ctx, path, name, "alpaca", False, "en", *["none"] * 8)
        assert expected in one_line(html.unescape(result[0]).strip("*")), result[0]
    assert snapshot(data, ui.ctx.saves_dir) == before


def test_ui_refuses_impossible_hyperparameters_before_any_run_folder(ui, tmp_path, demo_model):
    saves = ui.ctx.saves_dir
    before = snapshot(ui.ctx.dataset_dir, saves)
    cases = [
        ({"learning_rate": -1}, "--learning_rate must be greater than 0"),
        ({"learning_rate": 0}, "--learning_rate must be greater than 0"),
        ({"num_train_epochs": 0}, "--num_train_epochs must be greater than 0"),
        ({"per_device_train_batch_size": -8}, "--per_device_train_batch_size must be greater than 0"),
        ({"cutoff_len": 0}, "--cutoff_len must be greater than 0"),
        ({"max_samples": "many"}, "--max_samples must be a number"),
        ({"lora_dropout": 1.5}, "--lora_dropout must be in [0, 1)"),
        ({"template": "llama9"}, "--template: 'llama9' is not one of"),
        ({"dataset": ["alpaca_dem"]}, "unknown dataset 'alpaca_dem'"),
        ({"dataset": ["comparison_demo"]}, "'comparison_demo' is a ranking"),
        ({"model_name_or_path": str(tmp_path / "no_model")}, "does not exist"),
    ]
    for i, (changes, expected) in enumerate(cases):
        out = saves / f"bad-{i}"
        values = _defaults(**{"model_name_or_path": str(demo_model), "output_dir": str(out), **changes})
        result, shown = call_handler(train.start, ui.ctx, "en", None, "", 1, "none", [], 1, "", 29500, *values)
        assert len(shown) == 1 and expected in one_line(shown[0]), (changes, shown)
        assert not out.exists(), f"{changes}: a refused start must not create its run folder"
        assert ui.ctx.runner.active is None
    # Unknown options typed into the extra-arguments box, and extra text that is not YAML.
    for extra, expected in (("lerning_rate: 1", "unknown option 'lerning_rate'"), ("a: [b", "not valid YAML")):
        values = _defaults(model_name_or_path=str(demo_model), output_dir=str(saves / "bad-extra"))
        result, shown = call_handler(train.start, ui.ctx, "en", None, extra, 1, "none", [], 1, "", 29500, *values)
        assert len(shown) == 1 and expected in one_line(shown[0]), shown
    assert snapshot(ui.ctx.dataset_dir, saves) == before


def test_ui_config_files_that_are_not_yaml_are_refused_and_saved_configs_kept(ui, tmp_path):
    configs = ui.ctx.saves_dir / "configs"
    configs.mkdir(parents=True)
    (configs / "good.yaml").write_text("stage: sft\nlearning_rate: 0.01\n")
    (configs / "broken.yaml").write_text("learning_rate: [0.01\n")
    (configs / "typo.yaml").write_text("lerning_rate: 0.01\n")
    (configs / "binary.yaml").write_bytes(b"\xff\xfe\x00junk")
    before = snapshot(ui.ctx.saves_dir, ui.ctx.dataset_dir)
    for name, expected in (("broken.yaml", "is not valid YAML/JSON"), ("typo.yaml", "unknown key 'lerning_rate'"),
                           ("binary.yaml", "is not valid YAML/JSON"), ("missing.yaml", "does not exist")):
        result, shown = call_handler(train.load_config, "en", str(configs / name))
        assert len(shown) == 1 and expected in one_line(shown[0]), (name, shown)
    # Saving outside the saves folder, or with bad values, writes nothing.
    values = _defaults()
    for path in (str(tmp_path / "elsewhere.yaml"), str(configs / "good.txt"), "/etc/tuneforge.yaml", ""):
        _, shown = call_handler(train.save_config, ui.ctx, "en", path, "", 1, "none", [], 1, "", 29500, *values)
        assert len(shown) == 1 and "under" in one_line(shown[0]), shown
    _, shown = call_handler(train.save_config, ui.ctx, "en", str(configs / "good.yaml"), "lerning_rate: 1", 1, "none", [], 1, "", 29500, *values)
    assert len(shown) == 1 and "unknown option" in shown[0]
    assert snapshot(ui.ctx.saves_dir, ui.ctx.dataset_dir) == before


def test_ui_dataset_preview_refusals_are_one_line(ui, tmp_path):
    data = ui.ctx.dataset_dir
    (tmp_path / "outside.json").write_text(json.dumps([GOOD]))
    _register_by_hand(data, "escapes", "x.json", None, {"file_name": "../outside.json"})
    before = snapshot(data)
    cases = [
        (("no_such", str(ui.ctx.demo_model), "llama2"), "unknown dataset 'no_such'"),
        (("escapes", str(ui.ctx.demo_model), "llama2"), "without '..'"),
        (("alpaca_demo", str(tmp_path / "no_model"), "llama2"), "no_model"),
        (("alpaca_demo", "/definitely/not/a/model", "llama2"), "not/a/model"),
        (("alpaca_demo", str(data), "llama2"), str(data.name)),
    ]
    for (name, model, template), expected in cases:
        result, shown = call_handler(datasets.preview, ui.ctx, name, model, template, 128, False, 2, "en")
        assert len(shown) == 1 and expected in one_line(shown[0]), (name, model, shown)
    assert snapshot(data) == before

