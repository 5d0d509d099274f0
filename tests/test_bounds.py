"""Bounded input and output: the user's text, the reply in both modes, rationales, classifier labels."""

import asyncio

import pytest

from mesa import SupportContext, Turn
from mesa.errors import InputTooLargeError, MesaError
from mesa.graphs import build_graph
from mesa.graphs.nodes import RATIONALE_MAX, REPLY_MAX_CHARS
from mesa.safety import DISCLOSURE_TEXT
from mesa.state import MAX_TEXT_CHARS
from mesa.testing import ScriptedModel

LONG_REPLY = " ".join(f"Sentence number {i} goes on." for i in range(400))  # ~11 000 characters


# -- input ---------------------------------------------------------------------------------------------


def test_oversized_text_is_refused_before_any_model_call_or_write(make_agent):
    script = ScriptedModel()
    agent = make_agent(model=script)
    with pytest.raises(InputTooLargeError) as info:
        agent.respond("x" * (MAX_TEXT_CHARS + 1), thread_id="big")
    assert isinstance(info.value, MesaError) and info.value.limit == MAX_TEXT_CHARS == 16_000
    with pytest.raises(InputTooLargeError):
        list(agent.stream("y" * 10_000_000, thread_id="big"))
    assert script.calls == []
    assert agent.history("big") == [] and agent.state("big").turn.text is None


def test_the_input_limit_is_configurable(make_agent):
    script = ScriptedModel(reply="ok.")
    small = make_agent(model=script, max_input_chars=100)
    with pytest.raises(InputTooLargeError):
        small.respond("z" * 101)
    assert small.respond("z" * 100).text.endswith("ok.")
    assert make_agent(model=script, max_input_chars=None).respond("w " * 20_000).text.endswith("ok.")


def test_a_graph_run_without_the_agent_checks_the_context_limit_before_any_model_call():
    script = ScriptedModel()
    app = build_graph("stepwise").compile()
    ctx = SupportContext(llm=script.as_llm(), max_input_chars=50)
    with pytest.raises(InputTooLargeError):
        asyncio.run(app.ainvoke({"turn": Turn(text="a" * 51)}, context=ctx))
    assert script.calls == []


# -- output --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_the_reply_is_capped_in_both_modes(make_agent, mode):
    agent = make_agent(model=ScriptedModel(reply=LONG_REPLY), mode=mode)
    events = list(agent.stream("tell me everything", thread_id="cap"))
    reply = events[-1].reply
    body = reply.text.removeprefix(DISCLOSURE_TEXT).strip()
    assert 0 < len(body) <= REPLY_MAX_CHARS
    assert body.startswith("Sentence number 0")
    streamed = "".join(e.text for e in events if e.type == "token").removeprefix(DISCLOSURE_TEXT).strip()
    assert len(streamed) <= REPLY_MAX_CHARS


def test_rationales_are_capped(make_agent):
    rationale = "because " * 2000
    script = ScriptedModel(structured={"Strategy": {"label": "Approval", "confidence": 0.8, "rationale": rationale}})
    reply = make_agent(model=script).respond("I passed!")
    assert reply.strategy.label == "Approval" and len(reply.strategy.rationale) <= RATIONALE_MAX


# -- classifier labels ----------------------------------------------------------------------------------


class RogueClassifier:
    """Returns a label outside the taxonomy as its best guess."""

    def supports(self, which):
        return which in ("user_emotion", "strategy")

    def predict_distribution(self, which, text, history):
        return {"hacked": 0.97, "sadness": 0.02, "Approval": 0.01}


def test_a_classifier_label_outside_the_taxonomy_never_reaches_the_reply(make_agent, caplog):
    script = ScriptedModel(user_emotion="fear", strategy="Restatement")
    agent = make_agent(model=script, classifier=RogueClassifier(), classifier_use="step")
    reply = agent.respond("I am nervous about my driving test tomorrow", thread_id="rogue")
    assert (reply.user_emotion.label, reply.user_emotion.source) == ("fear", "llm")  # the LLM step decided instead
    assert (reply.strategy.label, reply.strategy.source) == ("Restatement", "llm")
    assert "hacked" not in repr(agent.state("rogue")) and "hacked" not in repr(reply)
    assert "not in the taxonomy" in caplog.text


def test_a_classifier_prior_shows_only_taxonomy_labels(make_agent):
    script = ScriptedModel()
    make_agent(model=script, classifier=RogueClassifier(), classifier_use="prior").respond("hello")
    prompt = script.calls_for("UserEmotion")[0].prompt
    assert "hacked" not in prompt and "sadness (0.02)" in prompt
