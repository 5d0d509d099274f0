"""The LLM interface: structured calls with re-asking, text, streaming, provider modes."""

import pytest
from pydantic import BaseModel

from mesa.errors import LLMError, StructuredOutputError
from mesa.graphs.nodes import step_model
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
