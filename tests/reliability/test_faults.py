"""Faults: a killed, aborted, out-of-memory or crashing trainer, a killed registration and a full
disk leave the app serving and the data intact, and say what happened in one line.

Runs are started through the real Train tab handlers (in-process app, `ui` fixture), so they go
through the runner and `accelerate launch` exactly as a click on Start does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core import rundir
from tests.conftest import ROOT
from tests.reliability.conftest import call_handler, one_line, process_tree, read_status, snapshot, wait_for
from tests.test_webui_command import _defaults
from webui.tabs.runs import handlers as runs
from webui.tabs.train import handlers as train
from webui.tabs.train.watch import Watch, tick

GOOD = {"instruction": "Say hi.", "input": "", "output": "Hi!"}


def start_run(ui, demo_model: Path, name: str, nproc: int = 1, **changes) -> Path:
    """Click Start (the real handler) with a small, fast configuration; returns the run folder."""
    out = ui.ctx.saves_dir / name
    settings = {"model_name_or_path": str(demo_model), "output_dir": str(out), "dataset": ["demo_sft"],
                "max_steps": 40, "logging_steps": 1, "save_steps": 1000, "cutoff_len": 64,
                "per_device_train_batch_size": 2, **changes}
    _, shown = call_handler(train.start, ui.ctx, "en", None, "", nproc, "none", [], 1, "", 29500, *_defaults(**settings))
    assert not shown, shown
    assert ui.ctx.runner.active is not None and ui.ctx.runner.active.run_dir == out
    return out


def shown_state(ui, run_dir: Path) -> str:
    """What the Train tab's status line says about the run (one timer tick of a fresh session)."""
    watch, outputs = tick(ui.ctx, Watch.of(run_dir), True, False, "en")
    return outputs["status"]




def logged_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in rundir.read_log_rows(run_dir)]


# ---------------------------------------------------------------------------- killed, aborted, crashed


@pytest.mark.slow
def test_sigkilled_trainer_is_shown_failed_keeps_log_and_checkpoint_and_resume_continues(ui, demo_model):
    run_dir = start_run(ui, demo_model, "killed", save_steps=3, max_steps=24)
    wait_for(lambda: rundir.checkpoints(run_dir) and len(logged_steps(run_dir)) >= 4, 240, "a complete checkpoint")
    trainer = json.loads((run_dir / "launch.json").read_text())["trainer_pid"]
    os.kill(trainer, signal.SIGKILL)
    killed_at = time.time()
    # The UI says failed within a few seconds, and so does the disk for any other reader.
    wait_for(lambda: "failed" in shown_state(ui, run_dir), 5, "the UI to show the run as failed")
    wait_for(lambda: rundir.run_info(run_dir).state == "failed", 5, "run_info to report it failed")
    assert time.time() - killed_at < 6
    info = rundir.run_info(run_dir)
    assert info.error and "\n" not in info.error
    steps = logged_steps(run_dir)
    kept = rundir.checkpoints(run_dir)[-1]
    saved_step = int(kept.name.split("-")[1])
    assert steps[:saved_step] == list(range(1, saved_step + 1)), "the log is kept"
    assert "[step" in (run_dir / "console.log").read_text()
    wait_for(lambda: ui.ctx.runner.active is None, 10, "the runner to let go of the dead run")

    # Resume from the Runs tab continues from that checkpoint to the end.
    _, shown = call_handler(runs.resume, ui.ctx, str(run_dir), "en")
    assert not shown, shown
    wait_for(lambda: read_status(run_dir).get("state") in ("finished", "failed", "aborted") and ui.ctx.runner.active is None,
             300, "the resumed run to end")
    assert read_status(run_dir)["state"] == "finished", (run_dir / "console.log").read_text()[-3000:]
    steps = logged_steps(run_dir)
    assert steps == list(range(1, 25)), steps  # continued after the checkpoint, nothing replayed twice
    argv = json.loads((run_dir / "launch.json").read_text())["argv"]
    assert argv[argv.index("--resume_from_checkpoint") + 1].endswith(kept.name)


