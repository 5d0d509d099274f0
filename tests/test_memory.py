"""Conversation memory: one writer per thread, nothing lost, bounded per turn, checked thread ids, closed agents."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mesa import SupportAgent
from mesa.errors import AgentClosedError, InvalidThreadIdError, MesaError, StructuredOutputError
from mesa.graphs.smes import build_graph
from mesa.state import STATE_WINDOW_MIN, Message
from mesa.testing import ScriptedModel

ROOT = Path(__file__).resolve().parent.parent


def user_texts(history: list[Message]) -> list[str]:
    return [m.text for m in history if m.role == "user"]


def assert_whole_turns(history: list[Message]) -> None:
    """Every user message is followed by its reply: no turn was half-written or overwritten."""
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)


async def ten_at_once(agent: SupportAgent, thread_id: str) -> None:
    await asyncio.gather(*(agent.arespond(f"message {i}", thread_id=thread_id) for i in range(10)))


# -- one writer per thread ------------------------------------------------------------------------


@pytest.mark.parametrize("memory", ["memory", "sqlite"])
async def test_ten_concurrent_turns_on_one_thread_are_all_kept_in_order(make_agent, tmp_path, memory):
    spec = None if memory == "memory" else tmp_path / "chats.sqlite"
    agent = make_agent(model=ScriptedModel(latency=0.01), memory=spec)
    await ten_at_once(agent, "busy")
    history = await agent.ahistory("busy")
    assert user_texts(history) == [f"message {i}" for i in range(10)]
    assert_whole_turns(history)
    assert len(agent._locks) == 0  # the per-thread lock table empties when the thread is idle


def gated_agent(make_agent, held_text: str) -> tuple[SupportAgent, threading.Event, threading.Event]:
    """An agent whose turn with ``held_text`` stops after its reply until ``release`` is set (``entered`` says it got there)."""
    entered, release = threading.Event(), threading.Event()

    async def gate(state, runtime):
        if state.turn.text == held_text:
            entered.set()
            await asyncio.to_thread(release.wait, 60)
        return {}

    return make_agent(model=ScriptedModel(), graph=build_graph("stepwise", after_reply={"gate": gate})), entered, release


async def history_of_length(agent: SupportAgent, thread_id: str, length: int) -> list[Message]:
    """The thread's history once it has ``length`` messages (error paths finish on the agent's loop, later)."""
    for _ in range(600):
        history = await agent.ahistory(thread_id)
        if len(history) >= length:
            return history
        await asyncio.sleep(0.05)
    return await agent.ahistory(thread_id)


async def test_turns_on_different_threads_still_run_concurrently(make_agent):
    """The lock is per thread: a turn stuck on one thread does not hold up another thread."""
    agent, entered, release = gated_agent(make_agent, "stuck")
    stuck = asyncio.create_task(agent.arespond("stuck", thread_id="a"))
    await asyncio.to_thread(entered.wait, 60)
    other = await asyncio.wait_for(agent.arespond("free", thread_id="b"), 60)
    assert other.text and not stuck.done()
    release.set()
    await stuck
    assert user_texts(await agent.ahistory("a")) == ["stuck"]


WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from mesa import SupportAgent
    from mesa.testing import ScriptedModel

    memory, name, barrier = sys.argv[1], sys.argv[2], Path(sys.argv[3])

    async def main():
        with SupportAgent(model=ScriptedModel(latency=0.01), memory=memory) as agent:
            (barrier / f"ready-{name}").touch()
            deadline = time.monotonic() + 120
            while not (barrier / "go").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.gather(*(agent.arespond(f"{name} {i}", thread_id="shared") for i in range(5)))

    asyncio.run(main())
    """
)


