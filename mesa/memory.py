"""Conversation memory: LangGraph checkpointers keyed by ``thread_id``, bounded per turn.

``SupportAgent(memory=...)`` takes

- ``None`` (default): in memory, for the life of the process;
- a path (``"chats.sqlite"``): a SQLite file, so conversations survive restarts (created 0600; a folder
  mesa creates for it is 0700);
- a Postgres URI (``"postgresql://user@host/db"`` or ``"postgres://..."``): an ``AsyncPostgresSaver`` with
  mesa's serializer, for several processes or machines (``pip install "mesa-esc[postgres]"``);
- any LangGraph checkpointer object.

Each of these is opened as a :class:`Memory`: the checkpointer, a LangGraph store where older messages
of a thread are archived (so each checkpoint holds only a window of recent messages, and storage and
time per turn do not grow with the conversation), a lock that lets one turn at a time write a thread
across processes, and pruning of a thread's older checkpoints.

mesa's state types are allow-listed in the checkpoint serializer, so they come back as Pydantic models,
not dicts, and nothing else is revived. Archived messages are stored as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from mesa.state import Message

try:
    import fcntl
except ImportError:  # not a POSIX system: only the in-process lock applies
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MESA_STATE_TYPES",
    "Memory",
    "archive_messages",
    "archived_messages",
    "check_thread_id",
    "history_namespace",
    "open_checkpointer",
    "open_memory",
    "serializer",
]

log = logging.getLogger("mesa.memory")

MESA_STATE_TYPES: tuple[tuple[str, str], ...] = tuple(
    ("mesa.state", name)
    for name in ("SupportState", "Turn", "MediaRef", "PerceptionResult", "Prediction", "SafetyAssessment", "Message", "Reply")
)
"""``(module, class)`` pairs the checkpoint serializer may revive."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_BUSY_SECONDS = 60.0  # how long a SQLite write waits for another process's write before failing
LOCK_BUCKETS = 4096  # lock files per SQLite database: threads share a file only by hash collision
_ADVISORY_LOCK_CLASS = 0x6D657361  # "mesa": keeps mesa's Postgres advisory locks apart from the application's
_READ_BATCH = 500
MAX_THREAD_ID_LENGTH = 256


def check_thread_id(thread_id: Any) -> str:
    """``thread_id`` if it can name a conversation, else :class:`~mesa.errors.InvalidThreadIdError`.

    A thread id is a non-empty printable string of at most :data:`MAX_THREAD_ID_LENGTH` characters
    (no control characters or line breaks: it ends up in file names' hashes, SQL parameters and logs).
    """
    from mesa.errors import InvalidThreadIdError

    if not isinstance(thread_id, str):
        raise InvalidThreadIdError(f"thread_id must be a string, not {type(thread_id).__name__}")
    if not thread_id.strip():
        raise InvalidThreadIdError("thread_id must not be empty (pass None to start a new thread)")
    if len(thread_id) > MAX_THREAD_ID_LENGTH:
        raise InvalidThreadIdError(f"thread_id is {len(thread_id)} characters long; at most {MAX_THREAD_ID_LENGTH}")
    if not thread_id.isprintable():
        raise InvalidThreadIdError("thread_id must be printable (no control characters or line breaks)")
    return thread_id


def serializer():
    """A LangGraph ``JsonPlusSerializer`` that revives mesa's state types."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=MESA_STATE_TYPES)


# -- the archive of older messages ----------------------------------------------------------------


def history_namespace(thread_id: str) -> tuple[str, ...]:
    """The store namespace holding a thread's archived messages (one item per message, keyed by position)."""
    return ("mesa", "history", thread_id)


def _message_key(index: int) -> str:
    return f"{index:012d}"  # zero-padded so keys sort in conversation order


async def archive_messages(store: Any, thread_id: str, first_index: int, messages: Sequence[Message]) -> None:
    """Put ``messages`` in ``store`` at positions ``first_index, first_index + 1, ...`` of the thread.

    Keys are positions, so writing the same messages again (a run that failed after archiving) is harmless.
    """
    from langgraph.store.base import PutOp

    namespace = history_namespace(thread_id)
    ops = [
        PutOp(namespace, _message_key(first_index + offset), message.model_dump(mode="json"), index=False)
        for offset, message in enumerate(messages)
    ]
    if ops:
        await store.abatch(ops)


async def archived_messages(store: Any, thread_id: str, count: int) -> list[Message]:
    """The first ``count`` messages of a thread from the archive, in order (a missing one is skipped with a warning)."""
    from langgraph.store.base import GetOp

    namespace = history_namespace(thread_id)
    messages: list[Message] = []
    for start in range(0, count, _READ_BATCH):
        keys = range(start, min(start + _READ_BATCH, count))
        items = await store.abatch([GetOp(namespace, _message_key(i)) for i in keys])
        for index, item in zip(keys, items, strict=True):
            if item is None:
                log.warning("archived message %d of thread %r is missing from the store", index, thread_id)
                continue
            messages.append(Message.model_validate(item.value))
    return messages


