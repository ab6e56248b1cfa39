"""core/atomic.py:write_atomic: a reader sees the old file or the new one whole, never a mix; a
write that fails midway leaves the old file as it was and no temp file behind."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.atomic import write_atomic
from tests.conftest import ROOT

CHUNK = 64 * 1024  # shutil.copyfileobj's read size on Linux: a source is copied in pieces this big
START_BOUND_S = 120  # a bare `python -c` start: well under a second when idle, far more on a loaded machine


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "status.json"
    write_atomic(path, "x" * 10_000)
    with open(path, "rb") as reader:  # a reader that opened the old file before the write
        write_atomic(path, b"short")
        assert reader.read() == b"x" * 10_000  # keeps the old file whole: it was renamed over, not rewritten
    assert path.read_bytes() == b"short"  # no tail of the longer old content
    write_atomic(path, io.BytesIO(b"\x00\xff" * CHUNK))  # an open binary file, copied in pieces
    assert path.read_bytes() == b"\x00\xff" * CHUNK
    write_atomic(path, "名字\n")
    assert path.read_text(encoding="utf-8") == "名字\n"
    assert os.listdir(tmp_path) == ["status.json"]


class FailsAfterOneChunk(io.RawIOBase):
    """A source whose read fails after its first chunk (a failing disk or network mount); it notes
    the folder's files at that moment, to show the failure came after part of the new file was written."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sent = False
        self.seen_at_failure: dict[str, int] = {}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.sent:
            self.sent = True
            buffer[:CHUNK] = b"n" * CHUNK
            return CHUNK
        self.seen_at_failure = {p.name: p.stat().st_size for p in self.folder.iterdir()}
        raise OSError("read error on the source")


def test_a_write_failing_midway_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "dataset_info.json"
    path.write_text('{"old": true}', encoding="utf-8")
    source = FailsAfterOneChunk(tmp_path)
    with pytest.raises(OSError, match="read error on the source"):
        write_atomic(path, io.BufferedReader(source, CHUNK))
    temps = {name: size for name, size in source.seen_at_failure.items() if name != path.name}
    assert list(temps.values()) == [CHUNK], source.seen_at_failure  # half the new file was on disk
    assert path.read_text(encoding="utf-8") == '{"old": true}'
    assert os.listdir(tmp_path) == [path.name]


def test_content_that_cannot_be_encoded_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "b: \udc80\n")  # a lone surrogate has no UTF-8 form
    assert path.read_text(encoding="utf-8") == "a: 1\n"
    assert os.listdir(tmp_path) == [path.name]


def test_a_killed_writer_leaves_the_old_file_and_only_a_temp_file_named_by_its_prefix(tmp_path):
    """A writer killed mid-copy cannot clean up; its temp file carries the prefix its caller chose,
    so the folder's owner can clear it, and the file itself is still the old one."""
    path = tmp_path / "launch.json"
    path.write_text("old", encoding="utf-8")
    script = ("import sys; from core.atomic import write_atomic; "
              "write_atomic(sys.argv[1], sys.stdin.buffer, temp_prefix='.tuneforge-tmp-')")
    writer = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT, stdin=subprocess.PIPE)
    try:
        writer.stdin.write(b"n" * CHUNK)  # one chunk; the writer then waits for more that never comes
        writer.stdin.flush()
        deadline = time.time() + START_BOUND_S
        while time.time() < deadline and not any(p.stat().st_size == CHUNK for p in tmp_path.iterdir() if p != path):
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.stdin.close()
    left = [p for p in tmp_path.iterdir() if p != path]
    assert len(left) == 1 and left[0].name.startswith(".tuneforge-tmp-"), left
    assert left[0].stat().st_size == CHUNK, f"the writer had not copied its chunk after {START_BOUND_S} s"
    assert path.read_text(encoding="utf-8") == "old"
