"""The Runs tab's handlers and what they read: the run table, Resume's command, the Chat hook."""

from __future__ import annotations

from core import rundir
from webui import command
from webui.context import AppContext
from webui.tabs.runs import handlers as runs


def _fake_run(path, state="finished", launch=None, steps=3):
    path.mkdir(parents=True)
    rundir.write_status(path, state)
    (path / "run.yaml").write_text("stage: sft\nmodel_name_or_path: data/models/demo\ndataset: demo_sft\ntemplate: llama2\n")
    for step in range(1, steps + 1):
        rundir.append_log_row(path, {"step": step, "total_steps": steps, "loss": 3.0 / step})
    rundir.update_launch(path, **(launch or {"start_time": 100.0}))
    return path


def test_resume_launches_the_run_as_it_was_plus_one_flag(tmp_path):
    run = _fake_run(tmp_path / "r", "aborted", {"num_processes": 2, "accelerate_config": None, "start_time": 100.0})
    (run / "run.yaml").write_text(f"stage: sft\nmodel_name_or_path: data/models/demo\noutput_dir: {run}\n")
    for name in ("checkpoint-2", "checkpoint-10"):
        (run / name).mkdir()
        (run / name / rundir.CHECKPOINT_DONE).write_text("{}")  # a complete save
    (run / "checkpoint-12").mkdir()  # a save cut short: never offered for Resume
    ckpt = runs.last_checkpoint(run)
    assert ckpt.name == "checkpoint-10"
    argv = command.build_argv(runs.resume_spec(run, ckpt))
    train = argv.index("train")
    assert argv[train + 1].endswith("r/run.yaml") and argv[train + 2:] == ["--resume_from_checkpoint", str(ckpt)]
    assert "--multi_gpu" in argv and argv[argv.index("--num_processes") + 1] == "2"  # as it was launched
    # Resuming again is built the same way: one checkpoint flag, never a stack of them.
    again = command.build_argv(runs.resume_spec(run, run / "checkpoint-2"))
    assert again.count("--resume_from_checkpoint") == 1 and again[-1].endswith("checkpoint-2")


def test_a_cli_run_whose_run_yaml_names_another_folder_resumes_into_its_own(tmp_path):
    run = _fake_run(tmp_path / "cli", "failed", {"world_size": 1})  # its run.yaml has no output_dir
    argv = command.build_argv(runs.resume_spec(run, run / "checkpoint-1"))
    i = argv.index("train")
    assert argv[i + 1].endswith("cli/run.yaml") and "--resume_from_checkpoint" in argv
    assert argv[argv.index("--output_dir") + 1] == str(run)


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


def _early_stopped_run(saves):
    """A run folder as the trainer leaves it after early stopping: eval rows in its log, the
    reason in status.json (core/train/sft.py's record_stop_reason, then the final state)."""
    run = _fake_run(saves / "es", state="running", launch={"start_time": 100.0, "pid": None}, steps=3)
    for step in (1, 2, 3):
        rundir.append_log_row(run, {"step": step, "total_steps": 20, "eval_loss": 2.5})
    reason = ("early stopping: eval_loss did not improve for 2 evaluations (best 2.5 at step 1), "
              "stopped at step 3 of 20")
    rundir.write_status(run, "running", stop_reason=reason, best_checkpoint="checkpoint-1", best_metric=2.5)
    rundir.write_status(run, "finished")
    return run, reason


def test_the_runs_tab_and_the_train_tab_say_why_a_run_stopped_early(tmp_path):
    from webui.runner import Runner
    from webui.tabs.train.watch import Watch, status_markdown, tick

    run, reason = _early_stopped_run(tmp_path / "saves")
    ctx = AppContext(tmp_path / "saves", tmp_path, tmp_path / "m", runner=Runner(tmp_path / "saves", tmp_path), demo=None)
    details, _, _ = runs.open_run(ctx, str(run), "en")
    assert f"Stopped: {reason}" in details
    assert f"停止原因：{reason}" in runs.open_run(ctx, str(run), "zh")[0]
    # The Train tab watching the run: its tick reads the final state, its status line names the reason.
    watch, outputs = tick(ctx, Watch.of(run), True, False, "en")
    assert watch.state == "finished" and outputs["status"].endswith(f" — {reason}")
    assert status_markdown(watch, "en") == outputs["status"]
    # A run that failed says its error, not a stop reason it never reached.
    rundir.write_status(run, "failed", error="CUDA out of memory")
    assert reason not in runs.open_run(ctx, str(run), "en")[0]
