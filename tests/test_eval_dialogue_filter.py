"""The user's emotion across a live dialogue: the small model's filter over the user turns so far."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _eval_fixtures import HashEmbedder

from mesa.eval import SupervisedClassifier
from mesa.eval.classifier import forward_filter
from mesa.state import Message
from mesa.taxonomy import MESC

OPENERS = {
    "anger": "I am so angry at him, furious",
    "depression": "I feel hopeless and empty inside",
    "joy": "I got the job, I am happy today",
}
FILLER = "mm okay I see"  # the same words in every dialogue: only the dialogue's start tells the emotion


def _persistent_dialogues(n: int, start: int = 0, turns: int = 12):
    """Dialogues whose first user turn names the emotion, which then persists through words that do not."""
    from mesa.eval.datasets import Dialogue, Utterance, dialogues_to_examples

    dialogues = []
    for d in range(start, start + n):
        emotion = list(OPENERS)[d % 3]
        utterances = []
        for t in range(turns):
            utterances.append(Utterance(speaker="user", text=OPENERS[emotion] if t == 0 else FILLER, emotion=emotion))
            utterances.append(
                Utterance(speaker="system", text="Go on.", emotion="neutral", strategy="Communication Skills")
            )
        dialogues.append(Dialogue(id=f"d{d}", utterances=utterances, split="train"))
    return dialogues_to_examples(dialogues, corpus="toy")


def _train(user_context: str | None = None):
    """The model trained on the toy dialogues; ``None``: mesa train's default (the filter)."""
    chosen = {"user_context": user_context} if user_context else {}
    return SupervisedClassifier.train(
        _persistent_dialogues(30),
        MESC,
        embedder=HashEmbedder(),
        c_grid=(1.0,),
        weight_powers=(1.0,),
        holdout=0,
        **chosen,
    )


def _late_turn_accuracy(clf) -> float:
    """Accuracy on the late turns of unseen dialogues, where the opener is out of the 12-message window of
    this turn and of the previous user turn (which format 2 reads)."""
    late = [e for e in _persistent_dialogues(6, start=100) if e.turn_index >= 19]
    predicted = [clf.predict("user_emotion", e.text, e.history) for e in late]
    return float(np.mean([p == e.user_emotion for p, e in zip(predicted, late, strict=True)]))


def test_forward_filter_carries_an_early_reading_through_uninformative_turns():
    sticky = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    start = np.full(3, 1 / 3)
    readings = np.array([[0.8, 0.1, 0.1]] + [[1 / 3, 1 / 3, 1 / 3]] * 6)
    belief = forward_filter(readings, sticky, start, tau=1.0)
    assert belief.argmax() == 0 and belief[0] > 0.4
    # Without persistence (every row the same) the early reading is forgotten after one step.
    forgetful = forward_filter(readings, np.full((3, 3), 1 / 3), start, tau=1.0)
    assert np.allclose(forgetful, 1 / 3)
    # A weaker weight (tau) on the readings moves the belief less.
    assert forward_filter(readings[:1], sticky, start, tau=0.5)[0] < forward_filter(readings[:1], sticky, start, 1.0)[0]
    # No turn read yet: the belief is the first-turn shares.
    assert np.allclose(forward_filter(readings[:0], sticky, start, tau=1.0), start)


def test_the_filter_remembers_what_the_dialogue_said_long_ago():
    """The format-2 model (previous user turn only) cannot tell these late turns apart; the filter can."""
    filtered = _train()  # the default
    assert filtered.filter is not None and filtered.info["user_context"] == "filter"
    assert _late_turn_accuracy(filtered) == 1.0
    previous_only = _train("distribution")
    assert previous_only.filter is None and _late_turn_accuracy(previous_only) < 0.7


def test_the_filter_reads_words_never_the_labels_the_history_carries():
    clf = _train()
    history = _persistent_dialogues(1, start=200)[-1].history  # gold labels on every user turn
    relabelled = [m.model_copy(update={"emotion": "fear"}) if m.role == "user" else m for m in history]
    unlabelled = [m.model_copy(update={"emotion": None}) if m.role == "user" else m for m in history]
    expected = clf.predict_distribution("user_emotion", FILLER, unlabelled)
    assert clf.predict_distribution("user_emotion", FILLER, relabelled) == expected
    assert clf.predict_distribution("user_emotion", FILLER, history) == expected