@pytest.mark.slow
@pytest.mark.parametrize("hung_rank", [False, True], ids=["healthy", "hung-rank"])
def test_abort_of_a_two_process_run_leaves_no_process_alive_within_5_s(ui, demo_model, hung_rank):
    """torchrun puts each rank in a session of its own; a hung rank (stopped) ignores SIGTERM."""
    run_dir = start_run(ui, demo_model, "ddp", nproc=2, max_steps=400, save_steps=1000)
    wait_for(lambda: len(logged_steps(run_dir)) >= 2, 300, "two logged steps of the 2-rank run")
    launcher = ui.ctx.runner.active.pgid
    processes = process_tree(launcher)
    ranks = [p for p in processes if p != launcher and "train" in " ".join(psutil.Process(p).cmdline())]
    assert len(ranks) >= 2, f"expected the launcher and two ranks, found {processes}"
    if hung_rank:
        os.kill(max(ranks), signal.SIGSTOP)
    t0 = time.time()
    call_handler(train.abort, ui.ctx, "en", None)
    wait_for(lambda: not any(rundir.pid_alive(p) for p in processes), 5, "every process of the run to end", step=0.05)
    elapsed = time.time() - t0
    assert elapsed < 5, elapsed
    wait_for(lambda: ui.ctx.runner.active is None, 5, "the runner to record the end")
    status = read_status(run_dir)
    assert status["state"] == "aborted", status
    print(f"abort: every process gone after {elapsed:.2f} s ({status['error']})")
    # A checkpoint saved on SIGTERM is complete; one cut short by SIGKILL is never offered for Resume.
    last = runs.last_checkpoint(run_dir)
    assert last is None or (last / rundir.CHECKPOINT_DONE).is_file()


AS_LIMIT = 3 << 30  # enough for the trainer on the demo model (~1 GB resident), not for a rank-100000 LoRA
LIMIT_WRAPPER = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
                 "os.execv(sys.argv[2], sys.argv[2:])")


@pytest.mark.slow
def test_out_of_memory_in_the_trainer_ends_the_run_failed_with_the_cause_in_one_line(ui, demo_model):
    """A machine with 3 GB of address space, a LoRA rank that needs ~15 GB: a real allocation fails."""
    from webui import command
    from webui.runner import RunRequest

    run_dir = ui.ctx.saves_dir / "oom"
    values = _defaults(model_name_or_path=str(demo_model), output_dir=str(run_dir), dataset=["demo_sft"], max_steps=2,
                       cutoff_len=64, lora_rank=100000)
    spec = train.launch_spec(ui.ctx, values, "", 1, "none")
    argv = [sys.executable, "-c", LIMIT_WRAPPER, str(AS_LIMIT), *command.build_argv(spec)]
    ui.ctx.runner.submit(RunRequest(run_dir, argv, spec.config))
    wait_for(lambda: ui.ctx.runner.active is None, 300, "the run to end")
    status = read_status(run_dir)
    assert status["state"] == "failed", status
    line = one_line(status["error"])
    assert line.startswith("out of memory (") and "can't allocate memory" in line and "--lora_rank" in line, line
    assert "Traceback" in (run_dir / "console.log").read_text(), "the full traceback stays in console.log"
    assert line in shown_state(ui, run_dir)
    # The app goes on: the next run starts and finishes.
    ok = start_run(ui, demo_model, "after-oom", max_steps=1)
    wait_for(lambda: ui.ctx.runner.active is None, 300, "the next run")
    assert read_status(ok)["state"] == "finished", (ok / "console.log").read_text()[-2000:]


