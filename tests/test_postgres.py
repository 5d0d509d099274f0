"""Postgres memory on a real PostgreSQL server that the tests start themselves (see tests/_postgres.py)."""

from __future__ import annotations

import warnings

import pytest
from test_memory import (
    assert_both_processes_kept_all_turns,
    assert_whole_turns,
    ten_at_once,
    two_processes_five_turns_each,
    user_texts,
)

from mesa import SupportAgent
from mesa.state import Message, SupportState
from mesa.testing import ScriptedModel


def test_a_postgres_uri_opens_postgres_memory_with_mesas_serializer(postgres_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a type the serializer would block warns on every read
        with SupportAgent(model=ScriptedModel(user_emotion="sadness"), memory=postgres_uri) as agent:
            agent.respond("I miss my brother", thread_id="pg")
        # a new agent (as another process would) on the other spelling of the scheme
        with SupportAgent(model=ScriptedModel(), memory=postgres_uri.replace("postgresql://", "postgres://", 1)) as again:
            again.respond("he moved abroad", thread_id="pg")
            history = again.history("pg")
            state = again.state("pg")
    assert all(isinstance(m, Message) for m in history) and isinstance(state, SupportState)
    assert user_texts(history) == ["I miss my brother", "he moved abroad"]
    assert history[0].emotion == "sadness"
    assert list(tmp_path.iterdir()) == []  # no folder named "postgresql:" with a SQLite file in it


async def test_ten_concurrent_turns_on_one_postgres_thread_are_all_kept(make_agent, postgres_uri):
    agent = make_agent(model=ScriptedModel(latency=0.01), memory=postgres_uri)
    await ten_at_once(agent, "busy")
    history = await agent.ahistory("busy")
    assert user_texts(history) == [f"message {i}" for i in range(10)]
    assert_whole_turns(history)


@pytest.mark.slow
def test_two_processes_on_one_postgres_thread_keep_every_turn(postgres_uri, tmp_path):
    two_processes_five_turns_each(postgres_uri, tmp_path)
    with SupportAgent(model=ScriptedModel(), memory=postgres_uri) as agent:
        assert_both_processes_kept_all_turns(agent.history("shared"))


def test_a_long_postgres_conversation_keeps_one_bounded_checkpoint(make_agent, postgres_uri):
    agent = make_agent(model=ScriptedModel(), memory=postgres_uri)
    for i in range(15):
        agent.respond(f"turn {i}", thread_id="long")
    state = agent.state("long")
    assert len(state.history) == 20 and state.archived == 10
    assert user_texts(agent.history("long")) == [f"turn {i}" for i in range(15)]

    async def count() -> int:
        return len([s async for s in agent.graph.aget_state_history({"configurable": {"thread_id": "long"}})])

    assert agent._runner.run(count()) == 1