def test_the_filter_reads_only_the_turns_so_far():
    """A turn's distribution depends on the user turns before it, and never on turns not yet in the history."""
    clf = _train()
    history = [
        Message(role="user", text=OPENERS["joy"]),
        Message(role="assistant", text="Go on.", strategy="Communication Skills"),
        Message(role="user", text=FILLER),
        Message(role="assistant", text="Go on.", strategy="Communication Skills"),
    ]
    now = clf.predict_distribution("user_emotion", FILLER, history)
    assert max(now, key=now.__getitem__) == "joy"
    # The filter keeps no state between calls: a later turn predicted first (the user turned angry) does not
    # reach back into the answer for this one.
    later = [*history, Message(role="user", text=OPENERS["anger"]), history[1]]
    after = clf.predict_distribution("user_emotion", FILLER, later)
    assert max(after, key=after.__getitem__) == "anger"
    assert clf.predict_distribution("user_emotion", FILLER, history) == now
    # The earlier turns count: another opener, another belief.
    opened_low = [Message(role="user", text=OPENERS["depression"]), *history[1:]]
    other = clf.predict_distribution("user_emotion", FILLER, opened_low)
    assert max(other, key=other.__getitem__) == "depression"


def test_the_filter_file_round_trips_and_a_foreign_filter_is_refused(tmp_path):
    from mesa.errors import ClassifierMismatchError

    clf = _train()
    path = clf.save(tmp_path / "clf.npz")
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        arrays = {key: data[key] for key in data.files}
    assert header["version"] == 6 and header["filter"]["classes"] == clf.heads["user_emotion"].classes
    assert header["filter"]["tau_prior"] == -0.25 and "filter.prior" in arrays
    history = _persistent_dialogues(1, start=300)[-1].history
    loaded = SupervisedClassifier.load(path, embedder=HashEmbedder())
    assert loaded.predict_distribution("user_emotion", FILLER, history) == clf.predict_distribution(
        "user_emotion", FILLER, history
    )
    header["filter"]["classes"] = ["anger", "joy"]  # not the head's labels
    arrays["header"] = np.array(json.dumps(header))
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(ClassifierMismatchError, match="filter"):
        SupervisedClassifier.load(broken, embedder=HashEmbedder())


def test_the_prior_correction_leans_away_from_the_frequent_emotions_by_the_chosen_power():
    # 14 anger, 13 depression, 13 joy dialogues; half of one depression dialogue left out
    examples = [e for e in _persistent_dialogues(40) if e.dialogue_id != "d1" or e.turn_index < 9]
    clf = SupervisedClassifier.train(
        examples, MESC, embedder=HashEmbedder(), c_grid=(1.0,), weight_powers=(1.0,), holdout=0
    )
    f = clf.filter
    assert f.prior is not None and f.tau_prior == -0.25
    assert f.prior.argmax() == f.classes.index("anger") and f.prior.argmin() == f.classes.index("depression")
    history = _persistent_dialogues(1, start=300)[-1].history
    turn = clf.heads["user_emotion"].proba(clf._z([(FILLER, history)]))
    earlier = [[m.text for m in history if m.role == "user"]]
    corrected = f.posterior(earlier, [FILLER], turn)[0]
    f.tau_prior = 0.0
    plain = f.posterior(earlier, [FILLER], turn)[0]
    ratio = (corrected / plain) / (corrected / plain)[0]  # up to the normalisation, times prior^-0.25
    assert np.allclose(ratio, (f.prior / f.prior[0]) ** -0.25, rtol=1e-6)


def test_a_format_3_file_without_the_prior_still_loads_and_reads_as_before(tmp_path):
    clf = _train()
    path = clf.save(tmp_path / "clf.npz")
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        arrays = {key: data[key] for key in data.files if key != "filter.prior"}
    del header["filter"]["tau_prior"]
    header["version"] = 3
    arrays["header"] = np.array(json.dumps(header))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    loaded = SupervisedClassifier.load(old, embedder=HashEmbedder())
    assert loaded.filter is not None and loaded.filter.prior is None and loaded.filter.tau_prior == 0.0
    history = _persistent_dialogues(1, start=300)[-1].history
    clf.filter.prior = None  # the same model without its correction
    assert np.allclose(
        list(loaded.predict_distribution("user_emotion", FILLER, history).values()),
        list(clf.predict_distribution("user_emotion", FILLER, history).values()),
    )


def test_support_agent_filters_across_a_threads_turns(make_agent):
    """The agent keeps the thread's history in its state; the classifier's filter reads it turn after turn."""
    from mesa.safety import SafetyPolicy
    from mesa.testing import ScriptedModel

    clf = _train()
    # The rule layer only: no per-turn LLM safety call to wait on (this test is about the emotion step).
    safety = SafetyPolicy(llm_assessment=False)
    agent = make_agent(model=ScriptedModel(), classifier=clf, classifier_use="step", safety=safety)
    for emotion in ("anger", "depression"):
        thread = f"t-{emotion}"
        agent.respond(OPENERS[emotion], thread_id=thread)
        for _ in range(8):
            reply = agent.respond(FILLER, thread_id=thread)
        assert reply.user_emotion.label == emotion and reply.user_emotion.source == "classifier"
