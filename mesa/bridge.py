"""The one sync-over-async bridge: an event loop in a daemon thread.

mesa writes each body once, async; its sync twin is one line, ``return run_sync(self.a<method>(...))``
(as pydantic-ai's ``run_sync`` wraps ``run``). :func:`run_sync` runs coroutines on one shared loop,
started on first use, so LiteLLM's clients and every deadline behave as on any loop. A
:class:`~mesa.SupportAgent` runs its turns on a :class:`LoopThread` of its own, the same class.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["END", "LoopThread", "iterate_sync", "next_or_end", "run_sync"]

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread; coroutines from any thread (or any other loop) run on it."""

    def __init__(self, name: str = "mesa-sync") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def stopped_error(self) -> Exception:
        """The error a call to a stopped loop gets (it would never run, so an error, not a hang)."""
        return RuntimeError(f"the event loop of thread {self.thread.name} is stopped")

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop."""
        if not self.thread.is_alive() or self.loop.is_closed():
            coro.close()
            raise self.stopped_error()
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end and return its result, from sync code on another thread."""
        if threading.current_thread() is self.thread:
            coro.close()  # waiting here would wait for ourselves forever
            raise RuntimeError("a sync mesa method was called from inside its own event loop; await its async twin")
        return self.submit(coro).result()

    def stop(self) -> None:
        """Cancel what is still pending on the loop (e.g. LiteLLM's logging worker), then stop it."""
        if not self.thread.is_alive():
            return

        async def cancel_pending() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_pending(), self.loop).result(timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from sync code, on the one shared background loop."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread("mesa-sync")
    return _shared.run(coro)


END = object()
"""What :func:`next_or_end` returns at the end of a stream."""


async def next_or_end(stream: AsyncIterator[Any]) -> Any:
    """The next item of ``stream``, or :data:`END` (an ``await`` that cannot raise ``StopAsyncIteration``)."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return END


def iterate_sync(stream: AsyncIterator[T]) -> Iterator[T]:
    """The items of an async iterator, for sync code (each step runs through :func:`run_sync`)."""
    try:
        while (item := run_sync(next_or_end(stream))) is not END:
            yield item
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            run_sync(closer())
