"""Predict's metrics on known strings, against values computed by hand (core/metrics.py)."""

from __future__ import annotations

import math

import pytest

from core.evaluate import format_summary, metrics_table, rows_by_change, score_answers
from core.metrics import bleu4, mean_scores, rouge, sample_scores, words


def test_bleu4_is_the_geometric_mean_of_character_precisions():
    # "abcdf" against "abcde": 1- to 4-gram precisions 4/5, 3/4, 2/3, 1/2, no brevity penalty.
    assert bleu4("abcdf", "abcde") == pytest.approx(100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25, abs=1e-4)
    # A shorter answer is penalised: exp(1 - 7/4) for 4 characters against 7, every n-gram matching.
    assert bleu4("我爱北京", "我爱北京天安门") == pytest.approx(100 * math.exp(1 - 7 / 4), abs=1e-4)


def test_bleu4_smooths_orders_without_matches_with_nist_method3():
    # "abxy" against "abcd": 2/4 unigrams, 1/3 bigrams, then no 3- or 4-gram match, which method3
    # counts as 1/(2^1 x 2) and 1/(2^2 x 1).
    assert bleu4("abxy", "abcd") == pytest.approx(100 * (2 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25, abs=1e-4)
    assert bleu4("", "abcd") == 0.0


def test_rouge_on_english_words():
    scores = rouge("a b c", "a b d")
    assert scores["rouge-1"] == pytest.approx(100 * 2 / 3, abs=1e-3)  # 2 of 3 words each way
    assert scores["rouge-2"] == pytest.approx(50.0, abs=1e-3)  # "a b" of {"a b", "b c"} and {"a b", "b d"}
    assert scores["rouge-l"] == pytest.approx(100 * 2 / 3, abs=1e-3)  # longest common subsequence "a b"


def test_rouge_on_chinese_compares_words_cut_by_jieba():
    assert words("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    scores = rouge("我爱北京", "我爱北京天安门")
    # 3 of 3 answer words in the reference, 3 of its 4 words in the answer: F1 = 2 x 1 x 0.75 / 1.75.
    assert scores["rouge-1"] == pytest.approx(100 * 2 * 0.75 / 1.75, abs=1e-3)
    # Bigrams: the answer's 2 ("我爱", "爱北京") of the reference's 3: F1 = 2 x 1 x 2/3 / (1 + 2/3).
    assert scores["rouge-2"] == pytest.approx(80.0, abs=1e-3)
    # Without segmentation the whole sentence would be one "word" and score 0.
    assert rouge("我爱北京", "我爱北京天安门")["rouge-l"] > 0


def test_exact_match_ignores_surrounding_whitespace_only():
    assert sample_scores(" Paris. ", "Paris.")["exact_match"] == 100.0
    assert sample_scores("paris.", "Paris.")["exact_match"] == 0.0
    perfect = sample_scores("the cat sat on the mat", "the cat sat on the mat")
    assert perfect == {"bleu-4": 100.0, "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0, "exact_match": 100.0}


def test_an_empty_answer_scores_zero():
    assert sample_scores("", "something") == {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0, "exact_match": 0.0}


def test_summary_is_the_mean_and_delta_is_adapter_minus_base():
    labels = ["a b c", "x y z"]
    answers = {"adapter": ["a b c", "x y q"], "base": ["a b d", "x y z"]}
    rows, results = score_answers(["p1", "p2"], labels, answers)
    assert results["predict_exact_match"] == 50.0 and results["base_predict_exact_match"] == 50.0
    assert results["predict_rouge-1"] == pytest.approx((100 + 200 / 3) / 2, abs=1e-3)
    assert results["delta_rouge-l"] == pytest.approx(results["predict_rouge-l"] - results["base_predict_rouge-l"], abs=1e-3)
    assert rows[0]["score_change"] == pytest.approx(100 - 200 / 3, abs=1e-3)
    assert rows[1]["score_change"] == pytest.approx(200 / 3 - 100, abs=1e-3)
    assert [r["prompt"] for r in rows_by_change(rows)] == ["p2", "p1"]  # where the adapter got worse first
    table = metrics_table(results)
    assert table[0][0] == "bleu-4" and len(table) == 5
    assert "delta" in format_summary({**results, "predict_samples": 2, "predict_runtime": 1.0})


def test_without_a_base_pass_there_is_no_delta():
    rows, results = score_answers(["p"], ["a"], {"model": ["a"]})
    assert "base_predict" not in rows[0] and "score_change" not in rows[0]
    assert results["predict_exact_match"] == 100.0 and not any(k.startswith(("base_", "delta_")) for k in results)
    assert mean_scores([]).samples == 0
