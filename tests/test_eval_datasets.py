"""Loaders: MESC CSV and JSON, ESConv JSONL and original layout, custom corpora, downloads."""

from __future__ import annotations

import json

import pytest
from _eval_fixtures import (
    ESCONV_DIALOGUES,
    MESC_JSON,
    esconv_original,
    write_esconv_jsonl,
    write_mesc_csv,
)

from mesa.eval import (
    download,
    esconv_split,
    load_corpus,
    load_dialogues,
    load_esconv,
    load_mesc,
    split_clues,
    taxonomy_from_examples,
)
from mesa.eval.datasets import SOURCES


def test_mesc_csv_examples_one_per_system_turn_after_a_user_turn(tmp_path):
    path = write_mesc_csv(tmp_path / "mesc_train_val.csv")
    train = load_mesc(path, "train")
    # Dialogue 0: the opening therapist turn has no user turn before it -> skipped; 3 system turns remain.
    assert [e.turn_index for e in train] == [2, 5, 6]
    first, second, third = train
    assert first.text == "I told you I feel low."
    assert first.user_emotion == "sadness" and first.strategy == "Restatement" and first.system_emotion == "neutral"
    assert first.reply == "You feel low."
    assert [m.text for m in first.history] == ["How are you today?"]
    assert first.history[0].strategy == "Open question" and first.history[0].role == "assistant"
    # Gold user emotion is the LAST user turn's; the other user turn stays in the history with its label.
    assert second.text == "I can't get up in the morning." and second.user_emotion == "depression"
    assert second.history[-1].text == "Nothing matters anymore." and second.history[-1].emotion == "depression"
    # Lower-case "open question" is normalised to the taxonomy's label.
    assert second.strategy == "Open question"
    # Consecutive therapist turns: the earlier one of the run stays at the end of the history.
    assert third.text == "I can't get up in the morning."
    assert third.history[-1].text == "What happens in the morning?" and third.after_user == 1
    assert third.strategy == "Interpretation" and third.system_emotion == "sadness"
    assert first.id != second.id != third.id


def test_mesc_split_selection_and_directory(tmp_path):
    write_mesc_csv(tmp_path / "mesc_train_val.csv")
    val = load_mesc(tmp_path, "valid")  # alias of val; directory lookup
    assert [(e.text, e.strategy) for e in val] == [
        ("He never listens to me!", "Open question"),
        ("That I got the job, finally.", "Approval"),
    ]
    assert all(e.split == "val" for e in val)
    assert val[1].history[0].emotion == "anger"


def test_mesc_json_with_clues(tmp_path):
    path = tmp_path / "val.json"
    path.write_text(json.dumps(MESC_JSON), encoding="utf-8")
    [example] = load_mesc(path, "val")
    assert example.text == "I lost my job."
    assert example.text_clues == ["The speaker seems to be in a state of sadness, looking down."]
    assert example.reply == "Tell me more."
    assert example.situation == "Lost a job."
    assert example.strategy == "Open question" and example.user_emotion == "sadness"


def test_split_clues():
    assert split_clues("Hello there. The speaker's emotion is calm.") == (
        "Hello there.",
        ["The speaker's emotion is calm."],
    )
    assert split_clues("No clue here.") == ("No clue here.", [])


def test_esconv_jsonl_conversation_emotion_and_no_system_emotion(tmp_path):
    write_esconv_jsonl(tmp_path / "valid.jsonl")
    examples = load_esconv(tmp_path, "val")
    assert len(examples) == 3  # the opening "Hi, how can I help?" has no user turn before it
    assert [e.strategy for e in examples] == [
        "Reflection of feelings",
        "Providing Suggestions",
        "Affirmation and Reassurance",
    ]
    assert [e.user_emotion for e in examples] == ["anxiety", "anxiety", "sadness"]
    assert all(e.system_emotion is None for e in examples)
    assert examples[0].text == "I am worried about my job"
    assert [m.text for m in examples[0].history] == ["Hi, how can I help?", "Hi"]
    # The conversation-level emotion is the gold, but never shown in the history (it would give the answer away).
    assert all(m.emotion is None for e in examples for m in e.history)


