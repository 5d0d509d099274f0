"""The strategy-sequence features read only the past, and the strategy head uses them."""

from __future__ import annotations

import json

import pytest
from _eval_fixtures import HashEmbedder, strategy_accuracy, write_esconv_jsonl

from mesa.eval.datasets import load_esconv
from mesa.eval.strategy_features import SequenceBlock, sequence_feature_names, sequence_features
from mesa.state import Message
from mesa.taxonomy import get_taxonomy

pytest.importorskip("numpy")

STRATEGIES = get_taxonomy("esconv").names("strategy")


def _features(example):
    return sequence_features(STRATEGIES, example.text, example.history)


def _named(example) -> dict[str, float]:
    return dict(zip(sequence_feature_names(STRATEGIES), _features(example), strict=True))


def _conversation(strategies: list[str], emotion: str = "anxiety", problem: str = "job crisis") -> dict:
    turns = []
    for i, strategy in enumerate(strategies):
        turns.append({"text": f"user says thing {i}?", "speaker": "usr"})
        turns.append({"text": f"supporter reply {i}", "speaker": "sys", "strategy": strategy})
    return {"emotion_type": emotion, "problem_type": problem, "situation": "s", "survey_score": {}, "dialog": turns}


def _examples(tmp_path, conversation: dict):
    return load_esconv(write_esconv_jsonl(tmp_path / "train.jsonl", [conversation]), "train")


def test_one_name_per_feature():
    history = [Message(role="assistant", text="Hi?", strategy="Question"), Message(role="user", text="hi")]
    assert len(sequence_features(STRATEGIES, "I lost my job", history)) == len(sequence_feature_names(STRATEGIES))


def test_the_turn_being_predicted_and_later_turns_do_not_change_the_features(tmp_path):
    strategies = ["Question", "Restatement or Paraphrasing", "Providing Suggestions", "Information"]
    changed = ["Question", "Restatement or Paraphrasing", "Others", "Self-disclosure"]
    a = _examples(tmp_path, _conversation(strategies))
    b = _examples(tmp_path, _conversation(changed))
    assert [e.strategy for e in a][2] != [e.strategy for e in b][2]
    for left, right in zip(a[:3], b[:3], strict=True):  # turns 0-2 see the same past
        assert _features(left) == _features(right)
    assert _features(a[3]) != _features(b[3])  # turn 3 sees the changed turn 2: the past does count


def test_conversation_labels_the_live_chain_lacks_are_not_read(tmp_path):
    a = _examples(tmp_path, _conversation(["Question", "Information"], "anxiety", "job crisis"))
    b = _examples(tmp_path, _conversation(["Question", "Information"], "anger", "breakup"))
    assert [_features(e) for e in a] == [_features(e) for e in b]


def test_the_strategy_history_is_encoded_as_said(tmp_path):
    examples = _examples(tmp_path, _conversation(["Question", "Information", "Question", "Others"]))
    fourth = _named(examples[3])
    assert fourth["last1=Question"] == 1.0
    assert fourth["last2=Information"] == 1.0
    assert fourth["last3=Question"] == 1.0
    assert fourth["bigram=Information>Question"] == 1.0
    assert sum(v for k, v in fourth.items() if k.startswith("bigram=")) == 1.0
    assert fourth["share=Question"] == pytest.approx(2 / 3)
    assert fourth["user_asks"] == 1.0
    first = _named(examples[0])
    assert first["last1=none"] == first["bigram=none>none"] == first["turns<=0"] == 1.0


def test_a_run_of_supporter_turns_is_seen():
    history = [Message(role="user", text="hello"), Message(role="assistant", text="Hi there", strategy="Question")]
    named = dict(zip(sequence_feature_names(STRATEGIES), sequence_features(STRATEGIES, "hello", history), strict=True))
    assert named["continues_run"] == 1.0
    assert named["last1=Question"] == 1.0


