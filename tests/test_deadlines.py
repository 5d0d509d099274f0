"""Every turn ends: model-call and turn deadlines, and label steps that cannot be answered.

Hanging and stalling fakes (``ScriptedModel(hang=..., stall_after=...)``, a TCP server that never
answers) with short deadlines set in the test; the assertions are about how the turn ended, never
about how long it took.
"""

import asyncio
import socket
import threading

import pytest

from mesa import LLM
from mesa.errors import LLMError, LLMTimeoutError, MesaError, TurnTimeoutError
from mesa.graphs.nodes import step_model
from mesa.taxonomy import MESC
from mesa.testing import ScriptedModel

ASK = [{"role": "user", "content": "pick a strategy"}]
Strategy = step_model(MESC, "strategy")


@pytest.fixture(autouse=True, scope="module")
def _warm_litellm():
    """LiteLLM's first call in a process sets itself up slowly; do that before any short deadline."""
    ScriptedModel().as_llm().text(ASK)
    ScriptedModel().as_llm().structured(ASK, Strategy)


# -- one model call ---------------------------------------------------------------------------------


async def test_a_hanging_structured_call_ends_with_llm_timeout_error():
    script = ScriptedModel(hang={"Strategy"})
    with pytest.raises(LLMTimeoutError) as info:
        await script.as_llm(timeout=0.5).astructured(ASK, Strategy)
    assert script.hanging.is_set()  # it hung, and the deadline ended it
    assert isinstance(info.value, LLMError) and isinstance(info.value, TimeoutError) and info.value.seconds == 0.5


async def test_a_stream_stalled_after_one_token_ends_with_llm_timeout_error():
    script = ScriptedModel(reply="one two three", stall_after=1)
    seen = []
    with pytest.raises(LLMTimeoutError):
        async for piece in script.as_llm(timeout=0.5).astream_text(ASK):
            seen.append(piece)
    assert seen == ["one "]


def test_sync_twins_keep_the_deadline():
    with pytest.raises(LLMTimeoutError):
        ScriptedModel(hang=True).as_llm(timeout=0.3).text(ASK)
    seen = []
    with pytest.raises(LLMTimeoutError):
        for piece in ScriptedModel(reply="a b c", stall_after=2).as_llm(timeout=0.3).stream_text(ASK):
            seen.append(piece)  # noqa: PERF402 - the pieces before the error are the point
    assert seen == ["a ", "b "]


def test_a_call_s_own_timeout_wins_and_timeouts_are_validated():
    llm = ScriptedModel(hang={"text"}).as_llm(timeout=300)
    with pytest.raises(LLMTimeoutError):
        llm.text(ASK, timeout=0.3)
    assert LLM("openai/x").timeout == 60.0
    assert llm.with_timeout(5).timeout == 5 and llm.timeout == 300
    with pytest.raises(ValueError):
        LLM("openai/x", timeout=0)


class _SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def silent_server():
    server = _SilentServer()
    yield server
    server.close()


def _silent_llm(server: _SilentServer, timeout: float) -> LLM:
    return LLM("openai/x", api_base=f"http://127.0.0.1:{server.port}/v1", api_key="not-used", timeout=timeout, max_retries=0)


async def test_a_server_that_accepts_and_never_answers_does_not_hang_a_call(silent_server):
    llm = _silent_llm(silent_server, 1.0)
    with pytest.raises(LLMTimeoutError):
        await llm.atext(ASK)
    with pytest.raises(LLMTimeoutError):
        await llm.astructured(ASK, Strategy)
    with pytest.raises(LLMTimeoutError):
        async for _ in llm.astream_text(ASK):
            pass
    assert silent_server.accepted.is_set()


def test_a_server_that_never_answers_ends_the_turn(make_agent, silent_server):
    agent = make_agent(model=_silent_llm(silent_server, 30.0), call_timeout=1.0, turn_timeout=2.5)
    with pytest.raises(TurnTimeoutError) as info:  # three label calls of 1 s each cannot fit in 2.5 s
        agent.respond("hello", thread_id="silent")
    assert isinstance(info.value, MesaError) and info.value.seconds == 2.5
    assert silent_server.accepted.is_set()


# -- the turn ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_a_turn_past_its_deadline_raises_turn_timeout_error(make_agent, mode):
    script = ScriptedModel(hang=True)
    agent = make_agent(model=script, mode=mode, call_timeout=60, turn_timeout=1.0)
    with pytest.raises(TurnTimeoutError):
        agent.respond("hello", thread_id="t")
    with pytest.raises(TurnTimeoutError):
        list(agent.stream("hello again", thread_id="t"))
    assert script.hanging.is_set()


async def test_the_async_turn_has_the_deadline_too(make_agent):
    agent = make_agent(model=ScriptedModel(hang={"text"}), call_timeout=60, turn_timeout=1.0)
    with pytest.raises(TurnTimeoutError):
        await agent.arespond("hello", thread_id="a")
    with pytest.raises(TurnTimeoutError):
        async for _ in agent.astream("hello", thread_id="a"):
            pass


