"""The LLM interface: structured calls with re-asking, text, streaming, provider modes."""

from itertools import pairwise

import pytest
from pydantic import BaseModel

from mesa.errors import LLMError, StructuredOutputError
from mesa.graphs.nodes import fused_model, step_model
from mesa.llm import LLM, STRUCTURED_MODES, register_structured_mode
from mesa.taxonomy import MESC
from mesa.testing import ScriptedModel

Strategy = step_model(MESC, "strategy")
ASK = [{"role": "user", "content": "pick a strategy"}]


def test_invalid_answer_is_reasked_until_valid():
    script = ScriptedModel(strategy=["Hugging", "Cuddles", "Approval"])
    answer = script.as_llm(max_retries=3).structured(ASK, Strategy)
    assert answer.label == "Approval"
    assert [c.answer.count("Hugging") + c.answer.count("Cuddles") for c in script.calls] == [1, 1, 0]
    # instructor re-asks with the validation error in the conversation
    assert "Hugging" in script.calls[1].prompt


async def test_async_structured_and_failure_after_retries():
    script = ScriptedModel(strategy="Not a strategy")
    with pytest.raises(StructuredOutputError) as info:
        await script.as_llm(max_retries=2).astructured(ASK, Strategy)
    assert info.value.attempts == 3
    assert len(script.calls) == 3
    assert "Strategy" in str(info.value)


def test_text_and_stream():
    script = ScriptedModel(reply=["first answer", "second answer here"])
    llm = script.as_llm()
    assert llm.text(ASK) == "first answer"
    pieces = list(llm.stream_text(ASK))
    assert pieces == ["second ", "answer ", "here"]


async def test_async_stream():
    llm = ScriptedModel(reply="a b c").as_llm()
    assert [p async for p in llm.astream_text(ASK)] == ["a ", "b ", "c"]
    assert await llm.atext(ASK) == "a b c"


def test_structured_stream_fills_fields_in_order():
    fused = fused_model(MESC)
    script = ScriptedModel(user_emotion="sadness", strategy="Open question", reply="What happened after that?")
    partials = list(script.as_llm().stream_structured(ASK, fused))
    assert partials[0].user_emotion is None and partials[0].response is None
    replies = [p.response for p in partials if p.response]
    assert len(replies) > 1 and all(b.startswith(a) for a, b in pairwise(replies))
    final = fused.model_validate(partials[-1].model_dump())
    assert (final.user_emotion, final.strategy, final.response) == ("sadness", "Open question", "What happened after that?")
    assert [c.schema for c in script.calls] == ["FusedTurn"]


async def test_async_structured_stream_raises_on_an_invalid_final_answer():
    fused = fused_model(MESC)
    ok = [p async for p in ScriptedModel(strategy="Approval", reply="Well done.").as_llm().astream_structured(ASK, fused)]
    assert ok[-1].strategy == "Approval" and ok[-1].response == "Well done."
    seen = []
    with pytest.raises(LLMError):
        async for partial in ScriptedModel(strategy="Hug").as_llm().astream_structured(ASK, fused):
            seen.append(partial)
    assert seen  # partials came before the final validation failed


def test_mode_is_chosen_per_provider():
    assert LLM("mesa-local/smollm2").mode == "json_schema"
    assert LLM("ollama_chat/llama3.1").mode == "json_schema"
    assert LLM("openai/gpt-4o-mini").mode == "tools"
    assert LLM("someprovider/x").mode == "tools"
    assert LLM("openai/x", mode="json").mode == "json"
    register_structured_mode("myserver", "json_schema")
    try:
        assert LLM("myserver/m").mode == "json_schema"
    finally:
        STRUCTURED_MODES.pop("myserver")


def test_from_model_accepts_strings_llms_and_scripts():
    llm = LLM("openai/gpt-4o-mini")
    assert LLM.from_model(llm) is llm
    assert LLM.from_model(None).model == "mesa-local/smollm2"
    script = ScriptedModel()
    assert LLM.from_model(script).model == script.model
    with pytest.raises(TypeError):
        LLM.from_model(42)


