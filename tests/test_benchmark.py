"""Multiple-choice benchmarks (`launch.py eval --task`): the demo set's accuracy per subject and
overall for base and adapter, letter scores as an unpadded forward pass gives them, prompts with
shots, and bad benchmark files refused in one line before any model loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from core import model as core_model
from core.benchmark import (LETTERS, PREDICTIONS_JSONL, RESULTS_JSON, RESULTS_LOG, accuracy_table, encode_questions,
                            format_question, letter_logprobs, load_questions, main)
from core.data.registry import load_records
from tests.conftest import ROOT, assert_one_line_refusal, run_cli


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return load_records(ROOT / "data", "mc_demo")


def test_the_demo_benchmark_has_three_subjects_in_english_and_chinese(questions):
    counts = {s: sum(q["subject"] == s for q in questions) for s in dict.fromkeys(q["subject"] for q in questions)}
    assert counts == {"arithmetic": 14, "geography": 13, "常识": 13}
    assert format_question(questions[0]) == "What is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:"
    assert format_question(questions[-1]).endswith("D. 木星\n答案：")


def test_accuracy_is_counted_per_subject_and_overall(questions):
    always_b = ["B"] * len(questions)
    right = [q["answer"] for q in questions]
    subjects, overall = accuracy_table(questions, {"adapter": right, "base": always_b})
    # Answers that are B: 4 of 14 arithmetic, 4 of 13 geography, 3 of 13 常识 (11 of 40), counted by hand.
    assert {name: row["base"] for name, row in subjects.items()} == {"arithmetic": 28.57, "geography": 30.77, "常识": 23.08}
    assert overall == {"questions": 40, "adapter": 100.0, "base": 27.5, "delta": 72.5}
    assert subjects["geography"]["delta"] == pytest.approx(100 - 30.77, abs=0.01)


def test_prompts_carry_shots_of_the_same_subject_and_letters_are_read_after_the_answer_prefix(demo_model, questions):
    from core.args import ModelArguments
    from core.data.templates import get_template
    from core.model import load_tokenizer

    tokenizer = load_tokenizer(ModelArguments(model_name_or_path=str(demo_model)))
    template = get_template("llama2", tokenizer)
    subset = [q for q in questions if q["subject"] == "arithmetic"][:3]
    prompts, letters = encode_questions(subset, template, tokenizer, n_shot=2, cutoff_len=1024)
    text = tokenizer.decode(prompts[1])
    assert "What is 2 + 3?" in text and "What is 3 x 4?" in text  # the other two questions, solved
    assert "about arithmetic" in text and text.rstrip().endswith("[/INST]")
    # The letter's token is the first token the template writes for the answer "A".
    answer = template.encode_multiturn(tokenizer, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}])[-1][1]
    assert letters[0][0] == answer[0] and len(set(letters[0])) == 4


def test_batched_letter_scores_equal_an_unpadded_forward_pass(demo_model, demo_sft_run, questions):
    import torch

    from core.chat import load_chat_model

    session = load_chat_model(str(demo_model), str(demo_sft_run), template="llama2")
    try:
        prompts, letters = encode_questions(questions[::4], session.template, session.tokenizer, n_shot=1, cutoff_len=1024)
        assert len({len(p) for p in prompts}) > 1  # rows are padded
        batched = letter_logprobs(session.model, prompts, letters, session.tokenizer.pad_token_id, batch_size=8)
        for ids, letter_ids, scores in zip(prompts, letters, batched):
            with torch.inference_mode():
                logits = session.model(input_ids=torch.tensor([ids])).logits[0, -1]
            expected = torch.log_softmax(logits.float(), -1)[letter_ids].tolist()
            assert scores == pytest.approx(expected, abs=1e-3)
    finally:
        session.close()


def test_demo_benchmark_accuracy_for_base_and_adapter(demo_model, demo_sft_run, tmp_path):
    out = tmp_path / "mc"
    result = run_cli(["eval", "--task", "mc_demo", "--model_name_or_path", str(demo_model), "--dataset_dir", str(ROOT / "data"),
                      "--adapter_name_or_path", str(demo_sft_run), "--save_dir", str(out)])
    assert result.returncode == 0, result.output[-3000:]
    results = json.loads((out / RESULTS_JSON).read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / PREDICTIONS_JSONL).read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40 and results["template"] == "llama2"  # the adapter's run trained with llama2
    for row in rows:
        for model in ("adapter", "base"):
            logprobs = row[model]["logprobs"]
            assert row[model]["choice"] == max(LETTERS, key=lambda letter: logprobs[letter])
    # The saved accuracies are the share of right choices, per subject and overall.
    for model in ("adapter", "base"):
        right = [r[model]["choice"] == r["answer"] for r in rows]
        assert results["overall"][model] == round(100 * sum(right) / 40, 2)
        for subject, row in results["subjects"].items():
            mine = [ok for ok, r in zip(right, rows) if r["subject"] == subject]
            assert row[model] == round(100 * sum(mine) / len(mine), 2) and row["questions"] == len(mine)
    assert results["overall"]["delta"] == pytest.approx(results["overall"]["adapter"] - results["overall"]["base"], abs=0.01)
    table = (out / RESULTS_LOG).read_text(encoding="utf-8")
    assert "overall" in table and "常识" in table and table.strip() in result.stdout


# ---------------------------------------------------------------------------- bad input


def write_benchmark(dataset_dir: Path, records: list[dict]) -> None:
    (dataset_dir / "bad_mc.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
    info["bad_mc"] = {"file_name": "bad_mc.json", "formatting": "choice"}
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


def test_benchmark_refusals_are_one_line_before_any_model_loads(demo_model, dataset_dir, monkeypatch, capsys):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded for a refused command")

    monkeypatch.setattr(core_model, "load_base_model", no_loading)
    # The command hides bitsandbytes from this process (sys.modules entry None): undone after the test.
    monkeypatch.setitem(sys.modules, "bitsandbytes", sys.modules.get("bitsandbytes"))
    monkeypatch.setattr(core_model, "load_tokenizer", no_loading)
    good = {"question": "1 + 1?", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "B"}
    write_benchmark(dataset_dir, [good, {**good, "answer": "E"}])
    base = ["--model_name_or_path", str(demo_model), "--dataset_dir", str(dataset_dir)]

    def refusal(argv: list[str]) -> str:
        assert main([*base, *argv]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, errors
        return errors[0]

    line = refusal(["--task", "bad_mc"])
    assert "bad_mc.json" in line and "record 2" in line and "A, B, C, D" in line and '"E"' in line
    assert "not a multiple-choice benchmark" in refusal(["--task", "demo_sft"])
    assert "--max_samples must be greater than 0" in refusal(["--task", "mc_demo", "--max_samples", "0"])
    assert "--task is required" in refusal([])
    assert "unknown dataset 'nope'" in refusal(["--task", "nope"])
    write_benchmark(dataset_dir, [{k: v for k, v in good.items() if k != "C"}])
    assert "choice C" in refusal(["--task", "bad_mc"])
    assert load_questions(str(dataset_dir), "mc_demo", max_samples=3)[0]["answer"] == "B"


def test_a_malformed_answer_letter_is_one_line_from_the_command_line(demo_model, dataset_dir):
    write_benchmark(dataset_dir, [{"question": "1 + 1?", "A": "1", "B": "2", "C": "3", "D": "4", "answer": "AB"}])
    line = assert_one_line_refusal(run_cli(["eval", "--task", "bad_mc", "--model_name_or_path", str(demo_model),
                                            "--dataset_dir", str(dataset_dir)]))
    assert "answer" in line and "A, B, C, D" in line
