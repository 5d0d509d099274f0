"""The small model learns from the history a live chat has: predicted user emotions, never gold."""

from __future__ import annotations

from _eval_fixtures import HashEmbedder, synthetic_examples

from mesa.eval import SupervisedClassifier
from mesa.eval.classifier import _Featurizer, _NoBar, _out_of_fold_history
from mesa.taxonomy import MESC


def _tampered():
    """Toy dialogues whose words give the emotion away; one user turn's gold label is made a lie."""
    examples = synthetic_examples(12)
    lie = examples[5]  # its user turn reads "... angry ..." (or another pattern); its gold says fear
    for e in examples:
        if e.dialogue_id == lie.dialogue_id:
            for m in e.history:
                if m.role == "user" and m.text == lie.text:
                    m.emotion = "fear"
    return examples, lie


def test_out_of_fold_history_replaces_gold_user_labels_with_predictions():
    examples, lie = _tampered()
    truth = lie.user_emotion  # gold of the turn itself (only its copies in later histories lie)
    featurize = _Featurizer(MESC, HashEmbedder())
    live = _out_of_fold_history(examples, featurize, folds=3, seed=0, max_iter=300, steps=_NoBar())
    later = next(e for e in live if e.dialogue_id == lie.dialogue_id and e.turn_index > lie.turn_index)
    shown = [m.emotion for m in later.history if m.text == lie.text]
    assert shown and shown[0] != "fear"  # the out-of-fold model read the words, not the (lying) gold label
    assert shown[0] == truth
    # The first example of a dialogue has no earlier predictions: its history carries no user label.
    first = min((e for e in live if e.dialogue_id == lie.dialogue_id), key=lambda e: e.turn_index)
    assert all(m.emotion is None for m in first.history if m.role == "user")
    # System turns keep their gold strategy.
    assert [m.strategy for m in later.history if m.role == "assistant"] == [
        m.strategy for m in next(e for e in examples if e.id == later.id).history if m.role == "assistant"
    ]


def test_training_records_its_history_protocol():
    clf = SupervisedClassifier.train(
        synthetic_examples(9), MESC, embedder=HashEmbedder(), c_grid=(1.0,), weight_powers=(1.0,), holdout=0
    )
    assert clf.info["history"] == "predicted"
    assert clf.predict("user_emotion", "I am so angry at him 7", []) == "anger"
    gold = SupervisedClassifier.train(
        synthetic_examples(9), MESC, embedder=HashEmbedder(), c_grid=(1.0,), weight_powers=(1.0,), history="gold"
    )
    assert gold.info["history"] == "gold"