def test_the_block_standardises_with_the_training_figures_and_survives_arrays():
    items = [("hi", []), ("I lost my job?", [Message(role="assistant", text="Hi?", strategy="Question")])]
    block = SequenceBlock.fit(STRATEGIES, items)
    z = block.transform(items)
    assert z.shape == (2, len(sequence_feature_names(STRATEGIES)))
    assert abs(float(z.mean())) < 1e-5
    again = SequenceBlock.from_arrays(STRATEGIES, block.arrays())
    assert (again.transform(items) == z).all()
    assert block.transform([]).shape == (0, z.shape[1])


def _rule_dialogues(n: int, seed: int):
    """Supporter strategies follow a rule no single past strategy shows: the same two in a row -> Question.

    Every text is the same, so only the strategy sequence can tell the next strategy.
    """
    import random

    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    rng = random.Random(seed)
    dialogues = []
    for d in range(n):
        strategies = [rng.choice(["Question", "Information"]) for _ in range(2)]
        while len(strategies) < 10:
            strategies.append("Question" if strategies[-1] == strategies[-2] else "Information")
            if rng.random() < 0.3:  # a random turn now and then, so every pair of strategies occurs
                strategies[-1] = rng.choice(["Question", "Information"])
        utterances = []
        for strategy in strategies:
            utterances.append(Utterance(speaker="user", text="ok"))
            utterances.append(Utterance(speaker="system", text="I see", strategy=strategy))
        dialogues.append(Dialogue(id=f"{seed}-{d}", utterances=utterances, split="train"))
    return [e for e in dialogues_to_examples(dialogues, corpus="toy", system_emotion=False) if e.turn_index >= 5]


def test_the_strategy_head_learns_what_only_the_sequence_shows(tmp_path):
    from mesa.eval.classifier import SupervisedClassifier

    train, test = _rule_dialogues(60, seed=1), _rule_dialogues(30, seed=2)
    fit = {"embedder": HashEmbedder(), "c_grid": (1.0,), "weight_powers": (1.0,), "holdout": 0, "tasks": ["strategy"]}
    without = SupervisedClassifier.train(train, "esconv", **fit)
    with_sequence = SupervisedClassifier.train(train, "esconv", strategy_sequence=1.0, **fit)
    assert strategy_accuracy(with_sequence, test) >= 0.8
    assert strategy_accuracy(with_sequence, test) > strategy_accuracy(without, test) + 0.1

    path = with_sequence.save(tmp_path / "clf.npz")
    loaded = SupervisedClassifier.load(path, embedder=HashEmbedder())
    assert loaded.sequence is not None and loaded.info["strategy_sequence"] == 1.0
    sample = test[:20]
    assert [loaded.predict_distribution("strategy", e.text, e.history) for e in sample] == [
        with_sequence.predict_distribution("strategy", e.text, e.history) for e in sample
    ]


def test_a_model_without_the_block_keeps_its_older_file_format(tmp_path):
    import numpy as np

    from mesa.eval.classifier import SupervisedClassifier

    fit = {"embedder": HashEmbedder(), "c_grid": (1.0,), "weight_powers": (1.0,), "holdout": 0, "tasks": ["strategy"]}
    plain = SupervisedClassifier.train(_rule_dialogues(10, seed=3), "esconv", **fit)
    with np.load(plain.save(tmp_path / "plain.npz"), allow_pickle=False) as data:
        assert json.loads(str(data["header"]))["version"] == 1
    sequenced = SupervisedClassifier.train(_rule_dialogues(10, seed=3), "esconv", strategy_sequence=2.0, **fit)
    with np.load(sequenced.save(tmp_path / "seq.npz"), allow_pickle=False) as data:
        assert json.loads(str(data["header"]))["version"] == 4


def test_macro_f1_is_the_usual_one():
    import numpy as np
    from sklearn.metrics import f1_score

    from mesa.eval.strategy_features import macro_f1

    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 4, 200), rng.integers(0, 3, 200)  # class 3 never predicted
    assert macro_f1(truth, predicted, 4) == pytest.approx(f1_score(truth, predicted, average="macro"))