def test_esconv_original_layout_is_split_like_the_authors(tmp_path):
    many = [dict(ESCONV_DIALOGUES[i % 2], situation=f"case {i}") for i in range(20)]
    (tmp_path / "ESConv.json").write_text(json.dumps(esconv_original(many)), encoding="utf-8")
    valid = load_esconv(tmp_path / "ESConv.json", "valid")
    train = load_esconv(tmp_path, "train")
    valid_situations = {e.situation for e in valid}
    train_situations = {e.situation for e in train}
    assert len(valid_situations) == 3 and len(train_situations) == 14  # 15 % / 70 % of 20
    assert not valid_situations & train_situations
    # The same as shuffling with random.seed(13), as the ESConv authors' script does.
    import random

    order = list(range(20))
    random.Random(13).shuffle(order)
    assert valid_situations == {f"case {i}" for i in order[:3]}
    assert valid[0].text.strip() == valid[0].text  # content normalised


def test_esconv_split_sizes():
    from mesa.eval.datasets import Dialogue

    dialogues = [Dialogue(id=str(i), utterances=[]) for i in range(1300)]
    assert [len(esconv_split(dialogues, s)) for s in ("train", "valid", "test")] == [910, 195, 195]


def test_custom_corpus_and_taxonomy(tmp_path):
    corpus = [
        {
            "dialog": [
                {"text": "I feel stuck", "speaker": "user", "emotion": "frustration"},
                {"text": "What would unstick you?", "speaker": "assistant", "strategy": "Probe", "emotion": "calm"},
                {"text": "A holiday", "speaker": "user", "emotion": "hope"},
                {"text": "Sounds good.", "speaker": "assistant", "strategy": "Affirm", "emotion": "warm"},
            ]
        }
    ]
    (tmp_path / "dev.json").write_text(json.dumps(corpus), encoding="utf-8")
    examples = load_corpus("custom", tmp_path / "dev.json", "dev")
    assert [(e.user_emotion, e.strategy, e.system_emotion) for e in examples] == [
        ("frustration", "Probe", "calm"),
        ("hope", "Affirm", "warm"),
    ]
    tax = taxonomy_from_examples(examples)
    assert set(tax.names("strategy")) == {"Probe", "Affirm"}
    assert set(tax.names("system_emotion")) == {"calm", "warm"}
    with pytest.raises(ValueError):
        load_dialogues(_write(tmp_path / "bad.jsonl", {"dialog": [{"text": "x", "speaker": "robot"}]}))


def _write(path, record):
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def test_download_is_cached_and_uses_the_public_source(tmp_path):
    calls = []

    def fake_fetch(url, destination):
        calls.append(url)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(json.dumps(MESC_JSON), encoding="utf-8")

    examples = load_mesc(None, "val", cache_dir=tmp_path, fetch=fake_fetch)
    assert len(examples) == 1 and calls == [SOURCES["mesc/val.json"]]
    assert "github" in calls[0]
    load_mesc(None, "val", cache_dir=tmp_path, fetch=fake_fetch)
    assert len(calls) == 1  # second load hits the cache
    assert download("mesc/val.json", cache_dir=tmp_path, fetch=fake_fetch) == tmp_path / "mesc" / "val.json"
    with pytest.raises(KeyError):
        download("nope", cache_dir=tmp_path)


def test_import_is_light_and_all_is_explicit():
    import subprocess
    import sys

    code = (
        "import sys, mesa.eval as m; "
        "heavy = [x for x in ('sklearn', 'torch', 'sentence_transformers', 'litellm', 'matplotlib') if x in sys.modules]; "
        "assert not heavy, heavy; "
        "assert all(hasattr(m, name) for name in m.__all__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
