"""The Runs tab's helpers: the run table, Resume's command, the Chat hook."""

from __future__ import annotations

import shlex

from core import rundir
from webui.context import AppContext
from webui.tabs import runs


def _fake_run(path, state="finished", launch=None, steps=3):
    path.mkdir(parents=True)
    rundir.write_status(path, state)
    (path / "run.yaml").write_text("stage: sft\nmodel_name_or_path: data/models/demo\ndataset: demo_sft\ntemplate: llama2\n")
    for step in range(1, steps + 1):
        rundir.append_log_row(path, {"step": step, "total_steps": steps, "loss": 3.0 / step})
    rundir.update_launch(path, **(launch or {"start_time": 100.0}))
    return path


def test_resume_relaunches_the_launcher_command_with_the_checkpoint(tmp_path):
    argv = ["/venv/bin/accelerate", "launch", "--num_processes", "1", "launch.py", "train", "--output_dir", "saves/r"]
    run = _fake_run(tmp_path / "r", "aborted", {"command": shlex.join(argv), "argv": argv})
    for name in ("checkpoint-2", "checkpoint-10"):
        (run / name).mkdir()
        (run / name / rundir.CHECKPOINT_DONE).write_text("{}")  # a complete save
    (run / "checkpoint-12").mkdir()  # a save cut short: never offered for Resume
    ckpt = runs.last_checkpoint(run)
    assert ckpt.name == "checkpoint-10"
    resumed = runs.resume_argv(run, ckpt)
    assert resumed[:len(argv)] == argv and resumed[-2] == "--resume_from_checkpoint"
    assert resumed[-1].endswith("checkpoint-10")
    # Resuming again replaces the old checkpoint flag instead of stacking them.
    rundir.update_launch(run, argv=resumed)
    again = runs.resume_argv(run, run / "checkpoint-2")
    assert again.count("--resume_from_checkpoint") == 1 and again[-1].endswith("checkpoint-2")


def test_a_cli_run_without_launcher_argv_resumes_from_its_run_yaml(tmp_path):
    run = _fake_run(tmp_path / "cli", "failed", {"world_size": 1})
    argv = runs.resume_argv(run, run / "checkpoint-1")
    i = argv.index("train")
    assert argv[i + 1].endswith("run.yaml") and "--resume_from_checkpoint" in argv


def test_chat_target_names_base_model_adapter_and_template(tmp_path):
    run = _fake_run(tmp_path / "lora")
    (run / "adapter_config.json").write_text("{}")
    target = runs.chat_target_of(run)
    assert target["model_name_or_path"] == "data/models/demo"
    assert target["adapter_name_or_path"].endswith("lora") and target["template"] == "llama2"


def test_run_table_shows_steps_final_loss_and_state(tmp_path):
    _fake_run(tmp_path / "saves" / "one", steps=4)
    ctx = AppContext(tmp_path / "saves", tmp_path, tmp_path / "m", runner=None, demo=None)
    table = runs.run_table(ctx)
    assert len(table) == 1
    row = dict(zip(runs.COLUMNS, table[0]))
    assert row["state"] == "finished" and row["steps"] == "4/4" and row["final_loss"] == "0.7500"
    assert row["stage"] == "sft" and row["datasets"] == "demo_sft"