def test_a_hanging_label_step_leaves_its_label_absent_and_the_turn_answered(make_agent):
    script = ScriptedModel(user_emotion="sadness", hang={"Strategy"}, reply="I am here with you.")
    agent = make_agent(model=script, call_timeout=0.5)
    events = list(agent.stream("I lost my job today", thread_id="h"))
    reply = events[-1].reply
    assert reply.strategy is None and reply.user_emotion.label == "sadness" and reply.system_emotion is not None
    assert "LLMTimeoutError" in reply.failed_steps["strategy"]
    assert reply.text.endswith("I am here with you.")
    assert [e.stage for e in events if e.type == "stage"] == ["user_emotion", "system_emotion"]
    assert "whichever fits best" in script.calls_for(None)[-1].prompt  # the reply step works without it
    history = agent.history("h")
    assert history[1].strategy is None and history[1].text == reply.text


def test_strict_mode_raises_instead(make_agent):
    agent = make_agent(model=ScriptedModel(hang={"Strategy"}), call_timeout=0.5, strict=True)
    with pytest.raises(LLMTimeoutError):
        agent.respond("I lost my job today", thread_id="s")
    history = agent.history("s")  # the failed turn keeps the user's message, marked unanswered, and no reply
    assert [(m.role, m.text, m.unanswered) for m in history] == [("user", "I lost my job today", True)]


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_a_reply_stream_that_stalls_after_one_token_ends_the_turn_with_what_was_shown(make_agent, mode):
    script = ScriptedModel(reply="Stay with me, it gets easier.", stall_after=1)
    agent = make_agent(model=script, mode=mode, call_timeout=0.5)
    events = list(agent.stream("rough day", thread_id="st"))
    reply = events[-1].reply
    shown = "".join(e.text for e in events if e.type == "token").strip()
    assert reply.text == shown and reply.text.endswith("Stay")
    assert "LLMTimeoutError" in reply.failed_steps["respond"]
    assert script.hanging.is_set()


def test_a_reply_stream_that_shows_nothing_fails_clearly(make_agent):
    agent = make_agent(model=ScriptedModel(hang={"text"}), call_timeout=0.5)
    with pytest.raises(LLMTimeoutError):
        agent.respond("rough day", thread_id="n")


def test_a_hanging_safety_judgement_ends_at_the_call_deadline(make_agent):
    # "pain" is a risk word, so the LLM judgement is asked; the rules alone see no crisis
    script = ScriptedModel(hang={"SafetyJudgement"}, reply="That sounds exhausting.")
    agent = make_agent(model=script, call_timeout=0.5)
    reply = agent.respond("my back pain kept me up all night", thread_id="sj")
    assert script.hanging.is_set() and script.calls_for("SafetyJudgement")
    assert not reply.crisis and reply.safety is not None
    assert reply.text.endswith("That sounds exhausting.")


# -- answers cut by max_tokens -----------------------------------------------------------------------


def test_a_label_answer_cut_by_max_tokens_leaves_the_label_absent(make_agent):
    script = ScriptedModel(truncate={"Strategy": 20}, reply="Tell me more.")  # '{"label": "Restateme'
    reply = make_agent(model=script).respond("I keep failing my driving test", thread_id="mt")
    assert reply.strategy is None and "max_tokens" in reply.failed_steps["strategy"]
    assert reply.user_emotion is not None and reply.text.endswith("Tell me more.")
    with pytest.raises(LLMError):
        make_agent(model=ScriptedModel(truncate={"Strategy": 20}), strict=True).respond("again")


def test_a_fused_answer_that_never_validates_is_answered_without_labels(make_agent):
    script = ScriptedModel(strategy="Hug", reply="A reply anyway.")
    reply = make_agent(model=script, mode="fused").respond("I went to the interview", thread_id="fz")
    assert reply.strategy is None and reply.user_emotion is None and "fused_turn" in reply.failed_steps
    assert reply.text.endswith("A reply anyway.")


# -- the cache keeps only answers --------------------------------------------------------------------


def test_a_failed_step_is_not_cached(make_agent, tmp_path):
    script = ScriptedModel(strategy=["Hug", "Hug", "Hug", "Approval"])
    agent = make_agent(model=script, cache=tmp_path / "cache")
    first = agent.respond("same words")
    assert first.strategy is None and "strategy" in first.failed_steps
    second = agent.respond("same words")
    assert second.strategy.label == "Approval" and not second.failed_steps
    assert len(script.calls_for("UserEmotion")) == 1  # the answered step came from the cache


def test_scripted_hangs_can_be_released():
    script = ScriptedModel(hang={"text"}, reply="late answer")

    async def ask():
        return await script.as_llm(timeout=30).atext(ASK)

    async def scenario():
        task = asyncio.create_task(ask())
        while not script.hanging.is_set():
            await asyncio.sleep(0.01)
        script.release()
        return await task

    assert asyncio.run(scenario()) == "late answer"


def test_a_bare_graph_run_takes_the_call_deadline_and_strictness_from_its_context():
    from mesa import SupportContext, Turn
    from mesa.graphs import build_graph

    app = build_graph("stepwise").compile()
    script = ScriptedModel(hang={"SystemEmotion"}, reply="still here")
    out = asyncio.run(app.ainvoke({"turn": Turn(text="hello")}, context=SupportContext(llm=script.as_llm(), call_timeout=0.5)))
    assert out["system_emotion"] is None and "system_emotion" in out["failed_steps"] and out["response"].endswith("still here")
    strict = SupportContext(llm=ScriptedModel(hang={"SystemEmotion"}).as_llm(), call_timeout=0.5, strict=True)
    with pytest.raises(LLMTimeoutError):
        asyncio.run(app.ainvoke({"turn": Turn(text="hello")}, context=strict))
