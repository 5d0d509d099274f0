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


def test_the_live_model_reads_words_not_the_labels_the_history_carries(tmp_path):
    """Live, the history's user labels come from whoever labelled them (an LLM, the model itself):
    the format-2 model ignores them and reads the previous user turn's words through its context model
    (the default format 3 does too, through its filter: tests/test_eval_dialogue_filter.py)."""
    import json

    import numpy as np

    from mesa.state import Message

    clf = SupervisedClassifier.train(
        synthetic_examples(12),
        MESC,
        embedder=HashEmbedder(),
        c_grid=(1.0,),
        weight_powers=(1.0,),
        holdout=0,
        user_context="distribution",
    )
    assert clf.context is not None and clf.info["user_context"] == "distribution"
    text = "I am not sure what I feel 4"

    def history(label):
        return [
            Message(role="user", text="I am so angry at him 7", emotion=label),
            Message(role="assistant", text="Tell me more.", strategy="Open question"),
        ]

    as_anger = clf.predict_distribution("user_emotion", text, history("anger"))
    as_joy = clf.predict_distribution("user_emotion", text, history("joy"))
    assert as_anger == as_joy == clf.predict_distribution("user_emotion", text, history(None))
    # The previous user turn's words do count.
    other = [Message(role="user", text="I got the job, I am happy 3"), history(None)[1]]
    assert clf.predict_distribution("user_emotion", text, other) != as_anger
    # Saved as format 2 with the context model; read back identical.
    path = clf.save(tmp_path / "clf.npz")
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        assert header["version"] == 2 and header["context"] == clf.context.classes
    loaded = SupervisedClassifier.load(path, embedder=HashEmbedder())
    assert loaded.predict_distribution("user_emotion", text, other) == clf.predict_distribution(
        "user_emotion", text, other
    )


def test_labels_mode_keeps_the_format_1_model():
    clf = SupervisedClassifier.train(
        synthetic_examples(9),
        MESC,
        embedder=HashEmbedder(),
        c_grid=(1.0,),
        weight_powers=(1.0,),
        holdout=0,
        user_context="labels",
    )
    assert clf.context is None and clf.info["user_context"] == "labels"


def test_train_command_refuses_an_unknown_user_context(tmp_path):
    import typer
    from typer.testing import CliRunner

    from mesa.eval import cli

    app = typer.Typer()
    app.command("train")(cli.train_command)
    app.command("eval")(cli.eval_command)
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--user-context", "gold-ish"])
    assert result.exit_code != 0 and "user-context" in result.output


def test_train_command_uses_the_corpus_c_grid_chosen_on_held_out_train(monkeypatch, tmp_path):
    from _eval_fixtures import capture_train
    from typer.testing import CliRunner

    from mesa.cli import app

    asked = capture_train(monkeypatch, lambda kwargs: kwargs["c_grid"])
    for corpus in ("mesc", "esconv"):
        CliRunner().invoke(
            app, ["train", "--corpus", corpus, "--data", str(tmp_path), "--out", str(tmp_path / "m.npz")]
        )
    assert asked == {"mesc": [0.0005, 0.002, 0.02], "esconv": [0.0001, 0.02]}
