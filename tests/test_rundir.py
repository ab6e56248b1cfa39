"""The incremental log reader the UI's live chart relies on (core.rundir.IncrementalReader)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.rundir import IncrementalReader


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()


def test_partial_line_is_kept_until_its_newline(tmp_path):
    log = tmp_path / "trainer_log.jsonl"
    reader = IncrementalReader(log)
    assert reader.read_rows() == []  # no file yet
    row = json.dumps({"step": 1, "loss": 2.5})
    _append(log, row[:7])
    assert reader.read_rows() == []
    _append(log, row[7:])
    assert reader.read_rows() == []  # complete JSON but no newline yet: the writer may not be done
    _append(log, "\n" + json.dumps({"step": 2, "loss": 2.0}) + "\n")
    assert [r["step"] for r in reader.read_rows()] == [1, 2]
    assert reader.read_rows() == []


def test_reads_only_new_bytes(tmp_path):
    log = tmp_path / "trainer_log.jsonl"
    reader = IncrementalReader(log)
    _append(log, "".join(json.dumps({"step": i}) + "\n" for i in range(3)))
    assert len(reader.read_rows()) == 3
    offset = reader.offset
    assert offset == os.path.getsize(log)
    _append(log, json.dumps({"step": 3}) + "\n")
    assert [r["step"] for r in reader.read_rows()] == [3]
    assert reader.offset > offset


def test_replaced_file_starts_over_and_corrupt_lines_are_skipped(tmp_path):
    log = tmp_path / "trainer_log.jsonl"
    reader = IncrementalReader(log)
    _append(log, "".join(json.dumps({"step": i, "loss": 9.0, "learning_rate": 0.001}) + "\n" for i in range(5)))
    assert len(reader.read_rows()) == 5
    # A rerun into the same folder replaced the log with a shorter one.
    log.write_text("not json\n" + json.dumps({"step": 1, "loss": 1.0}) + "\n", encoding="utf-8")
    rows = reader.read_rows()
    assert rows == [{"step": 1, "loss": 1.0}]


def test_multibyte_text_split_across_reads(tmp_path):
    log = tmp_path / "console.log"
    reader = IncrementalReader(log)
    data = "损失下降\n".encode()
    with open(log, "ab") as fh:
        fh.write(data[:4])
    assert reader.read_lines() == []
    with open(log, "ab") as fh:
        fh.write(data[4:])
    assert reader.read_lines() == ["损失下降"]


def test_a_longer_replacement_is_noticed_and_flagged(tmp_path):
    """A resumed run rewrites its log through a new file that may be longer than the old one."""
    log = tmp_path / "trainer_log.jsonl"
    reader = IncrementalReader(log)
    _append(log, json.dumps({"step": 1}) + "\n")
    assert [r["step"] for r in reader.read_rows()] == [1]
    assert reader.restarted is False
    replacement = tmp_path / "new.jsonl"
    replacement.write_text("".join(json.dumps({"step": i}) + "\n" for i in range(1, 6)))
    replacement.replace(log)
    assert [r["step"] for r in reader.read_rows()] == [1, 2, 3, 4, 5]
    assert reader.restarted is True
    _append(log, json.dumps({"step": 6}) + "\n")
    assert [r["step"] for r in reader.read_rows()] == [6]
    assert reader.restarted is False
