"""Metric functions against hand-computed values."""

from __future__ import annotations

import math

import pytest

from mesa.eval import NONE_LABEL, bleu2, classification_metrics, distinct_n, generation_metrics, rouge_l


def test_classification_metrics_by_hand():
    gold = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "c"]
    m = classification_metrics(gold, pred, labels=["c", "b", "a"])
    assert m["accuracy"] == pytest.approx(0.75)
    # per label: a P=1 R=.5 F=2/3; b P=.5 R=1 F=2/3; c P=1 R=1 F=1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 1) / 3)
    # weighted by support 2, 1, 1
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 / 3 + 1) / 4)
    assert m["weighted_recall"] == pytest.approx(0.75)
    assert m["labels"] == ["c", "b", "a"]  # taxonomy order kept
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["per_label"]["a"]["support"] == 2


def test_missing_predictions_are_wrong_and_skipped_gold_is_ignored():
    m = classification_metrics(["a", "b", None], ["a", None, "b"])
    assert m["n"] == 2
    assert m["accuracy"] == pytest.approx(0.5)
    # <none> is not averaged over as a class: macro over a (F=1) and b (F=0)
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["labels"] == ["a", "b", NONE_LABEL]
    assert classification_metrics([None], ["x"]) == {"n": 0}


def test_bleu2_by_hand():
    assert bleu2(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    # unigram precision 3/4 (clipped), bigram 1/3, brevity penalty exp(1 - 6/4)
    expected = 100 * math.sqrt(0.75 * (1 / 3)) * math.exp(1 - 6 / 4)
    assert bleu2(["the cat the cat"], ["the cat sat on the mat"]) == pytest.approx(expected, rel=1e-6)
    assert bleu2(["dog"], ["the cat"]) == pytest.approx(0.0)


def test_rouge_l_by_hand():
    # LCS 3; P = 3/3, R = 3/6 -> F = 2/3
    assert rouge_l(["the cat sat"], ["the cat sat on the mat"]) == pytest.approx(100 * 2 / 3)
    # mean over pairs
    assert rouge_l(["a b", "x"], ["a b", "y"]) == pytest.approx(50.0)


def test_distinct_n_by_hand():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert distinct_n(["I'm fine.", "I'm fine."], 1) == pytest.approx(5 / 10)  # i ' m fine . twice
    assert distinct_n([""], 2) == 0.0


def test_generation_metrics_treats_missing_reply_as_empty():
    g = generation_metrics(["hello there", None], ["hello there", "bye"])
    assert g["n"] == 2
    assert g["rouge_l"] == pytest.approx(50.0)
    assert 0 < g["distinct1"] <= 1
