"""The strategy booster: boosted trees stored as arrays, mixed with the logistic strategy head."""

from __future__ import annotations

import json
import random

import pytest
from _eval_fixtures import HashEmbedder, strategy_accuracy

pytest.importorskip("sklearn")

FIT = {"embedder": HashEmbedder(), "c_grid": (1.0,), "weight_powers": (1.0,), "holdout": 0, "tasks": ["strategy"]}


def _sklearn_model(n_classes: int):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] * x[:, 2] > 0) * (n_classes - 1 > 1)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7, early_stopping=False, random_state=0)
    return model.fit(x[:400], np.array(list("abc"))[y[:400]]), x[400:]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_stored_trees_predict_what_scikit_learn_predicts(n_classes):
    import numpy as np

    from mesa.eval.boosting import TreeEnsemble, _tree_arrays

    model, x = _sklearn_model(n_classes)
    x[::7, 3] = np.nan  # missing values take the side the tree learned for them
    arrays = _tree_arrays(model) | {"components": np.eye(1), "center": np.zeros(1)}
    trees = TreeEnsemble([str(c) for c in model.classes_], arrays, pca_columns=1)
    assert np.allclose(trees.proba(x), model.predict_proba(x), atol=1e-9)


def _xor_dialogues(n: int, seed: int):
    """The next strategy is Question when (the last one was Question) XOR (the user's message is short).

    No weighted sum of "last was Question" and "the message is short" tells that; a tree does.
    """
    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    rng = random.Random(seed)
    dialogues = []
    for d in range(n):
        utterances, last = [], rng.choice(["Question", "Information"])
        for _ in range(8):
            short = rng.random() < 0.5
            text = "ok" if short else "it has been a very long and hard week at work for me"
            strategy = "Question" if (last == "Question") != short else "Information"
            utterances.append(Utterance(speaker="user", text=text))
            utterances.append(Utterance(speaker="system", text="I see", strategy=strategy))
            last = strategy
        dialogues.append(Dialogue(id=f"{seed}-{d}", utterances=utterances, split="train"))
    return [e for e in dialogues_to_examples(dialogues, corpus="toy", system_emotion=False) if e.turn_index >= 2]


def test_the_booster_learns_what_the_linear_head_cannot_and_survives_the_file(tmp_path):
    import numpy as np

    from mesa.eval.classifier import SupervisedClassifier

    train, test = _xor_dialogues(40, seed=1), _xor_dialogues(15, seed=2)
    head = SupervisedClassifier.train(train, "esconv", strategy_sequence=1.0, **FIT)
    mixed = SupervisedClassifier.train(train, "esconv", strategy_sequence=1.0, strategy_booster=0.5, **FIT)
    assert strategy_accuracy(mixed, test) >= 0.9
    assert strategy_accuracy(mixed, test) > strategy_accuracy(head, test) + 0.2

    path = mixed.save(tmp_path / "clf.npz")
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["header"]))["version"] == 5
    loaded = SupervisedClassifier.load(path, embedder=HashEmbedder())
    assert loaded.booster is not None and loaded.booster_weight == 0.5
    before = [mixed.predict_distribution("strategy", e.text, e.history) for e in test[:20]]
    after = [loaded.predict_distribution("strategy", e.text, e.history) for e in test[:20]]
    assert [list(d) for d in before] == [list(d) for d in after]
    assert np.allclose([list(d.values()) for d in before], [list(d.values()) for d in after], atol=1e-6)


def test_the_offsets_are_chosen_for_the_mixture_and_carried_by_the_head(tmp_path):
    import numpy as np

    from mesa.eval.classifier import SupervisedClassifier

    train = _xor_dialogues(24, seed=3)
    plain = SupervisedClassifier.train(train, "esconv", strategy_sequence=1.0, strategy_booster=0.3, **FIT)
    shifted = SupervisedClassifier.train(
        train, "esconv", strategy_sequence=1.0, strategy_booster=0.3, strategy_offsets=True, **FIT
    )
    offsets = np.array(shifted.info["tasks"]["strategy"]["decision_offsets"])
    difference = shifted.heads["strategy"].intercept - plain.heads["strategy"].intercept
    # the mixture's logits are 0.7 x the head's + 0.3 x the trees': the head carries offsets / 0.7
    assert np.allclose(difference, offsets / 0.7, atol=1e-3)


