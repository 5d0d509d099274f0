"""Issue 9, safety part: a crisis turn gets its checked reply whatever the model or the hooks do.

Every test uses a fake that never returns (an LLM call awaiting an event nobody sets, a hook blocked on a
threading.Event) and asserts with events, not timings: the reply arrives, the hook was started.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from mesa.safety import SafetyPolicy
from mesa.state import SafetyAssessment

CRISIS = SafetyAssessment(level="imminent", category="suicide", evidence=["rules:x"], sources=["rules"])


class HangingLLM:
    """An LLM whose every call starts and then never returns."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.sync_started = threading.Event()
        self._never = threading.Event()

    async def astructured(self, messages, response_model, **kwargs):
        self.started.set()
        await asyncio.Event().wait()

    async def atext(self, messages, **kwargs):
        self.started.set()
        await asyncio.Event().wait()

    def structured(self, messages, response_model, **kwargs):
        self.sync_started.set()
        self._never.wait()

    def text(self, messages, **kwargs):
        self.sync_started.set()
        self._never.wait()


def _policy(**kwargs) -> SafetyPolicy:
    kwargs.setdefault("semantic", False)
    return SafetyPolicy(judgement_timeout=0.2, wording_timeout=0.2, **kwargs)


async def test_a_hanging_judgement_keeps_the_rule_result(caplog):
    llm = HangingLLM()
    with caplog.at_level(logging.WARNING, logger="mesa.safety"):
        result = await _policy().aassess("I want to kill myself", [], llm)
    assert llm.started.is_set()  # the model was asked, and its silence did not hold the turn
    assert result.crisis and result.category == "suicide" and "llm:timeout" in result.sources
    assert any("LLM assessment took over" in r.getMessage() for r in caplog.records)


async def test_a_hanging_wording_gives_the_vetted_template():
    llm = HangingLLM()
    policy = _policy()
    reply = await policy.acrisis_reply("I want to kill myself", CRISIS, [], llm)
    assert llm.started.is_set()
    assert reply == policy.template_reply(CRISIS) and policy.check_crisis_reply(reply, "suicide") == []


def test_sync_twins_have_the_same_deadlines():
    llm = HangingLLM()
    policy = _policy()
    assert policy.assess("I want to kill myself", [], llm).crisis
    assert policy.crisis_reply("I want to kill myself", CRISIS, [], llm) == policy.template_reply(CRISIS)
    assert llm.started.is_set() and not llm.sync_started.is_set()  # the sync twin runs the async body, written once


async def test_a_hanging_sync_hook_blocks_neither_the_reply_nor_the_loop(caplog):
    started, release = threading.Event(), threading.Event()

    def pager(event):
        started.set()
        release.wait()  # a pager service that never answers

    policy = _policy(on_escalation=pager, hook_timeout=0.2)
    await policy.aescalate("t", CRISIS, "I want to kill myself")  # returns at once: the hook runs in its own thread
    reply = await policy.acrisis_reply("I want to kill myself", CRISIS, [], None)
    assert policy.check_crisis_reply(reply, "suicide") == []
    ticks = 0
    for _ in range(3):  # the loop still runs other work while the hook hangs
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 3
    assert await asyncio.to_thread(started.wait, 30)  # the hook was started
    with caplog.at_level(logging.ERROR, logger="mesa.safety"):
        await policy.adrain_hooks()  # its timeout is enforced: abandoned and logged, never raised
    assert any("took over" in r.getMessage() for r in caplog.records)
    release.set()


async def test_a_hanging_async_hook_is_cancelled_at_its_timeout(caplog):
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def webhook(event):
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    policy = _policy(on_escalation=webhook, hook_timeout=0.2)
    await policy.aescalate("t", CRISIS, "x")
    assert not cancelled.is_set()
    with caplog.at_level(logging.ERROR, logger="mesa.safety"):
        await policy.adrain_hooks()
    assert started.is_set() and cancelled.is_set()
    assert any("took over" in r.getMessage() for r in caplog.records)


def test_sync_escalate_returns_before_a_hanging_hook_ends():
    started, release = threading.Event(), threading.Event()

    def pager(event):
        started.set()
        release.wait()

    policy = _policy(on_escalation=pager, hook_timeout=0.2)
    policy.escalate("t", CRISIS, "x")  # would never return if it waited for the hook
    assert started.wait(30)
    release.set()


def test_crisis_turn_through_the_graph_with_a_hanging_model_and_hook(make_agent):
    """The whole graph: a model that never answers and a hook that never returns; the reply still comes."""
    from mesa.testing import ScriptedModel

    started, release = threading.Event(), threading.Event()

    def pager(event):
        started.set()
        release.wait()

    model = ScriptedModel(latency=3600)  # every call, through LiteLLM and instructor, waits an hour
    policy = _policy(on_escalation=pager, hook_timeout=0.2)
    agent = make_agent(model=model, safety=policy)
    reply = agent.respond("I'm going to kill myself tonight", thread_id="hang")
    assert reply.crisis and policy.check_crisis_reply(reply.text, "suicide") == []
    assert started.wait(30)
    release.set()


class JudgementHangs(HangingLLM):
    """A model whose judgement never comes; the wording call is recorded (and would hang too)."""

    def __init__(self) -> None:
        super().__init__()
        self.worded = False

    async def atext(self, messages, **kwargs):
        self.worded = True
        await asyncio.Event().wait()


async def test_a_model_that_missed_the_judgement_deadline_is_not_waited_on_again_for_the_wording():
    llm = JudgementHangs()
    policy = SafetyPolicy(semantic=False, judgement_timeout=0.2, wording_timeout=3600)  # only skipping it can pass
    assessment = await policy.aassess("I want to kill myself", [], llm)
    assert "llm:timeout" in assessment.sources
    reply = await policy.acrisis_reply("I want to kill myself", assessment, [], llm)
    assert not llm.worded and policy.check_crisis_reply(reply, assessment.category) == []
