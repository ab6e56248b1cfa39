"""Similarity of a generated answer to its reference: BLEU-4, ROUGE-1/2/L and exact match.

The same definitions as LLaMA-Factory's predict step, so scores carry over between the tools:

- BLEU-4: nltk's sentence_bleu over characters, smoothing method3 (NIST geometric: an n-gram order
  with no match counts as 1 / (2^k x its n-gram count) for the k-th such order), so a short answer
  with no 4-gram match is not scored 0.
- ROUGE-1/2/L: F1 from rouge-chinese over words; text is cut into words by jieba, which splits
  Chinese into words and English at spaces and punctuation, so Chinese scores compare words, not
  whole sentences without spaces. rouge-chinese counts each distinct n-gram once, and ROUGE-L is
  the longest common subsequence of the words.
- exact match: the answer equals the reference after stripping surrounding whitespace.

Every score is in 0-100. The libraries compute offline (the `evaluate` package would fetch its
metric scripts from the hub at run time). An empty answer or reference scores 0 on ROUGE.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Iterable

METRICS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l", "exact_match")
# The one score per sample that the per-sample table sorts by (adapter minus base).
SAMPLE_SCORE = "rouge-l"


def words(text: str) -> list[str]:
    """Words of a text as ROUGE compares them: jieba's cut, spaces dropped."""
    import jieba

    jieba.setLogLevel(logging.WARNING)  # "Building prefix dict ..." on the first cut
    return [w for w in jieba.lcut(text) if w.strip()]


def bleu4(predict: str, label: str) -> float:
    """Sentence BLEU-4 over characters (0-100)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if not predict or not label:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns about orders without matches; smoothing handles them
        return 100.0 * sentence_bleu([list(label)], list(predict), smoothing_function=SmoothingFunction().method3)


def rouge(predict: str, label: str) -> dict[str, float]:
    """ROUGE-1, -2 and -L F1 over jieba words (0-100)."""
    hypothesis, reference = words(predict), words(label)
    if not hypothesis or not reference:
        return {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    from rouge_chinese import Rouge

    scores = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    return {key: 100.0 * value["f"] for key, value in scores.items()}


def sample_scores(predict: str, label: str) -> dict[str, float]:
    """Every metric of one answer against its reference, rounded to 4 decimals."""
    scores = {"bleu-4": bleu4(predict, label), **rouge(predict, label),
              "exact_match": 100.0 if predict.strip() == label.strip() else 0.0}
    return {key: round(scores[key], 4) for key in METRICS}


@dataclass
class Summary:
    """The mean of each metric over a set of answers."""

    scores: dict[str, float]
    samples: int


def mean_scores(per_sample: Iterable[dict[str, float]]) -> Summary:
    rows = list(per_sample)
    if not rows:
        return Summary({key: 0.0 for key in METRICS}, 0)
    return Summary({key: round(sum(r[key] for r in rows) / len(rows), 4) for key in METRICS}, len(rows))
