import hashlib

import pytest
from pydantic import ValidationError

from mesa.graphs.nodes import fused_model, step_model
from mesa.state import MediaRef, Message, Turn, append_history
from mesa.taxonomy import ESCONV, MESC, Taxonomy, get_taxonomy, register_taxonomy


def test_mesc_and_esconv_label_sets():
    assert len(MESC.user_emotions) == 7 and len(MESC.strategies) == 10
    assert MESC.names("system_emotion") == MESC.names("user_emotion")
    assert len(ESCONV.strategies) == 8
    assert "Guiding the Pace and Depth of the Conversation" in MESC.names("strategy")
    assert all(label.definition for label in MESC.strategies)


def test_normalize_and_lookup():
    assert MESC.normalize("strategy", "open  question") == "Open question"
    assert MESC.normalize("strategy", "nonsense") is None
    assert get_taxonomy("MESC") is MESC
    with pytest.raises(KeyError, match="unknown taxonomy"):
        get_taxonomy("nope")


def test_custom_taxonomy_and_registry(tmp_path):
    tax = Taxonomy.custom("mine", user_emotions={"calm": "at ease", "upset": "distressed"}, strategies=["Listen", "Advise"])
    assert tax.names("system_emotion") == ["calm", "upset"]
    register_taxonomy(tax)
    assert get_taxonomy("mine") is tax
    with pytest.raises(ValueError, match="already registered"):
        register_taxonomy(tax)
    path = tmp_path / "t.json"
    path.write_text(tax.model_dump_json())
    assert get_taxonomy(str(path)) == tax
    with pytest.raises(ValidationError):
        Taxonomy.custom("dup", user_emotions=["a", "a"], strategies=["x"])


def test_step_model_rejects_labels_outside_the_taxonomy():
    model = step_model(MESC, "strategy")
    assert model(label="Approval").label == "Approval"
    with pytest.raises(ValidationError):
        model(label="Hug")
    # out-of-range confidences are clamped, over-long rationales cut: they never fail a turn
    answer = model(label="Approval", confidence=1e15, rationale="x" * 1000)
    assert answer.confidence == 1.0 and len(answer.rationale) <= 240
    schema = model.model_json_schema()
    assert schema["title"] == "Strategy" and len(schema["properties"]["label"]["enum"]) == 10


def test_fused_model_field_order_is_the_smes_order():
    fields = list(fused_model(ESCONV).model_fields)
    assert fields == ["user_emotion", "strategy", "system_emotion", "response"]
    with pytest.raises(ValidationError):
        fused_model(ESCONV)(user_emotion="joy", strategy="Question", system_emotion="neutral", response="hi")  # joy not in ESConv


def test_media_ref_hashes_local_files(tmp_path):
    f = tmp_path / "a.wav"
    f.write_bytes(b"RIFF1234")
    ref = MediaRef.from_source(f)
    assert ref.sha256 == hashlib.sha256(b"RIFF1234").hexdigest()
    assert MediaRef.from_source(tmp_path / "missing.wav").sha256 is None
    assert MediaRef.from_source("https://example.org/v.mp4").is_url


def test_turn_needs_some_input():
    with pytest.raises(ValueError):
        Turn.from_inputs()
    assert Turn.from_inputs("hi", audio="x.wav").modalities() == ["text", "audio"]


def test_history_reducer_appends_and_never_rewrites():
    a = [Message(role="user", text="one")]
    b = append_history(a, [Message(role="assistant", text="two")])
    c = append_history(b, Message(role="user", text="three"))
    assert [m.text for m in c] == ["one", "two", "three"]
    assert [m.text for m in a] == ["one"]
    assert append_history(None, None) == []
    assert append_history([], [{"role": "user", "text": "dict"}])[0].text == "dict"


def test_chat_messages_stay_bounded():
    from mesa.state import CHAT_MESSAGES_KEPT, append_chat_messages

    kept: list = []
    for i in range(CHAT_MESSAGES_KEPT + 30):
        kept = append_chat_messages(kept, [{"type": "human", "content": str(i)}])
    assert len(kept) == CHAT_MESSAGES_KEPT
    assert kept[0]["content"] == "30" and kept[-1]["content"] == str(CHAT_MESSAGES_KEPT + 29)