# -- pruning: savers that keep only a thread's latest checkpoint ----------------------------------


class PrunableInMemorySaver(InMemorySaver):
    """LangGraph's ``InMemorySaver`` with ``aprune(keep_latest)``, so a long conversation keeps one checkpoint."""

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                self._keep_latest(thread_id)

    def _keep_latest(self, thread_id: str) -> None:
        for namespace, checkpoints in list(self.storage.get(thread_id, {}).items()):
            if len(checkpoints) <= 1:
                continue
            latest = max(checkpoints)  # checkpoint ids are time-ordered
            kept = self._versions(checkpoints[latest][0])
            for checkpoint_id in [c for c in checkpoints if c != latest]:
                for channel, version in self._versions(checkpoints.pop(checkpoint_id)[0]).items():
                    if kept.get(channel) != version:
                        self.blobs.pop((thread_id, namespace, channel, version), None)
                self.writes.pop((thread_id, namespace, checkpoint_id), None)

    def _versions(self, serialized: Any) -> dict[str, Any]:
        return dict(self.serde.loads_typed(serialized).get("channel_versions", {}))


class PrunableSqliteSaver(AsyncSqliteSaver):
    """LangGraph's ``AsyncSqliteSaver`` with ``aprune(keep_latest)``: each row holds a whole state, keep one."""

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        latest = (
            "(checkpoint_ns, checkpoint_id) NOT IN "
            "(SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns)"
        )
        condition = "" if strategy == "delete" else f" AND {latest}"
        async with self.lock, self.conn.cursor() as cur:
            for thread_id in thread_ids:
                params = (str(thread_id),) if strategy == "delete" else (str(thread_id), str(thread_id))
                await cur.execute(f"DELETE FROM writes WHERE thread_id = ?{condition}", params)
                await cur.execute(f"DELETE FROM checkpoints WHERE thread_id = ?{condition}", params)
            await self.conn.commit()


# -- one writer per thread across processes -------------------------------------------------------


class _NoLock:
    """For memory only this process sees: the agent's in-process lock is enough."""

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        yield


