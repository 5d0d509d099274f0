"""Cancellation that frees a backend: a timed-out call stops, or is left behind, and never blocks the next one.

A backend call runs in a worker thread (:func:`run_cancellable`). When the caller gives up (the
perception timeout cancels the awaiting task), the call's :class:`CancelToken` is set:

- a cooperative backend stops at its next :func:`check_cancelled` (faster-whisper between
  segments, the face backends between frames) and releases its lock and its CPU;
- a call waiting for the backend's lock gives up as soon as its own caller gave up;
- a timed-out call that does not stop within ``grace`` seconds (a backend that never checks)
  is left behind: :class:`CallLock` hands the next call a fresh lock and the backend drops its
  model, so the next call loads its own instead of waiting (the abandoned call keeps its CPU
  until it returns; its result is discarded).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

from mesa.errors import CallCancelledError

__all__ = ["CallCancelledError", "CallLock", "CancelToken", "check_cancelled", "run_cancellable"]

T = TypeVar("T")

_POLL = 0.05  # seconds between looks at the tokens while waiting for the lock


class CancelToken:
    """Set when the caller of one backend call has given up on it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.cancelled_at: float | None = None

    def cancel(self) -> None:
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


_CURRENT: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar("mesa_backend_call", default=None)


def current_token() -> CancelToken | None:
    """The token of the backend call running in this thread (``None`` for a plain sync call)."""
    return _CURRENT.get()


def check_cancelled() -> None:
    """Stop here if the caller gave up: raises :class:`CallCancelledError`. Backends call it between units
    of work (segments, frames), so a timed-out call frees the model, its lock and the CPU."""
    token = _CURRENT.get()
    if token is not None and token.cancelled:
        raise CallCancelledError("the caller gave up on this backend call")


async def run_cancellable(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread; if the awaiting task is cancelled (a timeout), the call's
    token is set so the worker stops at its next :func:`check_cancelled`."""
    token = CancelToken()
    reset = _CURRENT.set(token)  # asyncio.to_thread copies this context into the worker
    try:
        return await asyncio.to_thread(function, *args)
    except asyncio.CancelledError:
        token.cancel()
        raise
    finally:
        _CURRENT.reset(reset)


class CallLock:
    """The reentrant lock that serialises calls on one backend's model, made so that a timed-out call frees it.

    A waiting call gives up when its own caller gave up. When the holder's caller gave up and the holder
    has not released the lock ``grace`` seconds later, the holder is left behind: ``on_abandon`` runs
    (the backend drops its model) and the waiting call takes a fresh lock.
    """

    def __init__(self, grace: float = 5.0, on_abandon: Callable[[], None] | None = None) -> None:
        self.grace = grace
        self._on_abandon = on_abandon
        self._guard = threading.Lock()
        self._inner = threading.Lock()
        self._holder: CancelToken | None = None
        self._held = threading.local()  # per thread: the inner lock it holds and how deep

    def __enter__(self) -> Self:
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            return self
        token = current_token()
        while True:
            inner = self._inner
            if inner.acquire(timeout=_POLL):
                with self._guard:
                    if inner is self._inner:
                        self._holder = token
                        self._held.inner, self._held.depth = inner, 1
                        return self
                inner.release()  # the lock was replaced while we took the old one: start again
                continue
            if token is not None and token.cancelled:
                raise CallCancelledError("gave up waiting for the backend")
            self._leave_behind_a_stuck_holder(inner)

    def __exit__(self, *exc: object) -> None:
        self._held.depth -= 1
        if self._held.depth:
            return
        inner = self._held.inner
        self._held.inner = None
        with self._guard:
            if inner is self._inner:
                self._holder = None
        inner.release()

    def _leave_behind_a_stuck_holder(self, inner: threading.Lock) -> None:
        with self._guard:
            holder = self._holder
            if inner is not self._inner or holder is None or holder.cancelled_at is None:
                return
            if time.monotonic() - holder.cancelled_at < self.grace:
                return
            self._inner = threading.Lock()
            self._holder = None
            if self._on_abandon is not None:  # under the guard: no call gets the new lock and the old model
                self._on_abandon()

    # threading.Lock-like helpers (some callers use acquire/release directly)
    def acquire(self) -> bool:
        self.__enter__()
        return True

    def release(self) -> None:
        self.__exit__(None, None, None)
