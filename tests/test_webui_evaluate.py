"""The Evaluate tab's handlers, called by name: where results go, the command it runs (the CLI's
own), the tables it shows and the Runs tab's summary of a run's evaluations, with the newest one's tables."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from core.args import parse_train_args
from core.evaluate import RESULTS_FILE, score_answers, write_results
from core.errors import UserError
from webui.context import AppContext
from webui.tabs.evaluate import handlers


@pytest.fixture
def ctx(tmp_path) -> AppContext:
    saves = tmp_path / "saves"
    saves.mkdir()
    return AppContext(saves, tmp_path / "data", tmp_path / "data" / "models" / "demo", runner=None, demo=None)


def make_run(ctx: AppContext, name: str) -> Path:
    run = ctx.saves_dir / name
    (run / "checkpoint-4").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "stop_reason": "completed 4 of 4 steps"}))
    return run


def test_results_go_into_the_run_folder_or_the_saves_eval_folder(ctx):
    run = make_run(ctx, "r1")
    assert handlers.output_dir_for(ctx, "m", str(run), "demo_sft").parent == run / "eval"
    assert handlers.output_dir_for(ctx, "m", str(run), "demo_sft").name.startswith("demo_sft-")
    from_checkpoint = handlers.output_dir_for(ctx, "m", str(run / "checkpoint-4"), "demo_sft")
    assert from_checkpoint.parent == run / "eval" and "checkpoint-4" in from_checkpoint.name
    alone = handlers.output_dir_for(ctx, "data/models/demo", None, "demo_sft")
    assert alone.parent == ctx.saves_dir / "eval" and alone.name.startswith("demo-demo_sft-")


def test_the_tab_runs_the_command_lines_predict(ctx, tmp_path):
    run = make_run(ctx, "r1")
    argv = handlers.evaluate_argv(ctx, "data/models/demo", str(run), "demo_sft", 6, 20.0, tmp_path / "out")
    assert argv[0] == sys.executable and argv[2:5] == ["train", "--stage", "sft"]
    args = parse_train_args(argv[3:])  # the trainer parses it as it would a typed command
    assert args.training.do_predict and args.finetuning.predict_with_generate
    assert args.data.eval_dataset == "demo_sft" and args.data.max_samples == 6 and args.generating.max_new_tokens == 20
    assert args.model.adapter_name_or_path == str(run) and args.training.output_dir == str(tmp_path / "out")
    with pytest.raises(UserError, match="whole number"):
        handlers.evaluate_argv(ctx, "m", None, "demo_sft", 2.5, 20, tmp_path)


def test_tables_show_base_adapter_delta_and_samples_where_the_adapter_lost_first():
    rows, results = score_answers(["p1", "p2", "p3"], ["a b c", "x y z", "u v"],
                                  {"adapter": ["a b c", "x q", "u v"], "base": ["a", "x y z", "u v"]})
    metrics = handlers.metric_rows(results)
    assert [m[0] for m in metrics] == ["bleu-4", "rouge-1", "rouge-2", "rouge-l", "exact_match"]
    name, base, adapter, delta = metrics[-1]
    assert (base, adapter, delta) == ("66.67", "66.67", "+0.00")  # each got 2 of 3 exactly right
    samples = handlers.sample_rows(rows)
    assert [s[1] for s in samples] == ["p2", "p3", "p1"]  # lost, unchanged, gained
    assert samples[0][3] == "x y z" and samples[0][4] == "x q" and float(samples[0][0]) < 0
    alone_rows, alone = score_answers(["p"], ["a"], {"model": ["a"]})
    assert handlers.metric_rows(alone)[-1] == ["exact_match", "100.00", "", ""]  # the model alone: the base column
    assert handlers.sample_rows(alone_rows)[0][3:5] == ["a", ""]


def test_the_runs_tab_lists_a_runs_saved_evaluations(ctx):
    from webui.tabs.runs import handlers as runs

    run = make_run(ctx, "r1")
    assert [table.visible for table in runs.open_evaluation(ctx, str(run), "en")] == [False, False]  # none yet
    rows, results = score_answers(["p"], ["a b"], {"adapter": ["a b"], "base": ["a"]})
    write_results(run / "eval" / "demo_sft-1", rows, {**results, "eval_dataset": "demo_sft", "predict_samples": 1})
    text = handlers.saved_evaluations(run, "en")
    assert "Evaluations" in text and "demo_sft, 1 samples: ROUGE-L base 66.67 → adapter 100.00 (+33.33)" in text
    assert "评估结果" in handlers.saved_evaluations(run, "zh")
    assert handlers.saved_evaluations(ctx.saves_dir / "nothing", "en") == ""

    # A newer evaluation: opening the run shows its tables again, as the Evaluate tab drew them.
    newer_rows, newer = score_answers(["q1", "q2"], ["x y", "u v"], {"adapter": ["x", "u v"], "base": ["x y", "u v"]})
    newer_dir = run / "eval" / "demo_sft-2"
    write_results(newer_dir, newer_rows, {**newer, "eval_dataset": "demo_sft", "predict_samples": 2})
    os.utime(newer_dir / RESULTS_FILE, (time.time() + 10, time.time() + 10))  # newer than the first, however fast this runs
    metrics, samples = runs.open_evaluation(ctx, str(run), "en")
    assert metrics.visible and samples.visible
    assert metrics.value["headers"] == ["metric", "base", "adapter", "delta"]
    by_metric = {row[0]: row[1:] for row in metrics.value["data"]}
    assert by_metric["exact_match"] == ["100.00", "50.00", "-50.00"]  # the base got both, the adapter one
    assert samples.value["headers"][:5] == ["change (ROUGE-L)", "prompt", "reference", "base answer", "adapter answer"]
    assert [row[1:5] for row in samples.value["data"]] == [["q1", "x y", "x y", "x"], ["q2", "u v", "u v", "u v"]]
    assert runs.open_evaluation(ctx, str(run), "zh")[0].value["headers"][:2] == ["指标", "基础模型"]  # the session's language
    assert [table.visible for table in runs.open_evaluation(ctx, None, "en")] == [False, False]


def test_the_tab_evaluates_a_base_model_alone_into_the_saves_eval_folder(demo_model, dataset_dir, tmp_path):
    from core.evaluate import read_results
    from webui import choices
    from webui.form import NONE
    from webui.paths import display_path

    ctx = AppContext(tmp_path / "saves", dataset_dir, demo_model, runner=None, demo=None)
    ctx.saves_dir.mkdir()
    # The tab's Start with "none" for the adapter: the handler, as the button runs it.
    outputs = list(handlers.evaluate(handlers.EvalJob(), ctx, str(demo_model), NONE, "demo_sft", 2, 4, "en"))
    progress, status, metrics, samples = outputs[-1]
    (folder,) = (ctx.saves_dir / "eval").iterdir()
    assert folder.name.startswith(f"{demo_model.name}-demo_sft-")
    assert status == f"Saved in {display_path(folder)}"
    assert any('data-state="running"' in str(out[0]) for out in outputs[1:-1])  # the bar ran meanwhile

    saved = read_results(folder)
    assert saved.results["adapter_name_or_path"] is None and saved.results["predict_samples"] == 2
    assert len(saved.rows) == 2 and all("base_predict" not in row for row in saved.rows)
    # No run.yaml to take a template from: the tab asked for the one it proposes for the model
    # (the model's own chat template, "auto", would be used otherwise).
    assert saved.results["template"] == choices.template_for_model(str(demo_model)) != "auto"
    # The tables: the model's scores fill the base column; one sample row per answer.
    assert metrics.value["data"] == handlers.metric_rows(saved.results)
    assert all(row[1] != "" and row[2] == "" for row in metrics.value["data"])
    assert len(samples.value["data"]) == 2
