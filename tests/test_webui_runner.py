"""The runner owns the runs' processes: abort ends every process of a run, the queue advances
by itself, a run that dies is recorded as failed with its cause, a live run is re-attached."""

from __future__ import annotations

import json
import re
import sys
import time

from core import rundir
from webui.runner import Runner, RunRequest, group_alive

# A stand-in "trainer" with a child process (a second rank), both in the run's process group.
TWO_PROCESSES = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print('CHILDPID=%d' % child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def _wait(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_abort_kills_every_process_of_the_run(tmp_path):
    runner = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        run_dir = tmp_path / "r"
        runner.submit(RunRequest(run_dir, [sys.executable, "-c", TWO_PROCESSES]))
        found = lambda: re.search(r"CHILDPID=(\d+)", (run_dir / "console.log").read_text())  # noqa: E731
        assert _wait(found)
        child = int(found().group(1))
        pgid = runner.active.pgid
        runner.abort(grace_s=5)
        assert _wait(lambda: runner.active is None)
        assert not group_alive(pgid)
        assert not rundir.pid_alive(child)
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "aborted"  # the stand-in never wrote a final state: the runner did
    finally:
        runner.close()


def test_a_queued_run_starts_when_the_active_one_ends(tmp_path):
    runner = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        first, second = tmp_path / "a", tmp_path / "b"
        assert runner.submit(RunRequest(first, [sys.executable, "-c", "import time; time.sleep(1)"])) == "started"
        assert runner.submit(RunRequest(second, [sys.executable, "-c", "print('second ran')"])) == "queued"
        assert [q.run_dir for q in runner.queue()] == [second]
        assert not (second / "status.json").exists()
        assert _wait(lambda: "second ran" in (second / "console.log").read_text() if (second / "console.log").exists() else False)
        assert runner.queue() == []
    finally:
        runner.close()


def test_queue_is_editable(tmp_path):
    runner = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        runner.submit(RunRequest(tmp_path / "a", [sys.executable, "-c", "import time; time.sleep(30)"]))
        b = RunRequest(tmp_path / "b", [sys.executable, "-c", "pass"])
        c = RunRequest(tmp_path / "c", [sys.executable, "-c", "pass"])
        runner.submit(b)
        runner.submit(c)
        runner.move_queued(c.id, -1)
        assert [q.name for q in runner.queue()] == ["c", "b"]
        runner.remove_queued(c.id)
        assert [q.name for q in runner.queue()] == ["b"]
        assert runner.abort(tmp_path / "b") == "dequeued"
        assert runner.queue() == []
        runner.abort(grace_s=2)
    finally:
        runner.close()


def test_a_run_that_dies_is_failed_with_its_last_error_line(tmp_path):
    runner = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        run_dir = tmp_path / "r"
        runner.submit(RunRequest(run_dir, [sys.executable, "-c", "print('loading'); raise ValueError('bad shape 3')"]))
        assert _wait(lambda: runner.active is None)
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "failed" and status["error"] == "ValueError: bad shape 3"
    finally:
        runner.close()


def test_a_live_run_is_reattached_after_an_app_restart(tmp_path):
    first = Runner(tmp_path, tmp_path, poll_s=0.1)
    run_dir = tmp_path / "live"
    first.submit(RunRequest(run_dir, [sys.executable, "-c", "import time; time.sleep(60)"]))
    pgid = first.active.pgid
    first.close()  # the app process "restarts": a new Runner knows nothing but the disk
    second = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        assert second.active is not None and second.active.run_dir == run_dir and second.active.pgid == pgid
        assert second.submit(RunRequest(tmp_path / "next", [sys.executable, "-c", "pass"])) == "queued"
        second.abort(grace_s=5)
        assert _wait(lambda: not group_alive(pgid))
        first._active.proc.wait(timeout=5)  # reap it in this test process (the old app would)
    finally:
        second.close()


def test_an_output_folder_with_a_run_is_not_reused(tmp_path):
    runner = Runner(tmp_path, tmp_path, poll_s=0.1)
    try:
        run_dir = tmp_path / "r"
        run_dir.mkdir()
        rundir.write_status(run_dir, "finished")
        import pytest

        from core.errors import UserError

        with pytest.raises(UserError, match="already holds a run"):
            runner.submit(RunRequest(run_dir, [sys.executable, "-c", "pass"]))
    finally:
        runner.close()
