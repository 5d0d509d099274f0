"""The strategy-sequence features read only the past, and the strategy head uses them."""

from __future__ import annotations

import pytest
from _eval_fixtures import write_esconv_jsonl

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