class FileLocks:
    """Turns on one thread of a SQLite file exclude each other across processes, by ``flock`` on a lock file.

    Threads hash into :data:`LOCK_BUCKETS` files in ``<database>.mesa-locks/`` (folder 0700, files 0600), so
    the number of files stays bounded; two threads share a file only by collision (they then wait for
    each other, nothing more). The lock is polled without blocking, so a cancelled turn never leaves a
    thread waiting for the lock in the background.
    """

    def __init__(self, database: Path) -> None:
        self.folder = database.with_name(database.name + ".mesa-locks")

    def _path(self, thread_id: str) -> Path:
        bucket = int.from_bytes(hashlib.sha256(thread_id.encode()).digest()[:4], "big") % LOCK_BUCKETS
        return self.folder / f"{bucket:04d}.lock"

    def hold(self, thread_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked(self._path(thread_id))

    def hold_setup(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while creating the tables: two processes opening a new file at once would race."""
        return self._locked(self.folder / "setup.lock")

    @contextlib.asynccontextmanager
    async def _locked(self, path: Path) -> AsyncIterator[None]:
        if fcntl is None:
            yield
            return
        _make_private_folder(self.folder)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await _poll(lambda: _try_flock(fd))
            yield
        finally:
            os.close(fd)  # closing releases the lock


async def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


async def _poll(try_lock: Callable[[], Awaitable[bool]]) -> None:
    """Try a lock until it is taken, waiting 2 ms, then longer up to 50 ms, between tries.

    Polling rather than blocking: a cancelled turn stops waiting at once and leaves nothing behind.
    """
    delay = 0.002
    while not await try_lock():
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


class PostgresLocks:
    """Turns on one thread exclude each other across processes: ``pg_advisory_lock`` on a connection of the turn.

    The connection lives for the turn only, and closing it releases the lock even if the turn was cut short.
    The lock is polled with ``pg_try_advisory_lock``: a session blocked inside ``pg_advisory_lock`` keeps a
    snapshot open, and ``CREATE INDEX CONCURRENTLY`` in another process's first setup would wait for it forever.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def hold(self, thread_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locked("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (_ADVISORY_LOCK_CLASS, thread_id))

    def hold_setup(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while creating the tables: two processes migrating a new database at once would race."""
        return self._locked("SELECT pg_try_advisory_lock(%s, 0)", (_ADVISORY_LOCK_CLASS + 1,))

    @contextlib.asynccontextmanager
    async def _locked(self, query: str, params: tuple[Any, ...]) -> AsyncIterator[None]:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.uri, autocommit=True)

        async def try_lock() -> bool:
            return bool((await (await conn.execute(query, params)).fetchone())[0])

        try:
            await _poll(try_lock)
            yield
        finally:
            await conn.close()


# -- what SupportAgent(memory=...) opens ----------------------------------------------------------


class Memory:
    """An opened ``memory=``: the checkpointer, the archive store, the cross-process lock, and how to close them.

    ``store`` is ``None`` for a checkpointer you brought without a store: the whole history then stays
    in the state (nothing is lost; checkpoints grow with the conversation).
    """

    def __init__(
        self,
        checkpointer: Any,
        store: Any = None,
        *,
        locks: Any = None,
        closers: Sequence[Callable[[], Awaitable[Any]]] = (),
    ) -> None:
        self.checkpointer = checkpointer
        self.store = store
        self.locks = locks if locks is not None else _NoLock()
        self._closers = list(closers)

    def hold(self, thread_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the thread against turns of other processes (a no-op for memory only this process sees)."""
        return self.locks.hold(thread_id)

    async def prune(self, thread_id: str) -> None:
        """Keep only the thread's latest checkpoint, where the checkpointer can prune; never fails the turn."""
        prune = getattr(self.checkpointer, "aprune", None)
        if prune is None:
            return
        try:
            await prune([thread_id], strategy="keep_latest")
        except NotImplementedError:
            return
        except Exception:
            log.warning("could not prune old checkpoints of thread %r", thread_id, exc_info=True)

    async def history(self, thread_id: str, window: Sequence[Message], archived: int) -> list[Message]:
        """The whole conversation: the ``archived`` first messages from the store, then the state's window."""
        earlier = await archived_messages(self.store, thread_id, archived) if self.store is not None and archived else []
        return [*earlier, *window]

    async def aclose(self) -> None:
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            await close()


def _make_private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents as 0700; existing folders are left as they are."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)


def _create_private_file(path: Path) -> None:
    """Create ``path`` as 0600 before SQLite opens it (SQLite would make it world-readable under umask 022)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def is_postgres_uri(memory: Any) -> bool:
    return isinstance(memory, str) and memory.startswith(POSTGRES_SCHEMES)


async def _open_sqlite(path: Path) -> Memory:
    import aiosqlite
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    path = path.expanduser()
    _make_private_folder(path.parent)
    _create_private_file(path)
    saver_conn = await aiosqlite.connect(str(path), timeout=SQLITE_BUSY_SECONDS)
    # The store runs its own BEGIN/COMMIT, so its connection must not open transactions implicitly.
    store_conn = await aiosqlite.connect(str(path), timeout=SQLITE_BUSY_SECONDS, isolation_level=None)
    saver = PrunableSqliteSaver(saver_conn, serde=serializer())
    return await _set_up(saver, AsyncSqliteStore(store_conn), FileLocks(path), [saver_conn.close, store_conn.close])


async def _open_postgres(uri: str) -> Memory:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool
    except ImportError as exc:
        from mesa.errors import MissingExtraError

        raise MissingExtraError("Postgres memory", "postgres", exc.name) from exc

    pool = AsyncConnectionPool(
        uri, kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}, open=False, max_size=20
    )
    await pool.open()
    saver = AsyncPostgresSaver(pool, serde=serializer())
    return await _set_up(saver, AsyncPostgresStore(pool), PostgresLocks(uri), [pool.close])


async def _set_up(saver: Any, store: Any, locks: Any, closers: list[Callable[[], Awaitable[Any]]]) -> Memory:
    """Create the tables under the setup lock (two processes opening a new database at once would race)."""
    try:
        async with locks.hold_setup():
            await saver.setup()
            await store.setup()
    except BaseException:
        for close in closers:
            await close()
        raise
    return Memory(saver, store, locks=locks, closers=closers)


async def open_memory(memory: Any = None, store: Any = None) -> Memory:
    """Open a ``memory=`` argument (see the module docs); ``store`` overrides the archive store.

    Must run on the event loop that will use it.
    """
    if memory is None or memory == ":memory:":
        from langgraph.store.memory import InMemoryStore

        return Memory(PrunableInMemorySaver(serde=serializer()), store if store is not None else InMemoryStore())
    if is_postgres_uri(memory):
        opened = await _open_postgres(memory)
    elif isinstance(memory, (str, Path)):
        opened = await _open_sqlite(Path(memory))
    else:
        with_allowlist = getattr(memory, "with_allowlist", None)
        checkpointer = with_allowlist(MESA_STATE_TYPES) if callable(with_allowlist) else memory
        return Memory(checkpointer, store)
    if store is not None:
        opened.store = store
    return opened


async def open_checkpointer(memory: Any) -> tuple[Any, Any]:
    """The checkpointer for a ``memory`` argument, and a closer (an async callable or ``None``).

    Kept for code that wants only the checkpointer; :func:`open_memory` also gives the archive and locks.
    """
    opened = await open_memory(memory)
    return opened.checkpointer, opened.aclose