def test_offsets_bring_an_under_predicted_class_up():
    import numpy as np

    from mesa.eval.strategy_features import decision_offsets, macro_f1

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 600)
    logits = rng.normal(0, 1, (600, 3))
    logits[np.arange(600), truth] += 1.0
    logits[:, 2] -= 1.5  # a model that seldom says class 2
    offsets = decision_offsets(logits, truth)
    assert offsets[2] > offsets[0] and offsets[2] > offsets[1]
    assert macro_f1(truth, (logits + offsets).argmax(1), 3) > macro_f1(truth, logits.argmax(1), 3)


def test_out_of_fold_models_never_see_the_dialogues_they_predict():
    import numpy as np

    from mesa.eval.strategy_features import out_of_fold_offsets

    groups = [f"d{i % 12}" for i in range(120)]
    x = np.array([[i % 12] for i in range(120)], dtype=float)  # the column says the dialogue
    y = np.array(["a", "b", "c"] * 40)
    leaks = []

    class Recorder:
        classes_ = np.array(["a", "b", "c"])

        def __init__(self, seen: set[float]) -> None:
            self.seen = seen

        def predict_proba(self, rows):
            leaks.extend(set(rows[:, 0].tolist()) & self.seen)
            return np.full((len(rows), 3), 1 / 3)

    offsets = out_of_fold_offsets(x, y, groups, ["a", "b", "c"], lambda xs, ys: Recorder(set(xs[:, 0].tolist())))
    assert leaks == [] and offsets.shape == (3,)


def test_train_command_builds_the_esconv_strategy_model_chosen_on_train(monkeypatch, tmp_path):
    from _eval_fixtures import capture_train
    from typer.testing import CliRunner

    from mesa.cli import app
    from mesa.eval import cli

    asked = capture_train(monkeypatch, lambda kwargs: {k: v for k, v in kwargs.items() if k.startswith("strategy_")})
    for corpus, extra in (("mesc", []), ("esconv", []), ("mesc", ["--strategy-model", "sequence"])):
        asked.clear()
        CliRunner().invoke(
            app, ["train", "--corpus", corpus, "--data", str(tmp_path), "--out", str(tmp_path / "m.npz"), *extra]
        )
        expected = {} if corpus == "mesc" and not extra else cli.ESCONV_STRATEGY
        assert asked[corpus] == expected
    assert cli.ESCONV_STRATEGY["strategy_sequence"] > 0 and cli.ESCONV_STRATEGY["strategy_offsets"]
    bad = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--strategy-model", "boosted"])
    assert bad.exit_code != 0


def test_offsets_are_learned_out_of_fold_and_kept_in_the_intercepts(tmp_path):
    import numpy as np
    from _eval_fixtures import synthetic_examples

    from mesa.eval.classifier import SupervisedClassifier

    fit = {"embedder": HashEmbedder(), "c_grid": (1.0,), "weight_powers": (1.0,), "holdout": 0, "tasks": ["strategy"]}
    examples = synthetic_examples(12)
    plain = SupervisedClassifier.train(examples, "mesc", strategy_sequence=1.0, **fit)
    shifted = SupervisedClassifier.train(examples, "mesc", strategy_sequence=1.0, strategy_offsets=True, **fit)
    offsets = shifted.info["tasks"]["strategy"]["decision_offsets"]
    assert len(offsets) == len(shifted.heads["strategy"].classes) == 3
    difference = shifted.heads["strategy"].intercept - plain.heads["strategy"].intercept
    assert np.allclose(difference, offsets, atol=1e-3)
    assert "decision_offsets" not in plain.info["tasks"]["strategy"]


def test_only_the_window_a_live_chain_keeps_is_read():
    from mesa.eval.strategy_features import LIVE_WINDOW

    long = []
    for i in range(LIVE_WINDOW):
        long += [Message(role="user", text=f"u{i}"), Message(role="assistant", text=f"s{i}", strategy="Question")]
    assert len(long) > LIVE_WINDOW
    recent = long[-LIVE_WINDOW:]
    assert sequence_features(STRATEGIES, "ok", long) == sequence_features(STRATEGIES, "ok", recent)
