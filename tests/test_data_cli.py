"""`launch.py data ...` (core.data.cli): list, check, add, remove; one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.data.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_a_table(dataset_dir, capsys):
    code, out, _ = run(capsys, "list", "--dataset_dir", str(dataset_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "shape", "records", "file", "sha1"]
    assert ["alpaca_demo", "sft", "30", "alpaca_demo.json", "ok"] in [line.split() for line in lines]
    assert ["comparison_demo", "rw", "30", "comparison_demo.json", "ok"] in [line.split() for line in lines]


def test_add_check_remove_round_trip(dataset_dir, tmp_path, capsys):
    src = tmp_path / "qa.jsonl"
    src.write_text('{"q": "hi", "a": "hello"}\n{"q": "bye", "a": "see you"}\n')
    code, out, err = run(capsys, "--dataset_dir", str(dataset_dir), "add", "qa", str(src), "--columns", "prompt=q,response=a")
    assert code == 0, err
    assert "added dataset 'qa' (sft, 2 records)" in out
    code, out, _ = run(capsys, "check", "qa", "--dataset_dir", str(dataset_dir))
    assert code == 0 and "ok: every record is valid" in out
    code, _, err = run(capsys, "add", "qa", str(src), "--columns", "prompt=q,response=a", "--dataset_dir", str(dataset_dir))
    assert code == 2 and err.strip() == "error: dataset 'qa' already exists; pass --replace to overwrite"
    code, out, _ = run(capsys, "remove", "qa", "--delete-file", "--dataset_dir", str(dataset_dir))
    assert code == 0 and "deleted" in out and not (dataset_dir / "qa.jsonl").exists()


def test_check_reports_every_problem_and_exits_1(dataset_dir, capsys):
    (dataset_dir / "alpaca_demo.json").write_text(json.dumps([{"instruction": "a", "output": ""}, {"instruction": 3, "output": "b"}]))
    code, out, err = run(capsys, "check", "alpaca_demo", "--dataset_dir", str(dataset_dir))
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 2 and "record 1" in problems[0] and "record 2" in problems[1]
    assert "sha1 mismatch" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["check", "nope"], "unknown dataset 'nope'"),
        (["add", "x", "/does/not/exist.json"], "is not a file"),
        (["add", "x", "f.json", "--columns", "prompt"], "must look like key=column"),
        (["frobnicate"], "invalid choice"),
        (["add", "x"], "required"),
        (["add", "x", "f.json", "--formatting", "openai"], "invalid choice"),
    ],
)
def test_errors_are_one_line_exit_2(dataset_dir, capsys, argv, expected):
    code, _, err = run(capsys, *argv, "--dataset_dir", str(dataset_dir)) if argv[0] != "frobnicate" else run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err


def test_module_entry_point_refuses_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"instruction": "a"}]')
    proc = subprocess.run(
        [sys.executable, "-m", "core.data.cli", "--dataset_dir", str(tmp_path / "d"), "add", "x", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().startswith("error: ") and "record 1" in proc.stderr and "'output'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
