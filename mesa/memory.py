"""Conversation memory: LangGraph checkpointers keyed by ``thread_id``.

``SupportAgent(memory=...)`` takes

- ``None`` (default): in memory, for the life of the process;
- a path (``"chats.sqlite"``): a SQLite file, so conversations survive restarts;
- any LangGraph checkpointer object (e.g. ``AsyncPostgresSaver`` for several processes).

mesa's state types are allow-listed in the checkpoint serializer, so they come
back as Pydantic models, not dicts, and nothing else is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["MESA_STATE_TYPES", "open_checkpointer", "serializer"]

MESA_STATE_TYPES: tuple[tuple[str, str], ...] = tuple(
    ("mesa.state", name)
    for name in ("SupportState", "Turn", "MediaRef", "PerceptionResult", "Prediction", "SafetyAssessment", "Message", "Reply")
)
"""``(module, class)`` pairs the checkpoint serializer may revive."""


def serializer():
    """A LangGraph ``JsonPlusSerializer`` that revives mesa's state types."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=MESA_STATE_TYPES)


async def open_checkpointer(memory: Any) -> tuple[Any, Any]:
    """The checkpointer for a ``memory`` argument, and a closer (an async callable or ``None``).

    Must run on the event loop that will use the checkpointer.
    """
    if memory is None or memory == ":memory:":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver(serde=serializer()), None
    if isinstance(memory, (str, Path)):
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        path = Path(memory).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(str(path))
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
        return saver, conn.close
    with_allowlist = getattr(memory, "with_allowlist", None)
    if callable(with_allowlist):
        memory = with_allowlist(MESA_STATE_TYPES)
    return memory, None
