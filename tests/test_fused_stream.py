"""The fused answer is streamed without validating a partial object per piece (issue 11, concurrency).

The raw JSON is read as it comes (``mesa.json_stream.JsonFieldReader`` through ``LLM.astream_fields``):
each label is checked when it completes, the reply text is passed on as written (escapes decoded only
once whole, wherever the stream cuts them), and the whole answer is validated once, at the end.
"""

import json

import pytest

import mesa.testing
from mesa.errors import StructuredOutputError
from mesa.graphs.nodes import fused_model
from mesa.json_stream import JsonFieldReader
from mesa.llm import LLM
from mesa.taxonomy import MESC
from mesa.testing import ScriptedModel

ASK = [{"role": "user", "content": "I failed my exam"}]
# quotes, a backslash, a newline, a tab, an accented letter, an emoji (a surrogate pair in ASCII JSON)
TRICKY = 'She said "you\'re done" \\ then\nleft.\tCafé talk 😀 helps.'


def _split_every(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture
def small_chunks(monkeypatch):
    """ScriptedModel streams its answers three characters a piece, so escapes are cut across pieces."""
    monkeypatch.setattr(mesa.testing, "_pieces", lambda text: _split_every(text, 3) or [""])


# -- the reader --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ascii_only", [True, False])
def test_reader_decodes_escapes_cut_at_every_place(ascii_only):
    answer = {"user_emotion": "sadness", "strategy": "Question", "confidence": 0.5, "response": TRICKY}
    raw = json.dumps(answer, ensure_ascii=ascii_only)
    for cut in range(1, len(raw)):
        reader = JsonFieldReader("response")
        events = reader.feed(raw[:cut]) + reader.feed(raw[cut:])
        texts = [value for kind, _, value in events if kind == "text"]
        assert "".join(texts) == TRICKY, cut
        assert all(piece.encode("utf-8") for piece in texts)  # no half of a surrogate pair on its own
        assert [(name, value) for kind, name, value in events if kind == "field"] == list(answer.items())
        assert reader.done and reader.fields == answer


def test_reader_reads_one_character_at_a_time_and_reports_each_field_once():
    raw = json.dumps({"user_emotion": "anger", "nested": {"a": ["}", 1]}, "response": 'a "b"', "after": None}, indent=2)
    reader = JsonFieldReader("response")
    events = [event for char in raw for event in reader.feed(char)]
    fields = [name for kind, name, _ in events if kind == "field"]
    assert fields == ["user_emotion", "nested", "response", "after"]
    assert reader.fields["nested"] == {"a": ["}", 1]} and reader.text == 'a "b"'


def test_reader_refuses_what_is_not_a_json_object():
    with pytest.raises(StructuredOutputError, match="not a JSON object"):
        JsonFieldReader("response").feed('["a list"]')
    with pytest.raises(StructuredOutputError, match="not a JSON object"):
        JsonFieldReader("response").feed('{"response": "bad \\x escape"}')


# -- LLM.astream_fields ------------------------------------------------------------------------------


async def test_stream_fields_gives_labels_then_growing_text_then_the_validated_answer(small_chunks):
    llm = ScriptedModel(user_emotion="sadness", strategy="Open question", reply=TRICKY).as_llm()
    events = [event async for event in llm.astream_fields(ASK, fused_model(MESC), text_field="response")]
    kinds = [kind for kind, _, _ in events]
    assert kinds[:3] == ["field"] * 3 and kinds[-1] == "answer"
    assert [name for kind, name, _ in events if kind == "field"] == ["user_emotion", "strategy", "system_emotion", "response"]
    texts = [value for kind, _, value in events if kind == "text"]
    assert len(texts) > 5 and "".join(texts) == TRICKY
    answer = events[-1][2]
    assert isinstance(answer, fused_model(MESC)) and answer.strategy == "Open question"
    assert answer.response == " ".join(TRICKY.split())  # validated: the model's reply rules applied once


async def test_stream_fields_raises_after_the_pieces_when_the_whole_answer_is_invalid():
    llm = ScriptedModel(strategy="Hug", reply="Hugs.").as_llm()
    seen = []
    with pytest.raises(StructuredOutputError):
        async for event in llm.astream_fields(ASK, fused_model(MESC), text_field="response"):
            seen.append(event)
    assert ("field", "strategy", "Hug") in seen  # the caller could see it coming; nothing was validated early


async def test_stream_fields_raises_when_the_answer_is_cut_off():
    llm = ScriptedModel(truncate={"FusedTurn": 90}, reply="A long reply that will not fit in the tokens allowed.").as_llm()
    with pytest.raises(StructuredOutputError, match="ended before it was complete"):
        _ = [event async for event in llm.astream_fields(ASK, fused_model(MESC), text_field="response")]


# -- the fused turn ----------------------------------------------------------------------------------


def test_fused_turn_streams_escapes_cut_across_chunks(make_agent, small_chunks):
    script = ScriptedModel(user_emotion="sadness", strategy="Open question", reply=TRICKY)
    events = list(make_agent(model=script, mode="fused").stream("hard day", thread_id="esc"))
    tokens = [e.text for e in events if e.type == "token"]
    assert len(tokens) > 5 and "".join(tokens).endswith(TRICKY)  # after the AI disclosure of a first turn
    assert events[-1].reply.text.endswith(" ".join(TRICKY.split()))


def test_fused_labels_are_announced_once_each_before_the_first_token(make_agent, small_chunks):
    script = ScriptedModel(user_emotion="anger", strategy="Approval", system_emotion="neutral", reply="Well done for speaking up.")
    events = list(make_agent(model=script, mode="fused").stream("I told my boss no", thread_id="once"))
    kinds = [e.stage if e.type == "stage" else e.type for e in events]
    assert kinds.count("user_emotion") == kinds.count("strategy") == kinds.count("system_emotion") == 1
    assert kinds.index("system_emotion") < kinds.index("token")
    stages = {e.stage: e.prediction.label for e in events if e.type == "stage"}
    assert stages == {"user_emotion": "anger", "strategy": "Approval", "system_emotion": "neutral"}


@pytest.mark.parametrize("streamed", [True, False])
def test_the_fused_counsellor_emotion_is_settled_by_the_taxonomy_rule(make_agent, streamed):
    # a fused answer carries no confidence, so a non-neutral stance the rule does not let through becomes neutral
    script = ScriptedModel(user_emotion="fear", strategy="Restatement", system_emotion="fear", reply="That sounds frightening.")
    agent = make_agent(model=script, mode="fused")
    if streamed:
        reply = [e for e in agent.stream("I'm scared of the dark house", thread_id="rule-s")][-1].reply
    else:
        reply = agent.respond("I'm scared of the dark house", thread_id="rule-r")
    assert reply.system_emotion.label == "neutral" and reply.system_emotion.source == "rule"
    assert "'fear'" in reply.system_emotion.rationale


def test_an_invalid_first_label_falls_back_to_one_structured_call_and_is_never_shown(make_agent, small_chunks):
    script = ScriptedModel(user_emotion=["ecstatic", "joy"], reply=["Never shown.", "Good to hear."])
    events = list(make_agent(model=script, mode="fused").stream("I got in!", thread_id="inv"))
    stages = [(e.stage, e.prediction.label) for e in events if e.type == "stage"]
    assert stages[0] == ("user_emotion", "joy") and len(stages) == 3
    assert "Never" not in "".join(e.text for e in events if e.type == "token")
    assert events[-1].reply.text.endswith("Good to hear.")
    assert [c.schema for c in script.calls] == ["FusedTurn", "FusedTurn"]  # the stream, then one structured call


def test_fused_stream_validates_the_whole_answer_once_and_no_partial_objects(make_agent, monkeypatch):
    def no_partials(*args, **kwargs):
        raise AssertionError("the fused turn must not validate partial objects per piece")

    monkeypatch.setattr(LLM, "astream_structured", no_partials)
    fused = fused_model(MESC)
    validated = []
    original = fused.model_validate.__func__

    def counting(cls, *args, **kwargs):
        validated.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(fused, "model_validate", classmethod(counting))
    events = list(make_agent(model=ScriptedModel(reply="One two three four five six."), mode="fused").stream("hi", thread_id="v1"))
    assert len([e for e in events if e.type == "token"]) > 3
    assert len(validated) == 1


def test_a_fused_answer_cut_after_the_reply_began_keeps_what_was_shown(make_agent):
    script = ScriptedModel(truncate={"FusedTurn": 140}, reply="I hear you. It has been a long and very tiring week for you, and you kept going.")
    events = list(make_agent(model=script, mode="fused").stream("long week", thread_id="cut"))
    reply = events[-1].reply
    shown = "".join(e.text for e in events if e.type == "token").strip()
    assert shown and reply.text == " ".join(shown.split())
    assert reply.strategy is not None and "respond" in reply.failed_steps  # validated at the end, found cut


# -- nobody hears the tokens: one unstreamed call --------------------------------------------------


def test_respond_asks_the_fused_answer_unstreamed_and_stream_streams_it(make_agent, monkeypatch):
    streamed = []
    original = LLM.astream_fields

    def spy(self, *args, **kwargs):
        streamed.append(kwargs.get("text_field"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LLM, "astream_fields", spy)
    script = ScriptedModel(strategy=["Hug", "Approval"], reply="Well done for going.")
    agent = make_agent(model=script, mode="fused")
    reply = agent.respond("I went to the interview", thread_id="q")  # ainvoke: nobody receives tokens
    assert streamed == [] and reply.strategy.label == "Approval" and reply.text.endswith("Well done for going.")
    assert [c.schema for c in script.calls] == ["FusedTurn", "FusedTurn"]  # the invalid label re-asked in the same call
    events = list(agent.stream("and then I waited", thread_id="q"))
    assert streamed == ["response"] and len([e for e in events if e.type == "token"]) > 1
    assert agent.history("q")[-1].strategy == "Approval"


async def test_stream_fields_reads_tool_call_arguments_in_tools_mode(monkeypatch):
    """Hosted APIs answer in tools mode: the JSON arrives as tool-call argument pieces (a fake provider here)."""
    from types import SimpleNamespace as NS

    answer = json.dumps({"user_emotion": "sadness", "strategy": "Approval", "system_emotion": "neutral", "response": TRICKY})
    requests = []

    def chunk(arguments: str) -> NS:
        call = NS(index=0, id="call", type="function", function=NS(name="FusedTurn", arguments=arguments))
        return NS(choices=[NS(index=0, delta=NS(content=None, tool_calls=[call], role="assistant"), finish_reason=None)])

    async def completion(**kwargs):
        requests.append(kwargs)

        async def pieces():
            for piece in _split_every(answer, 5):
                yield chunk(piece)

        return pieces()

    llm = LLM("openai/gpt-4o-mini", api_key="unused")
    monkeypatch.setattr(llm, "_completion_fn", lambda is_async: completion)
    events = [event async for event in llm.astream_fields(ASK, fused_model(MESC), text_field="response")]
    assert llm.mode == "tools" and requests[0]["stream"] is True
    assert requests[0]["tool_choice"]["function"]["name"] == "FusedTurn"  # shaped as instructor shapes it
    assert "".join(value for kind, _, value in events if kind == "text") == TRICKY
    assert events[-1][2].strategy == "Approval"