def _rewrite_header(path, change) -> None:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"]))
    change(header)
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)


def test_a_damaged_booster_is_refused_with_a_clear_error(tmp_path):
    from mesa.errors import ClassifierFileError, ClassifierMismatchError, MesaError
    from mesa.eval.classifier import FORMAT_VERSION, SupervisedClassifier

    model = SupervisedClassifier.train(
        _xor_dialogues(12, seed=4), "esconv", strategy_sequence=1.0, strategy_booster=0.3, **FIT
    )
    weight = model.save(tmp_path / "weight.npz")
    _rewrite_header(weight, lambda h: h["strategy_booster"].update(weight=1.5))
    with pytest.raises(ClassifierFileError, match="weight"):
        SupervisedClassifier.load(weight, embedder=HashEmbedder())
    labels = model.save(tmp_path / "labels.npz")
    _rewrite_header(labels, lambda h: h["strategy_booster"].update(classes=["Information", "Others"]))
    with pytest.raises(ClassifierMismatchError):
        SupervisedClassifier.load(labels, embedder=HashEmbedder())
    newer = model.save(tmp_path / "newer.npz")
    _rewrite_header(newer, lambda h: h.update(version=FORMAT_VERSION + 1))
    with pytest.raises(MesaError, match="newer mesa"):
        SupervisedClassifier.load(newer, embedder=HashEmbedder())


def test_the_mixed_model_reads_only_the_past():
    from mesa.eval.classifier import SupervisedClassifier
    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    model = SupervisedClassifier.train(
        _xor_dialogues(20, seed=5), "esconv", strategy_sequence=1.0, strategy_booster=0.3, **FIT
    )

    def examples(last_strategy: str, last_text: str):
        utterances = []
        for i, strategy in enumerate(["Question", "Information", "Question", last_strategy]):
            utterances.append(Utterance(speaker="user", text="ok" if i % 2 else "a long day at work for me today"))
            utterances.append(Utterance(speaker="system", text=last_text if i == 3 else "I see", strategy=strategy))
        dialogue = Dialogue(id="d", utterances=utterances, split="train")
        return dialogues_to_examples([dialogue], corpus="toy", system_emotion=False)

    a, b = examples("Question", "I see"), examples("Information", "something else entirely")
    read = [[model.predict_distribution("strategy", e.text, e.history) for e in run] for run in (a, b)]
    assert read[0][:3] == read[1][:3]  # the turns before the changed one see the same past


def test_support_agent_uses_the_mixture_on_its_own_strategy_history(make_agent):
    """Live, the earlier strategies are the ones the agent chose; the mixture reads them as in evaluation."""
    from mesa.eval.classifier import SupervisedClassifier
    from mesa.safety import SafetyPolicy
    from mesa.testing import ScriptedModel

    clf = SupervisedClassifier.train(
        _xor_dialogues(40, seed=1), "esconv", strategy_sequence=1.0, strategy_booster=0.5, **FIT
    )
    agent = make_agent(
        model=ScriptedModel(), taxonomy="esconv", classifier=clf, classifier_use="step",
        safety=SafetyPolicy(llm_assessment=False),
    )
    messages = ["it has been a very long and hard week at work for me", "ok", "ok", "it has been a long day", "ok"]
    labels = [agent.respond(text, thread_id="x").strategy for text in messages]
    assert all(label.source == "classifier" for label in labels)
    for previous, text, label in zip(labels, messages[1:], labels[1:], strict=False):
        short = len(text.split()) <= 3
        assert label.label == ("Question" if (previous.label == "Question") != short else "Information")


def test_a_booster_without_the_sequence_block_is_used_too(tmp_path):
    from mesa.eval.classifier import SupervisedClassifier

    model = SupervisedClassifier.train(_xor_dialogues(12, seed=6), "esconv", strategy_booster=0.5, **FIT)
    assert model.sequence is None and model.booster is not None
    loaded = SupervisedClassifier.load(model.save(tmp_path / "m.npz"), embedder=HashEmbedder())
    example = _xor_dialogues(1, seed=7)[-1]
    mixed = loaded.predict_distribution("strategy", example.text, example.history)
    loaded.booster = None
    assert mixed != loaded.predict_distribution("strategy", example.text, example.history)