@pytest.mark.slow
def test_a_crash_inside_the_trainer_fails_the_run_in_one_line(ui, demo_model, tmp_path):
    """Weights cut short on disk (a broken download): the trainer crashes while loading them."""
    broken = tmp_path / "models" / "broken"
    shutil.copytree(demo_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    run_dir = start_run(ui, broken, "crash", max_steps=1)
    wait_for(lambda: ui.ctx.runner.active is None, 300, "the run to end")
    status = read_status(run_dir)
    assert status["state"] == "failed", status
    line = one_line(status["error"])
    assert "model" in line.lower() or "safetensor" in line.lower(), line
    assert line in shown_state(ui, run_dir)
    # The UI kept serving: the same handlers answer.
    (command_text, _), shown = call_handler(train.show_command, ui.ctx, "en", "", 1, "none", [], 1, "", 29500, *_defaults())
    assert not shown and "launch.py train" in command_text


# ---------------------------------------------------------------------------- registrations killed midway


KILL_REGISTRATION = """
import sys
from core.data.registry import add_dataset
add_dataset(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def test_a_registration_killed_midway_leaves_the_previous_registry(dataset_dir, tmp_path):
    """SIGKILL a `data add` while it copies the file and while it rewrites dataset_info.json."""
    big = tmp_path / "big.json"
    # ~24 MB in a few records: quick to validate, long enough to copy that a kill lands mid-copy.
    big.write_text(json.dumps([{"instruction": f"q{i}", "output": "x" * (6 << 20)} for i in range(4)]))
    before = (dataset_dir / "dataset_info.json").read_bytes()
    phases = {".upload-": 0, ".dataset_info-": 0}
    for attempt in range(12):
        proc = subprocess.Popen([sys.executable, "-c", KILL_REGISTRATION, str(dataset_dir), f"big{attempt}", str(big)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caught = None
        while proc.poll() is None and caught is None:
            names = os.listdir(dataset_dir)
            caught = next((p for p in phases if any(n.startswith(p) for n in names)), None)
        if caught:
            proc.send_signal(signal.SIGKILL)
            phases[caught] += 1
        proc.wait()
        info_bytes = (dataset_dir / "dataset_info.json").read_bytes()
        info = json.loads(info_bytes)  # valid JSON, whatever the moment of the kill
        if caught == ".upload-":
            assert info_bytes == before, "killed mid-copy: the registry is byte-identical"
        assert set(json.loads(before)) <= set(info)
        before = info_bytes
        if phases[".upload-"] >= 2:
            break
    assert phases[".upload-"] >= 1, "no kill landed during the copy"
    # The next registration clears what the killed ones left behind and works.
    from core.data.registry import add_dataset, load_registry

    (tmp_path / "small.json").write_text(json.dumps([GOOD]))
    add_dataset(dataset_dir, "after_kill", tmp_path / "small.json")
    assert "after_kill" in load_registry(dataset_dir)
    assert not [n for n in os.listdir(dataset_dir) if n.startswith((".upload-", ".dataset_info-"))]


# ---------------------------------------------------------------------------- the disk fills up


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (we run as root in the sandbox); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_a_registration_keeps_the_registry_and_says_so(small_disk, tmp_path, ui):
    from core.data.registry import add_dataset

    data = small_disk / "data"
    data.mkdir()
    shutil.copy(ROOT / "data" / "alpaca_demo.json", data)
    (data / "dataset_info.json").write_text(json.dumps({"alpaca_demo": {"file_name": "alpaca_demo.json"}}, indent=2))
    before = snapshot(data)
    # 1) the copy does not fit
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"instruction": "q", "output": "x" * (3 << 20)}]))
    with pytest.raises(Exception) as err:
        add_dataset(data, "big", big)
    line = one_line(str(err.value))
    assert type(err.value).__name__ == "UserError" and line.startswith("disk full") and "unchanged" in line, line
    assert snapshot(data) == before
    # 2) the copy fits exactly, the new dataset_info.json does not
    free = os.statvfs(data).f_bavail * os.statvfs(data).f_frsize
    record = json.dumps([{"instruction": "q", "output": ""}])
    exact = tmp_path / "exact.json"
    exact.write_text(record.replace('"output": ""', '"output": "' + "y" * (free - len(record)) + '"'))
    assert exact.stat().st_size == free
    with pytest.raises(Exception) as err:
        add_dataset(data, "exact", exact)
    assert one_line(str(err.value)).startswith("disk full") and "dataset_info.json" in str(err.value)
    assert snapshot(data) == before, "the copied file is removed again, the registry untouched"
    # 3) the same through the UI's Register button: one line, nothing written.
    ui.ctx.dataset_dir = data
    from webui.tabs.datasets import handlers as datasets

    result, _ = call_handler(datasets.register, ui.ctx, str(big), "big", "alpaca", False, "en",
                             "instruction", "none", "output", *["none"] * 5)
    assert "disk full" in one_line(result[0]), result[0]
    assert snapshot(data) == before


@pytest.mark.slow
def test_disk_full_during_a_checkpoint_keeps_the_previous_one_and_says_so(small_disk, demo_model, dataset_dir):
    """The run folder on a 2 MiB disk: checkpoint-2 fits, checkpoint-4 does not."""
    from tests.conftest import run_cli

    out = small_disk / "run"
    result = run_cli(["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir),
                      "--dataset", "demo_sft", "--template", "llama2", "--do_train", "--output_dir", str(out),
                      "--max_steps", "40", "--save_steps", "2", "--logging_steps", "1", "--cutoff_len", "64",
                      "--per_device_train_batch_size", "2", "--lora_target", "q_proj,v_proj"])
    assert result.returncode != 0
    status = read_status(out)
    assert status["state"] == "failed", result.output[-3000:]
    line = one_line(status["error"])
    assert line.startswith("disk full") and "is intact" in line, line
    assert result.stderr.strip().splitlines()[-1] == f"[tuneforge] error: {line}"
    complete = rundir.checkpoints(out)
    assert complete and [p.name for p in rundir.checkpoints(out, complete=False)] == [p.name for p in complete]
    assert complete[-1].name in line
    # The kept checkpoint is whole: the trainer accepts it for a resume on a disk with room.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    last = complete[-1]
    step = int(last.name.split("-")[1])
    again = run_cli(["train", "--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir),
                     "--dataset", "demo_sft", "--template", "llama2", "--do_train", "--output_dir", str(out),
                     "--max_steps", str(step + 1), "--save_steps", "1000", "--logging_steps", "1", "--cutoff_len", "64",
                     "--per_device_train_batch_size", "2", "--lora_target", "q_proj,v_proj",
                     "--resume_from_checkpoint", "last"])
    assert again.returncode == 0, again.output[-3000:]
    assert logged_steps(out)[-1] == step + 1
