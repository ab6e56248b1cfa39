"""Predict (`launch.py train --do_predict --predict_with_generate`): answers of the adapter and of
the base from one load of the weights, batched with left padding, scored and saved; bad input is
one line before any model loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from core import model as core_model
from core.args import parse_train_args
from core.evaluate import PREDICTIONS_FILE, RESULTS_FILE, generate_answers, plan_predict, read_results, run_predict
from core.metrics import METRICS, mean_scores, sample_scores
from core.progress import read_progress
from tests.conftest import ROOT, assert_one_line_refusal, run_cli

IDENTITY_ANSWER = "I am TuneForge Assistant, a small model fine-tuned with TuneForge."


def predict_args(model: Path, out: Path, *extra: str, dataset_dir: Path = ROOT / "data") -> list[str]:
    return ["train", "--stage", "sft", "--do_predict", "--predict_with_generate", "--model_name_or_path", str(model),
            "--eval_dataset", "demo_sft", "--dataset_dir", str(dataset_dir), "--template", "llama2",
            "--output_dir", str(out), *extra]


@pytest.fixture(scope="module")
def cli_predict(demo_model, demo_sft_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "pred"
    result = run_cli(predict_args(demo_model, out, "--adapter_name_or_path", str(demo_sft_run),
                                  "--max_samples", "8", "--max_new_tokens", "24"))
    assert result.returncode == 0, result.output[-3000:]
    return out, result


def test_predict_writes_each_answer_and_the_metrics_of_base_and_adapter(cli_predict):
    out, result = cli_predict
    rows = [json.loads(line) for line in (out / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()]
    results = json.loads((out / RESULTS_FILE).read_text(encoding="utf-8"))
    assert len(rows) == 8 and results["predict_samples"] == 8
    for row in rows:
        assert {"prompt", "label", "predict", "base_predict", "scores", "base_scores", "score_change"} <= set(row)
        assert row["prompt"].startswith("[INST]")  # the template's prompt, as the model read it
        # The stored scores are the metrics of the stored strings.
        assert row["scores"] == sample_scores(row["predict"], row["label"])
        assert row["base_scores"] == sample_scores(row["base_predict"], row["label"])
    for key in METRICS:
        assert results[f"predict_{key}"] == mean_scores(r["scores"] for r in rows).scores[key]
        assert results[f"base_predict_{key}"] == mean_scores(r["base_scores"] for r in rows).scores[key]
        assert results[f"delta_{key}"] == pytest.approx(results[f"predict_{key}"] - results[f"base_predict_{key}"], abs=1e-3)
    # The adapter learned the demo answers; the random base did not.
    first = rows[0]
    assert first["label"] == IDENTITY_ANSWER and first["predict"] == IDENTITY_ANSWER
    assert first["base_predict"] != IDENTITY_ANSWER
    assert results["predict_rouge-l"] > results["base_predict_rouge-l"] + 30
    # Progress lines for the web UI's bar, in order, ending with the saved folder; the summary table.
    fractions = [p[0] for p in map(read_progress, result.stdout.splitlines()) if p is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "rouge-l" in result.stdout and "delta" in result.stdout
    assert not (out / "status.json").exists()  # predictions, not a run: the Runs tab does not list it
    assert read_results(out).rows == rows


def test_the_base_pass_answers_as_the_model_without_adapter_from_one_load(demo_model, demo_sft_run, tmp_path, monkeypatch):
    loads = []
    real_load = core_model.load_base_model

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(core_model, "load_base_model", counting_load)
    both = run_predict(plan_predict(parse_train_args(predict_args(
        demo_model, tmp_path / "both", "--adapter_name_or_path", str(demo_sft_run), "--max_samples", "4", "--max_new_tokens", "16")[1:])))
    assert len(loads) == 1  # adapter and base from the same weights in memory
    alone = run_predict(plan_predict(parse_train_args(predict_args(
        demo_model, tmp_path / "alone", "--max_samples", "4", "--max_new_tokens", "16")[1:])))
    assert [r["base_predict"] for r in both.rows] == [r["predict"] for r in alone.rows]
    assert "base_predict_bleu-4" not in alone.results and alone.results["adapter_name_or_path"] is None


def test_batched_generation_with_left_padding_gives_the_answers_of_one_at_a_time(demo_model, demo_sft_run):
    from core.chat import load_chat_model
    from core.data.registry import load_records
    from core.evaluate import encode_prompts

    session = load_chat_model(str(demo_model), str(demo_sft_run), template="llama2")
    try:
        records = load_records(ROOT / "data", "demo_sft")
        # Prompts of different lengths (multi-turn histories among them), so rows are padded.
        records = sorted(records, key=lambda r: len(r["messages"]))[-4:] + records[:4]
        prompts, _, _ = encode_prompts(records, session.template, session.tokenizer, None, 1024)
        assert len({len(p) for p in prompts}) > 2
        stop = session.template.stop_token_ids(session.tokenizer)
        greedy = {"do_sample": False, "max_new_tokens": 16}
        batched = generate_answers(session.model, session.tokenizer, prompts, stop, greedy, batch_size=8)
        single = generate_answers(session.model, session.tokenizer, prompts, stop, greedy, batch_size=1)
        assert batched == single
        assert session.tokenizer.pad_token_id is not None
    finally:
        session.close()


# ---------------------------------------------------------------------------- bad input


def test_predict_refusals_are_one_line_before_any_model_loads(demo_model, dataset_dir, tmp_path, monkeypatch, capsys):
    from core.train.run import run

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded for a refused command")

    monkeypatch.setattr(core_model, "load_base_model", no_loading)
    # The command hides bitsandbytes from this process (sys.modules entry None): undone after the test.
    monkeypatch.setitem(sys.modules, "bitsandbytes", sys.modules.get("bitsandbytes"))
    monkeypatch.setattr(core_model, "load_tokenizer", no_loading)
    (dataset_dir / "empty.json").write_text("[]", encoding="utf-8")
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    info["empty_set"] = {"file_name": "empty.json"}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    out = tmp_path / "out"
    base = predict_args(demo_model, out, dataset_dir=dataset_dir)[1:]

    def refusal(argv: list[str]) -> str:
        assert run(argv) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, errors
        return errors[0]

    assert "stage sft needs instruction data" in refusal([*base, "--eval_dataset", "demo_pref"])
    assert "--predict_with_generate" in refusal([a for a in base if a != "--predict_with_generate"])
    assert "--max_samples must be greater than 0" in refusal([*base, "--max_samples", "0"])
    assert "holds no records" in refusal([*base, "--eval_dataset", "empty_set"])
    no_eval = base[:base.index("--eval_dataset")] + base[base.index("--eval_dataset") + 2:]
    assert "--do_predict needs --eval_dataset" in refusal(no_eval)
    assert "--stage dpo" in refusal([*base, "--stage", "dpo"])
    assert "unknown dataset 'nope'" in refusal([*base, "--eval_dataset", "nope"])
    assert "does not exist" in refusal([*base, "--adapter_name_or_path", str(tmp_path / "missing")])
    assert not out.exists()


def test_predict_refusal_from_the_command_line(demo_model, tmp_path):
    line = assert_one_line_refusal(run_cli([a for a in predict_args(demo_model, tmp_path / "o") if a != "--predict_with_generate"]))
    assert "--do_predict needs --predict_with_generate" in line