def two_processes_five_turns_each(memory: str, barrier: Path) -> None:
    """Two processes, five concurrent turns each, on one thread of ``memory``, started together."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, memory, name, str(barrier)], env=env, stderr=subprocess.PIPE, text=True)
        for name in ("A", "B")
    ]
    deadline = time.monotonic() + 300
    while not all((barrier / f"ready-{n}").exists() for n in "AB") and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    (barrier / "go").touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def assert_both_processes_kept_all_turns(history: list[Message]) -> None:
    texts = user_texts(history)
    assert sorted(texts) == sorted(f"{n} {i}" for n in "AB" for i in range(5))
    for name in "AB":  # each process's turns in the order it sent them
        assert [t for t in texts if t.startswith(name)] == [f"{name} {i}" for i in range(5)]
    assert_whole_turns(history)


@pytest.mark.slow
def test_two_processes_on_one_sqlite_thread_keep_every_turn(tmp_path):
    db = tmp_path / "shared.sqlite"
    two_processes_five_turns_each(str(db), tmp_path)
    with SupportAgent(model=ScriptedModel(), memory=db) as agent:
        assert_both_processes_kept_all_turns(agent.history("shared"))


# -- thread ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, "", "   ", "line\nbreak", "tab\there", "x" * 257, b"bytes"])
def test_bad_thread_ids_are_refused_before_anything_is_written(make_agent, bad):
    script = ScriptedModel()
    agent = make_agent(model=script)
    with pytest.raises(InvalidThreadIdError):
        agent.respond("hello", thread_id=bad)
    with pytest.raises(InvalidThreadIdError):
        list(agent.stream("hello", thread_id=bad))
    with pytest.raises(InvalidThreadIdError):
        agent.history(bad)
    assert script.calls == []  # no turn ran
    assert list(agent._memory.checkpointer.storage) == []  # nothing stored under any thread


async def test_bad_thread_ids_are_refused_by_the_async_methods_too(make_agent):
    agent = make_agent(model=ScriptedModel())
    with pytest.raises(InvalidThreadIdError):
        await agent.arespond("hello", thread_id=42)
    with pytest.raises(InvalidThreadIdError):
        [e async for e in agent.astream("hello", thread_id="")]
    with pytest.raises(InvalidThreadIdError):
        await agent.aresume(None)
    assert issubclass(InvalidThreadIdError, MesaError)


def test_no_thread_id_starts_a_new_thread_and_a_given_one_continues(make_agent):
    agent = make_agent(model=ScriptedModel())
    first = agent.respond("hello")
    second = agent.respond("again", thread_id=first.thread_id)
    assert second.thread_id == first.thread_id
    assert user_texts(agent.history(first.thread_id)) == ["hello", "again"]
    assert agent.respond("new").thread_id != first.thread_id


# -- a failed turn keeps the user's message -------------------------------------------------------


def test_a_failed_turn_keeps_the_users_message_and_the_next_turn_sees_it(make_agent):
    script = ScriptedModel(strategy=["Hug", "Hug", "Hug", "Approval"])  # the first turn never gets a valid strategy
    agent = make_agent(model=script, strict=True)  # strict: a step without a valid answer fails the turn
    with pytest.raises(StructuredOutputError):
        agent.respond("my dog died this morning", thread_id="f")
    kept = agent.history("f")
    assert [(m.role, m.text, m.unanswered) for m in kept] == [("user", "my dog died this morning", True)]
    agent.respond("are you there?", thread_id="f")
    assert "my dog died this morning" in script.calls_for("UserEmotion")[-1].prompt
    history = agent.history("f")
    assert user_texts(history) == ["my dog died this morning", "are you there?"]
    assert [m.unanswered for m in history] == [True, False, False]


def test_a_failed_streamed_turn_keeps_the_users_message(make_agent):
    agent = make_agent(model=ScriptedModel(strategy="Hug"), strict=True)
    with pytest.raises(StructuredOutputError):
        # (not "nobody listens to me": the safety classifier escalates that line, a known false alarm, docs/safety.md)
        list(agent.stream("my flatmates never listen to me", thread_id="s"))
    assert [(m.text, m.unanswered) for m in agent.history("s")] == [("my flatmates never listen to me", True)]


async def test_a_cancelled_turn_keeps_the_users_message(make_agent):
    agent = make_agent(model=ScriptedModel(latency=3600))  # a model that never answers
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(agent.arespond("is anyone there", thread_id="c"), 0.5)
    history = await history_of_length(agent, "c", 1)  # the error path runs on the agent's loop after the caller gave up
    assert [(m.text, m.unanswered) for m in history] == [("is anyone there", True)]


async def test_a_turn_cancelled_while_queued_behind_another_keeps_its_message_after_it(make_agent):
    agent, entered, release = gated_agent(make_agent, "first")
    first = asyncio.create_task(agent.arespond("first", thread_id="q"))
    await asyncio.to_thread(entered.wait, 60)
    with pytest.raises(asyncio.TimeoutError):  # the second turn gives up while waiting for the thread
        await asyncio.wait_for(agent.arespond("second, queued", thread_id="q"), 0.5)
    release.set()
    await first
    history = await history_of_length(agent, "q", 3)
    assert [(m.text, m.unanswered) for m in history if m.role == "user"] == [("first", False), ("second, queued", True)]


# -- bounded storage ------------------------------------------------------------------------------


def test_long_conversation_keeps_a_window_in_the_state_and_every_message_in_history(make_agent):
    agent = make_agent(model=ScriptedModel(), history_window=4)
    for i in range(30):
        agent.respond(f"turn {i}", thread_id="long")
    state = agent.state("long")
    assert len(state.history) == STATE_WINDOW_MIN and state.archived == 60 - STATE_WINDOW_MIN
    history = agent.history("long")
    assert user_texts(history) == [f"turn {i}" for i in range(30)]
    assert_whole_turns(history)
    checkpoints = agent._runner.run(_count_checkpoints(agent, "long"))
    assert checkpoints == 1  # older checkpoints of the thread are pruned


async def _count_checkpoints(agent: SupportAgent, thread_id: str) -> int:
    return len([s async for s in agent.graph.aget_state_history({"configurable": {"thread_id": thread_id}})])


def test_the_prompt_still_sees_the_latest_messages_after_archiving(make_agent):
    script = ScriptedModel()
    agent = make_agent(model=script, history_window=6)
    for i in range(15):
        agent.respond(f"turn {i}", thread_id="w")
    prompt = script.calls_for("UserEmotion")[-1].prompt
    assert "turn 13" in prompt and "turn 11" in prompt and "turn 2" not in prompt


def _sqlite_thread_rows(db: Path, thread_id: str) -> tuple[int, int]:
    """(checkpoint rows, bytes of the largest) of a thread in a SQLite memory file."""
    with sqlite3.connect(db) as conn:
        rows, largest = conn.execute(
            "SELECT COUNT(*), MAX(LENGTH(checkpoint)) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    return rows, largest


def test_sqlite_checkpoints_do_not_grow_with_the_conversation(make_agent, tmp_path):
    db = tmp_path / "long.sqlite"
    agent = make_agent(model=ScriptedModel(), memory=db)
    sizes = []
    for i in range(60):
        agent.respond(f"turn number {i} " + "words " * 20, thread_id="t")
        if i in (19, 59):
            sizes.append(_sqlite_thread_rows(db, "t"))
    (rows_20, bytes_20), (rows_60, bytes_60) = sizes
    assert rows_20 == rows_60 == 1
    assert bytes_60 <= bytes_20 * 1.1  # the state holds a window, not the whole conversation
    agent.close()
    with SupportAgent(model=ScriptedModel(), memory=db) as again:  # the archive is in the file too
        assert user_texts(again.history("t"))[::20] == [f"turn number {i} " + "words " * 20 for i in (0, 20, 40)]
        assert len(again.history("t")) == 120


def test_own_checkpointer_without_a_store_keeps_the_whole_history_in_the_state(make_agent):
    from langgraph.checkpoint.memory import InMemorySaver

    agent = make_agent(model=ScriptedModel(), memory=InMemorySaver())
    for i in range(15):
        agent.respond(f"turn {i}", thread_id="own")
    assert len(agent.state("own").history) == 30 and agent.state("own").archived == 0
    assert user_texts(agent.history("own")) == [f"turn {i}" for i in range(15)]


# -- files and URIs -------------------------------------------------------------------------------


def test_sqlite_memory_files_are_private(make_agent, tmp_path):
    db = tmp_path / "new" / "deeper" / "chats.sqlite"
    make_agent(model=ScriptedModel(), memory=db).respond("hello", thread_id="p")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for folder in (db.parent, db.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for extra in db.parent.glob("chats.sqlite-*"):  # WAL and shared-memory files
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra


def test_postgres_uri_is_not_taken_for_a_file_path(tmp_path, monkeypatch):
    """Without a server the URI fails as a connection, and no folder named ``postgresql:`` appears."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception) as info:  # psycopg's connection error (or MissingExtraError without the extra)
        SupportAgent(model=ScriptedModel(), memory="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert "sqlite" not in repr(info.value).lower()
    assert list(tmp_path.iterdir()) == []


# -- a closed agent -------------------------------------------------------------------------------


def _within(seconds: float, function, *args):
    """Call ``function`` in a daemon thread; a hang fails the test instead of hanging it (and the run)."""
    outcome: dict = {}

    def call():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{getattr(function, '__name__', function)} still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _raises_closed(call) -> bool:
    try:
        call()
    except AgentClosedError:
        return True
    return False


def test_every_method_of_a_closed_agent_raises_a_clear_error(tmp_path):
    agent = SupportAgent(model=ScriptedModel(), memory=tmp_path / "c.sqlite")
    agent.respond("hello", thread_id="x")
    agent.close()
    agent.close()  # closing twice is fine
    calls = {
        "respond": lambda: agent.respond("hello", thread_id="x"),
        "stream": lambda: list(agent.stream("hello", thread_id="x")),
        "resume": lambda: agent.resume("x"),
        "state": lambda: agent.state("x"),
        "history": lambda: agent.history("x"),
        "arespond": lambda: asyncio.run(agent.arespond("hello", thread_id="x")),
        "astream": lambda: asyncio.run(_drain(agent.astream("hello", thread_id="x"))),
        "aresume": lambda: asyncio.run(agent.aresume("x")),
        "ahistory": lambda: asyncio.run(agent.ahistory("x")),
        "with": lambda: agent.__enter__(),
        "context": lambda: agent.context("x"),
    }
    for name, call in calls.items():
        assert _within(30, _raises_closed, call), name


async def _drain(events):
    return [e async for e in events]


def test_closing_ends_a_turn_in_flight_with_a_clear_error(tmp_path):
    entered = threading.Event()

    async def hangs(state, runtime):
        entered.set()
        await asyncio.Event().wait()

    agent = SupportAgent(model=ScriptedModel(), graph=build_graph("stepwise", nodes_override={"select_strategy": hangs}))
    turn: concurrent.futures.Future = concurrent.futures.Future()
    threading.Thread(target=lambda: _settle(turn, agent.respond, "hello", thread_id="h"), daemon=True).start()
    assert entered.wait(60)
    _within(60, agent.close)
    with pytest.raises(AgentClosedError):
        turn.result(timeout=60)


def _settle(future: concurrent.futures.Future, function, *args, **kwargs) -> None:
    try:
        future.set_result(function(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
        future.set_exception(exc)
