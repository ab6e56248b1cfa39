"""Held-out loss while training: --eval_dataset, early stopping with the reason in status.json, the
best checkpoint kept, --do_train with --do_predict, and the evaluation options refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import rundir
from core.args import check_options
from core.errors import UserError
from core.evaluate import RESULTS_FILE, check_evaluation_options
from tests.conftest import assert_one_line_refusal, run_cli


def train_argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model_name_or_path", str(model), "--dataset_dir", str(data), "--output_dir", str(out),
            "--do_train", "--template", "llama2", "--dataset", "demo_sft", "--cutoff_len", "64",
            "--per_device_train_batch_size", "4", "--seed", "0", *extra]


def test_early_stopping_ends_a_run_whose_eval_loss_stops_improving_and_says_why(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "es"
    # A learning rate too small to move any weight: the eval loss stays exactly the same, so it
    # stops improving after the first evaluation.
    result = run_cli(train_argv(demo_model, dataset_dir, out, "--eval_dataset", "demo_sft", "--max_samples", "8",
                                "--learning_rate", "1e-20", "--max_steps", "20", "--logging_steps", "1",
                                "--eval_strategy", "steps", "--eval_steps", "1", "--save_steps", "1",
                                "--load_best_model_at_end", "--early_stopping_patience", "2"))
    assert result.returncode == 0, result.output[-3000:]
    rows = rundir.read_log_rows(out)
    evals = [r for r in rows if r.get("eval_loss") is not None]
    assert [r["step"] for r in evals] == [1, 2, 3]  # --eval_dataset gives the eval loss at every --eval_steps
    assert max(r["step"] for r in rows) == 3  # stopped at 3 of 20
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished"
    assert status["stop_reason"].startswith("early stopping: eval_loss did not improve for 2 evaluations")
    assert "stopped at step 3 of 20" in status["stop_reason"]
    assert status["best_checkpoint"] == "checkpoint-1"
    assert status["best_metric"] == pytest.approx(evals[0]["eval_loss"])
    assert "early stopping" in result.stdout


def test_a_run_that_ends_normally_records_its_steps_as_the_stop_reason(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "full"
    result = run_cli(train_argv(demo_model, dataset_dir, out, "--max_samples", "8", "--max_steps", "2",
                                "--do_predict", "--predict_with_generate", "--eval_dataset", "demo_sft",
                                "--max_new_tokens", "4"))
    assert result.returncode == 0, result.output[-3000:]
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["stop_reason"] == "completed 2 of 2 steps"
    # --do_train with --do_predict: the run's own adapter answers the eval set, into the run folder.
    results = json.loads((out / RESULTS_FILE).read_text())
    assert results["adapter_name_or_path"] == str(out) and results["predict_samples"] == 8
    assert "delta_rouge-l" in results


OK = {"do_train": True, "stage": "sft", "val_size": 0.1, "eval_strategy": "steps", "eval_steps": 5, "save_steps": 10,
      "logging_steps": 10}


@pytest.mark.parametrize("changes, words", [
    ({"val_size": 0, "eval_dataset": None}, "--eval_strategy steps needs an eval set"),
    ({"eval_dataset": "demo_sft"}, "--val_size and --eval_dataset both make an eval set"),
    ({"val_size": 0, "eval_strategy": "no", "early_stopping_patience": 2}, "--early_stopping_patience watches the eval loss"),
    ({"eval_strategy": "no", "load_best_model_at_end": True}, "add --eval_strategy steps"),
    ({"load_best_model_at_end": True, "save_steps": 7}, "--save_steps 7 must be a multiple of --eval_steps 5"),
    ({"load_best_model_at_end": True, "save_strategy": "epoch"}, "--save_strategy epoch and --eval_strategy steps"),
    ({"do_predict": True}, "--do_predict needs --predict_with_generate"),
    ({"do_predict": True, "predict_with_generate": True}, "--do_predict needs --eval_dataset"),
    ({"do_predict": True, "predict_with_generate": True, "stage": "rm"}, "--do_predict generates answers of --stage sft"),
    ({"early_stopping_patience": 0}, "--early_stopping_patience must be greater than 0"),
])
def test_evaluation_options_that_cannot_work_together_are_refused_by_flag(changes, words):
    values = {**OK, **changes}
    check_evaluation_options(OK)
    with pytest.raises(UserError, match=None) as err:
        check_options(values)  # the web UI's check of its form, and the parser's
    assert words in str(err.value)


def test_evaluation_refusals_from_the_command_line_write_nothing(demo_model, dataset_dir, tmp_path):
    out = tmp_path / "x"
    line = assert_one_line_refusal(run_cli(train_argv(demo_model, dataset_dir, out, "--eval_strategy", "steps")))
    assert "needs an eval set" in line
    line = assert_one_line_refusal(run_cli(train_argv(demo_model, dataset_dir, out, "--eval_dataset", "demo_pref")))
    assert line.startswith("error: --eval_dataset demo_pref:") and "stage sft" in line
    assert not out.exists()
