"""Metrics: label accuracy and P/R/F1 (scikit-learn), BLEU-2 (sacrebleu), ROUGE-L (rouge-score), Distinct-n.

All heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = [
    "NONE_LABEL",
    "bleu2",
    "classification_metrics",
    "distinct_n",
    "generation_metrics",
    "rouge_l",
    "tokenize",
]

#: Stands for a missing prediction (a failed or skipped step); always counts as wrong.
NONE_LABEL = "<none>"

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (for Distinct-n)."""
    return _TOKEN.findall(text.lower())


def classification_metrics(
    y_true: Sequence[str | None],
    y_pred: Sequence[str | None],
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, weighted and macro precision/recall/F1, per-label scores and the confusion matrix.

    Pairs whose gold label is ``None`` are skipped; a ``None`` prediction
    becomes :data:`NONE_LABEL` (wrong, and not averaged over as a class).
    Averages run over the labels that occur in the gold or the predictions
    (scikit-learn's convention, ``zero_division=0``); ``labels`` only fixes the
    order (taxonomy order first, then any others).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    pairs = [(t, p if p is not None else NONE_LABEL) for t, p in zip(y_true, y_pred, strict=True) if t is not None]
    if not pairs:
        return {"n": 0}
    gold = [t for t, _ in pairs]
    pred = [p for _, p in pairs]
    present = set(gold) | set(pred)
    order = [label for label in (labels or []) if label in present]
    order += sorted(present - set(order) - {NONE_LABEL})
    averaged = list(order)  # a missing prediction is an error, not a class to average over
    if NONE_LABEL in present:
        order.append(NONE_LABEL)
    result: dict[str, Any] = {"n": len(pairs), "accuracy": float(accuracy_score(gold, pred))}
    for average in ("weighted", "macro"):
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=averaged, average=average, zero_division=0)
        result[f"{average}_precision"] = float(p)
        result[f"{average}_recall"] = float(r)
        result[f"{average}_f1"] = float(f)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=order, average=None, zero_division=0)
    result["per_label"] = {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(order)
    }
    result["labels"] = order
    with warnings.catch_warnings():  # a one-label matrix is fine here
        warnings.simplefilter("ignore", UserWarning)
        result["confusion_matrix"] = confusion_matrix(gold, pred, labels=order).tolist()
    return result


def bleu2(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU with uni- and bigrams (BLEU-2), 0–100, via sacrebleu (13a tokenizer, brevity penalty)."""
    from sacrebleu.metrics import BLEU

    if not hypotheses:
        return 0.0
    metric = BLEU(max_ngram_order=2)
    return float(metric.corpus_score(list(hypotheses), [list(references)]).score)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure over the pairs, 0–100, via rouge-score (stemming on)."""
    from rouge_score import rouge_scorer

    if not hypotheses:
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    total = sum(scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references, strict=True))
    return 100.0 * total / len(hypotheses)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: distinct n-grams / all n-grams over all texts (corpus level), 0–1."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = tokenize(text)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def generation_metrics(hypotheses: Sequence[str | None], references: Sequence[str]) -> dict[str, Any]:
    """BLEU-2, ROUGE-L, Distinct-1/2 of the replies (a missing reply counts as empty)."""
    hyps = [h or "" for h in hypotheses]
    refs = list(references)
    return {
        "n": len(hyps),
        "bleu2": bleu2(hyps, refs),
        "rouge_l": rouge_l(hyps, refs),
        "distinct1": distinct_n(hyps, 1),
        "distinct2": distinct_n(hyps, 2),
    }