def test_provider_errors_become_llm_errors():
    class Anything(BaseModel):
        x: int

    with pytest.raises(LLMError):
        LLM("mesa-scripted/not-registered").structured(ASK, Anything)


def test_price_list_fetch_is_disabled(monkeypatch):
    import os

    from mesa.llm import import_litellm

    import_litellm()
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


# -- LiteLLM Router ----------------------------------------------------------------------------------


def _router(primary, backup, **kwargs):
    from litellm import Router

    from mesa.llm import import_litellm

    import_litellm()
    model_list = [
        {"model_name": "primary", "litellm_params": {"model": primary}},
        {"model_name": "backup", "litellm_params": {"model": backup}},
    ]
    return Router(model_list=model_list, num_retries=0, **kwargs)


def test_router_uses_the_named_group_or_its_first_configured_group():
    primary, backup = ScriptedModel(strategy="Approval"), ScriptedModel(strategy="Restatement")
    router = _router(primary.model, backup.model)
    assert LLM.from_model(router).model == "primary"  # the first configured, not the alphabetically first ("backup")
    assert LLM.from_router(router).structured(ASK, Strategy).label == "Approval"
    assert len(primary.calls) == 1 and backup.calls == []
    assert LLM.from_router(router, "backup").structured(ASK, Strategy).label == "Restatement"
    with pytest.raises(ValueError, match="no model group"):
        LLM.from_router(router, "nonexistent")


def test_router_fallbacks_keep_working(make_agent):
    primary = ScriptedModel(fail=True)
    backup = ScriptedModel(user_emotion="sadness", strategy="Approval", reply="Backup here.")
    router = _router(primary.model, backup.model, fallbacks=[{"primary": ["backup"]}])
    reply = make_agent(model=router).respond("I failed my exam", thread_id="r")
    assert primary.calls_for("UserEmotion")  # the primary was tried first
    assert reply.user_emotion.label == "sadness" and reply.strategy.label == "Approval" and reply.text.endswith("Backup here.")
    assert not reply.failed_steps


def test_router_output_mode_suits_every_deployment_the_group_reaches():
    mixed = _router("openai/gpt-4o-mini", "ollama_chat/llama3.1", fallbacks=[{"primary": ["backup"]}])
    assert LLM.from_router(mixed).mode == "json_schema"  # tool calls would break the local fallback
    assert LLM.from_router(mixed, "backup").mode == "json_schema"
    hosted = _router("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", fallbacks=[{"primary": ["backup"]}])
    assert LLM.from_router(hosted).mode == "tools"
    assert LLM.from_router(mixed, mode="tools").mode == "tools"  # an explicit mode wins


# -- per-call costs: instructor's wrapping of a response model is made once -------------------------


def test_the_wrapped_response_model_and_its_schema_are_made_once_per_model(monkeypatch):
    from instructor.v2.core import function_calls

    from mesa.llm import _schema_model

    class Mood(BaseModel):
        label: str

    made = []
    original = function_calls.response_schema
    monkeypatch.setattr(function_calls, "response_schema", lambda model: made.append(model) or original(model))
    script = ScriptedModel(structured={"Mood": {"label": "calm"}})
    llm = script.as_llm()
    assert [llm.structured(ASK, Mood).label for _ in range(3)] == ["calm"] * 3
    assert made == [Mood]  # once, not at every call (instructor would wrap the class again each time)
    wrapped = _schema_model(Mood)
    first = wrapped.model_json_schema()
    first["properties"]["label"]["type"] = "changed in place by request code"
    assert wrapped.model_json_schema() == Mood.model_json_schema()  # every call gets a fresh copy
    assert _schema_model(list[Mood]) == list[Mood]  # what is not a Pydantic model is passed on as it is
