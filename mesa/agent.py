"""``SupportAgent``: the few-lines facade over a compiled SMES graph.

```python
from mesa import SupportAgent

agent = SupportAgent()                                  # embedded offline model, no key
reply = agent.respond("I failed my exam and I feel worthless.", thread_id="u1")
print(reply.user_emotion.label, reply.strategy.label, reply.text)
```

Every run happens on one event loop the agent owns (a daemon thread), so the
sync and async methods share the same checkpointer and models safely. Turns on
one ``thread_id`` run one at a time (in this process by a lock per thread, across
processes by the memory's lock), so none is lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import queue
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel

from mesa.bridge import LoopThread
from mesa.errors import AgentClosedError, TurnTimeoutError
from mesa.graphs.context import DemonstrationSource, LabelClassifier, SupportContext
from mesa.llm import LLM
from mesa.prompts import PromptSet
from mesa.state import (
    MAX_TEXT_CHARS,
    MediaRef,
    Message,
    PerceptionResult,
    Prediction,
    Reply,
    SafetyAssessment,
    SupportState,
    Turn,
)
from mesa.taxonomy import Taxonomy, get_taxonomy

__all__ = ["StreamEvent", "SupportAgent"]

T = TypeVar("T")
_DONE = object()
log = logging.getLogger("mesa.agent")
_CLOSED = "this SupportAgent is closed; create a new one (or keep using it inside its `with` block)"

_SETTING_NAMES = frozenset(f.name for f in fields(SupportContext)) - {"thread_id", "extras"}
"""The agent's settings, read as ``agent.<name>`` from ``agent.settings`` (one frozen ``SupportContext``)."""

DEFAULT_TURN_TIMEOUT = 120.0
"""Seconds a whole turn may take (``SupportAgent(turn_timeout=...)``): two slow model calls' worth."""


class StreamEvent(BaseModel):
    """One event of ``SupportAgent.stream``.

    ``type`` is ``"perception"`` (one cue's result; ``cue`` names it), ``"safety"`` (the risk
    assessment), ``"stage"`` (``stage`` is ``user_emotion``, ``strategy`` or
    ``system_emotion``, with its ``prediction``), ``"token"`` (a piece of the reply
    in ``text``) or, last, ``"reply"`` (the whole :class:`~mesa.state.Reply`).
    """

    type: Literal["perception", "safety", "stage", "token", "reply"]
    stage: str | None = None
    cue: str | None = None
    text: str | None = None
    prediction: Prediction | None = None
    safety: SafetyAssessment | None = None
    perception: PerceptionResult | None = None
    reply: Reply | None = None

    @classmethod
    def from_custom(cls, event: dict[str, Any]) -> StreamEvent | None:
        kind = event.get("type")
        if kind == "stage":
            return cls(type="stage", stage=event["stage"], prediction=Prediction.model_validate(event["prediction"]))
        if kind == "token":
            return cls(type="token", text=event["text"])
        if kind == "safety":
            return cls(type="safety", safety=SafetyAssessment.model_validate(event["safety"]))
        if kind == "perception":
            return cls(type="perception", cue=event.get("cue"), perception=PerceptionResult.model_validate(event["result"]))
        return None


class _LoopThread(LoopThread):
    """The agent's own loop thread (:class:`mesa.bridge.LoopThread`): a run cut short by ``close`` ends in
    :class:`~mesa.errors.AgentClosedError`."""

    def __init__(self) -> None:
        super().__init__("mesa-agent-loop")
        self.closing = False  # set by SupportAgent.close: a run cancelled from now on ends in AgentClosedError

    def stopped_error(self) -> Exception:
        return AgentClosedError(_CLOSED)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("SupportAgent's sync methods cannot be called from inside its own graph run")
        try:
            return super().run(coro)
        except concurrent.futures.CancelledError:
            if self.closing:
                raise AgentClosedError(_CLOSED) from None
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await asyncio.wrap_future(self.submit(coro))
        except asyncio.CancelledError:
            if self.closing:
                raise AgentClosedError(_CLOSED) from None
            raise


class _ThreadLocks:
    """One ``asyncio.Lock`` per thread that has turns running or waiting, on the agent's loop.

    An entry leaves the table with its last user, so the table holds only the threads active right now.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        lock, users = self._entries.setdefault(thread_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._entries[thread_id]


class SupportAgent:
    """An emotional-support agent: the SMES chain on any LiteLLM model.

    Args:
        model: a LiteLLM model string (``"openai/gpt-4o-mini"``, ``"ollama_chat/llama3.1"``, ...),
            an :class:`~mesa.llm.LLM`, a LiteLLM ``Router`` or a :class:`~mesa.testing.ScriptedModel`.
            Default: the embedded offline model ``mesa-local/smollm2`` (tiny; for trying things out).
        mode: ``"stepwise"`` (one call per step) or ``"fused"`` (one call for the whole chain),
            or a mode added with :func:`mesa.graphs.register_graph_mode`.
        taxonomy: ``"mesc"``, ``"esconv"``, a registered name or a :class:`~mesa.taxonomy.Taxonomy`.
        prompts: a :class:`~mesa.prompts.PromptSet`, a folder of ``<step>.md`` files, or ``None``.
        perception: ``None`` (text only), ``"default"`` (backends of the installed extras),
            a ``mesa.tools.Perception``, or backend names.
        safety: a ``mesa.safety.SafetyPolicy``; default ``SafetyPolicy.default()``. It cannot be turned off here.
        memory: ``None`` (in memory), a SQLite file path, a Postgres URI (``"postgresql://..."``),
            or any LangGraph checkpointer. See ``docs/concepts/memory.md``.
        store: a LangGraph ``BaseStore`` for the older messages of long conversations. Default: one that
            matches ``memory`` (in memory, the SQLite file, the Postgres database); with your own
            checkpointer and no store, the whole history stays in the state.
        history_window: how many earlier messages the prompts see.
        demonstrations: a source of similar labelled turns shown as few-shot examples (see ``mesa.eval``).
        n_demonstrations: how many demonstrations each prompt gets.
        classifier: a small supervised model for emotion and/or strategy (see ``mesa.eval``); ``"auto"``
            (default) uses the model ``mesa train`` stored for the taxonomy if there is one, ``None`` none.
        classifier_use: ``"prior"`` (the LLM sees its distribution) or ``"step"`` (it decides). Either way a
            classifier that predicts the counsellor's emotion decides that label (it learned the corpus's base
            rates); the taxonomy's rule then settles it (``mesa.taxonomy.system_emotion_rule``).
        cache: ``True``, a folder, or a ``mesa.cache.DiskCache``: label steps with the same inputs
            are answered from disk.
        graph: your own uncompiled ``StateGraph`` (of ``SupportState``) instead of a mode's.
        turn_timeout: seconds a whole turn may take (default 120); past it
            :class:`~mesa.errors.TurnTimeoutError`. ``None``: no turn deadline.
        call_timeout: seconds each model call may take; ``None``: the model's own ``LLM(timeout=...)``
            (60 s by default). A late label step leaves its label absent (see ``strict``).
        strict: ``True``: a label step without a valid answer (re-asks exhausted, cut by ``max_tokens``,
            a deadline) fails the turn; ``False`` (default): that label is ``None``, noted in
            ``Reply.failed_steps``, and the turn is still answered.
        max_input_chars: the longest user text accepted, in characters (default 16 000); longer raises
            :class:`~mesa.errors.InputTooLargeError` before any model call or write. ``None``: no limit.

    The settings a run depends on are kept in one frozen :class:`~mesa.graphs.SupportContext`,
    ``agent.settings``: each turn's context is it with the turn's ``thread_id``, the label cache's key is
    derived from it (``SupportContext.answer_fingerprint``), and ``agent.llm``, ``agent.taxonomy``, ... read it.
    Change one with ``agent.settings = dataclasses.replace(agent.settings, ...)``.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        mode: str = "stepwise",
        taxonomy: str | Taxonomy = "mesc",
        prompts: PromptSet | str | Path | None = None,
        perception: Any = None,
        safety: Any = None,
        memory: Any = None,
        store: Any = None,
        history_window: int = 8,
        demonstrations: DemonstrationSource | None = None,
        n_demonstrations: int = 4,
        classifier: LabelClassifier | Literal["auto"] | None = "auto",
        classifier_use: Literal["prior", "step"] = "prior",
        cache: Any = None,
        graph: Any = None,
        turn_timeout: float | None = DEFAULT_TURN_TIMEOUT,
        call_timeout: float | None = None,
        strict: bool = False,
        max_input_chars: int | None = MAX_TEXT_CHARS,
    ) -> None:
        from mesa.eval.store import resolve_classifier
        from mesa.graphs.smes import build_graph

        self.turn_timeout = turn_timeout
        self.mode = mode
        settings = SupportContext(
            llm=LLM.from_model(model),  # not MESA_MODEL: that is the server's default, not an embedder's
            call_timeout=call_timeout,
            taxonomy=get_taxonomy(taxonomy),
            prompts=prompts if isinstance(prompts, PromptSet) or prompts is None else PromptSet.from_dir(prompts),
            perception=self._resolve_perception(perception),
            safety=safety if safety is not None else self._default_safety(),
            history_window=history_window,
            demonstrations=demonstrations,
            n_demonstrations=n_demonstrations,
            classifier_use=classifier_use,
            strict=strict,
            max_input_chars=max_input_chars,
        )
        self.settings: SupportContext = replace(settings, classifier=resolve_classifier(classifier, settings.taxonomy))
        self._scope: tuple[SupportContext | None, str] = (None, "")
        self._cache = self._resolve_cache(cache)
        cache_policy = self._cache_policy() if self._cache is not None else None
        self.builder = graph if graph is not None else build_graph(mode, cache_policy=cache_policy)
        self._memory_spec = memory
        self._store_spec = store
        self._memory: Any = None
        self._locks = _ThreadLocks()
        self._turns: set[asyncio.Task] = set()  # turns running or waiting for their thread, for close()
        self._closed = False
        self._runner = _LoopThread()
        weakref.finalize(self, self._runner.stop)
        try:
            self.graph = self._runner.run(self._compile())
        except BaseException:
            self._runner.stop()  # a memory that cannot be opened leaves no loop thread behind
            raise

    # -- construction helpers ------------------------------------------------------------------

    @staticmethod
    def _resolve_perception(spec: Any):
        if spec is None:
            return None
        from mesa.tools import resolve_perception

        return resolve_perception(spec)

    @staticmethod
    def _default_safety():
        from mesa.safety import SafetyPolicy

        return SafetyPolicy.default()

    @staticmethod
    def _resolve_cache(cache: Any):
        if cache is None or cache is False:
            return None
        from mesa.cache import DiskCache, resolve_cache

        return resolve_cache(cache, DiskCache)

    def __getattr__(self, name: str) -> Any:
        # agent.llm, agent.taxonomy, agent.classifier, ...: read from the one settings object
        if name in _SETTING_NAMES and "settings" in self.__dict__:
            return getattr(self.settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SETTING_NAMES:
            raise AttributeError(f"agent.{name} is a setting: set agent.settings = dataclasses.replace(agent.settings, {name}=...)")
        super().__setattr__(name, value)

    def _cache_scope(self) -> str:
        """The digest of the settings that can change a label (see ``SupportContext.answer_fingerprint``)."""
        settings = self.settings
        if self._scope[0] is not settings:  # computed once per settings object: it may hash a classifier's weights
            self._scope = (settings, settings.answer_fingerprint(self.mode))
        return self._scope[1]

    def _cache_policy(self):
        from langgraph.types import CachePolicy

        self._cache_scope()  # now, not on the event loop at the first cached step
        agent = weakref.ref(self)  # the graph must not keep the agent alive

        def key(state: Any) -> str:
            data = state.model_dump(include={"turn", "history", "perception", "user_emotion", "strategy"}, mode="json")
            blob = agent()._cache_scope() + repr(sorted(data.items()))
            return hashlib.sha256(blob.encode()).hexdigest()

        return CachePolicy(key_func=key)

    async def _compile(self):
        from mesa.graphs.smes import compile_graph
        from mesa.memory import open_memory

        self._memory = await open_memory(self._memory_spec, self._store_spec)
        return compile_graph(self.builder, checkpointer=self._memory.checkpointer, store=self._memory.store, cache=self._cache)

    def context(self, thread_id: str | None = None) -> SupportContext:
        """The runtime context this agent passes to its graph."""
        self._check_open()
        return replace(self.settings, thread_id=thread_id)

    # -- running -------------------------------------------------------------------------------

    @staticmethod
    def _input(turn: Turn, history: list[Message] | None) -> dict[str, Any]:
        fresh: dict[str, Any] = {
            "turn": turn,
            "perception": {},
            "safety": None,
            "user_emotion": None,
            "strategy": None,
            "system_emotion": None,
            "response": None,
            "timings": {},
            "failed_steps": {},
        }
        if history:
            fresh["history"] = [m if isinstance(m, Message) else Message.model_validate(m) for m in history]
        return fresh

    def _reply(self, values: Any, thread_id: str, total: float, interrupts: Any = ()) -> Reply:
        get = values.get if isinstance(values, dict) else lambda k, d=None: getattr(values, k, d)
        timings = dict(get("timings") or {})
        if not interrupts and isinstance(values, dict):
            interrupts = values.get("__interrupt__") or ()
        timings["total"] = round(total, 4)
        return Reply(
            text=get("response") or "",
            user_emotion=get("user_emotion"),
            strategy=get("strategy"),
            system_emotion=get("system_emotion"),
            safety=get("safety"),
            perception=get("perception") or {},
            timings=timings,
            failed_steps=dict(get("failed_steps") or {}),
            thread_id=thread_id,
            mode=self.mode,
            interrupts=[getattr(i, "value", i) for i in interrupts],
        )

    def _config(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    @contextlib.asynccontextmanager
    async def _turn_of(self, thread_id: str, turn: Turn | None) -> AsyncIterator[None]:
        """Hold the thread for one turn (here and across processes); keep the user's message if the turn fails."""
        task = asyncio.current_task()
        self._turns.add(task)
        started = False
        try:
            async with self._locks.hold(thread_id), self._memory.hold(thread_id):
                started = True
                try:
                    yield
                except (Exception, asyncio.CancelledError):
                    await self._keep_unanswered(thread_id, turn)
                    raise
                await self._memory.prune(thread_id)
        except asyncio.CancelledError:
            if not started and turn is not None and not self._runner.closing:
                self._keep_when_free(thread_id, turn)  # cancelled while queued behind another turn
            raise
        finally:
            self._turns.discard(task)

    def _keep_when_free(self, thread_id: str, turn: Turn) -> None:
        """Keep a queued turn's user message once the thread is free, without making the caller wait for it."""

        async def keep() -> None:
            async with self._locks.hold(thread_id), self._memory.hold(thread_id):
                await self._keep_unanswered(thread_id, turn)

        task = asyncio.get_running_loop().create_task(keep())
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)

    async def _keep_unanswered(self, thread_id: str, turn: Turn | None) -> None:
        """Append the failed turn's user message, marked ``unanswered``, so the next turn sees it."""
        from mesa.graphs.nodes import user_text

        config = self._config(thread_id)
        try:
            state = SupportState.model_validate((await self.graph.aget_state(config)).values or {})
            turn = turn or state.turn  # a resumed turn: the one the thread was paused on
            if not turn.modalities():
                return
            text = user_text(state) if state.turn == turn else turn.text
            message = Message(
                role="user",
                text=text or f"[{', '.join(turn.modalities())}]",
                emotion=state.user_emotion.label if state.user_emotion and state.turn == turn else None,
                unanswered=True,
            )
            as_node = "finish_turn" if "finish_turn" in self.graph.nodes else None
            await self.graph.aupdate_state(config, {"history": [message]}, as_node=as_node)
        except Exception:
            log.warning("could not keep the user's message of a failed turn on thread %r", thread_id, exc_info=True)

    @contextlib.asynccontextmanager
    async def _turn_deadline(self) -> AsyncIterator[None]:
        """The whole turn's deadline: past it, :class:`TurnTimeoutError` (other timeouts pass through)."""
        try:
            async with asyncio.timeout(self.turn_timeout) as deadline:
                yield
        except TimeoutError as exc:
            if not deadline.expired():
                raise  # not the turn's deadline (a model call's, under strict=True)
            message = f"the turn took longer than {self.turn_timeout} s (SupportAgent(turn_timeout=...))"
            raise TurnTimeoutError(message, seconds=self.turn_timeout or 0.0) from exc

    async def _run(self, graph_input: Any, thread_id: str, turn: Turn | None = None) -> Reply:
        from mesa.graphs.nodes import tokens_unheard

        start = time.perf_counter()
        # nobody hears this run's tokens: the fused turn asks for its answer unstreamed (less CPU per turn)
        async with self._turn_of(thread_id, turn), self._turn_deadline():
            with tokens_unheard():
                values = await self.graph.ainvoke(
                    graph_input, self._config(thread_id), context=self.context(thread_id), durability="exit"
                )
        return self._reply(values, thread_id, time.perf_counter() - start)

    async def _events(self, turn: Turn, thread_id: str, history: list[Message] | None) -> AsyncIterator[StreamEvent]:
        start = time.perf_counter()
        config = self._config(thread_id)
        async with self._turn_of(thread_id, turn):
            async for event in self.graph.astream(
                self._input(turn, history), config, context=self.context(thread_id), stream_mode="custom", durability="exit"
            ):
                parsed = StreamEvent.from_custom(event) if isinstance(event, dict) else None
                if parsed is not None:
                    yield parsed
            snapshot = await self.graph.aget_state(config)
        interrupts = [i for task in snapshot.tasks for i in task.interrupts]
        yield StreamEvent(type="reply", reply=self._reply(snapshot.values, thread_id, time.perf_counter() - start, interrupts))

    async def _pump(self, turn: Turn, thread_id: str, history: list[Message] | None, put: Any) -> None:
        """Run a turn on the agent's loop, handing each event (or the error), then ``_DONE``, to ``put``."""
        try:
            async with self._turn_deadline():
                async for event in self._events(turn, thread_id, history):
                    put(event)
        except asyncio.CancelledError:
            put(AgentClosedError(_CLOSED) if self._runner.closing else asyncio.CancelledError())
            raise
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread or task
            put(exc)
        finally:
            put(_DONE)

    def _check_open(self) -> None:
        if self._closed:
            raise AgentClosedError(_CLOSED)

    def _thread(self, thread_id: Any, *, new: bool = True) -> str:
        """A checked thread id (``None`` starts a new thread where ``new``), before anything is written."""
        from mesa.memory import check_thread_id

        self._check_open()
        if thread_id is None and new:
            return uuid.uuid4().hex
        return check_thread_id(thread_id)

    def _turn(self, text: str | None, audio: Any, video: Any, image: Any) -> Turn:
        # Media files are not opened here: perception checks each against its media policy first, then hashes it.
        return Turn.from_inputs(text, audio=audio, video=video, image=image, max_chars=self.max_input_chars, hash_media=False)

    def respond(
        self,
        text: str | None = None,
        *,
        audio: str | Path | MediaRef | None = None,
        video: str | Path | MediaRef | None = None,
        image: str | Path | MediaRef | None = None,
        thread_id: str | None = None,
        history: list[Message] | None = None,
    ) -> Reply:
        """Answer one user turn. ``thread_id`` keeps the conversation; ``history`` seeds a new thread.

        Turns on one thread run one at a time. If the turn fails, the user's message stays in the
        thread's history (marked ``unanswered``) and the error is raised.
        """
        thread_id = self._thread(thread_id)
        turn = self._turn(text, audio, video, image)
        return self._runner.run(self._run(self._input(turn, history), thread_id, turn))

    async def arespond(
        self,
        text: str | None = None,
        *,
        audio: str | Path | MediaRef | None = None,
        video: str | Path | MediaRef | None = None,
        image: str | Path | MediaRef | None = None,
        thread_id: str | None = None,
        history: list[Message] | None = None,
    ) -> Reply:
        """Async twin of :meth:`respond`."""
        thread_id = self._thread(thread_id)
        turn = self._turn(text, audio, video, image)
        return await self._runner.arun(self._run(self._input(turn, history), thread_id, turn))

    def resume(self, thread_id: str, value: Any = None) -> Reply:
        """Resume a turn that a node paused with ``interrupt()``; ``value`` is what ``interrupt()`` returns."""
        from langgraph.types import Command

        thread_id = self._thread(thread_id, new=False)
        return self._runner.run(self._run(Command(resume=value), thread_id))

    async def aresume(self, thread_id: str, value: Any = None) -> Reply:
        """Async twin of :meth:`resume`."""
        from langgraph.types import Command

        thread_id = self._thread(thread_id, new=False)
        return await self._runner.arun(self._run(Command(resume=value), thread_id))

    def stream(
        self,
        text: str | None = None,
        *,
        audio: str | Path | MediaRef | None = None,
        video: str | Path | MediaRef | None = None,
        image: str | Path | MediaRef | None = None,
        thread_id: str | None = None,
        history: list[Message] | None = None,
    ) -> Iterator[StreamEvent]:
        """Events of one turn: perception, safety, each stage as decided, reply tokens, then the reply."""
        thread_id = self._thread(thread_id)
        turn = self._turn(text, audio, video, image)
        inbox: queue.Queue = queue.Queue()
        future = self._runner.submit(self._pump(turn, thread_id, history, inbox.put))
        while (item := inbox.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
        future.result()

    async def astream(
        self,
        text: str | None = None,
        *,
        audio: str | Path | MediaRef | None = None,
        video: str | Path | MediaRef | None = None,
        image: str | Path | MediaRef | None = None,
        thread_id: str | None = None,
        history: list[Message] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Async twin of :meth:`stream`."""
        thread_id = self._thread(thread_id)
        turn = self._turn(text, audio, video, image)
        inbox: asyncio.Queue = asyncio.Queue()
        caller = asyncio.get_running_loop()
        future = self._runner.submit(
            self._pump(turn, thread_id, history, lambda item: caller.call_soon_threadsafe(inbox.put_nowait, item))
        )
        while (item := await inbox.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
        await asyncio.wrap_future(future)

    # -- memory --------------------------------------------------------------------------------

    async def _state(self, thread_id: str) -> SupportState:
        snapshot = await self.graph.aget_state(self._config(thread_id))
        return SupportState.model_validate(snapshot.values or {})

    def state(self, thread_id: str) -> SupportState:
        """The graph state of a thread as it stands (an empty state for an unknown thread).

        Its ``history`` is the recent window the state keeps; :meth:`history` has the whole conversation.
        """
        return self._runner.run(self._state(self._thread(thread_id, new=False)))

    async def _history(self, thread_id: str) -> list[Message]:
        state = await self._state(thread_id)
        return await self._memory.history(thread_id, state.history, state.archived)

    def history(self, thread_id: str) -> list[Message]:
        """The messages of a thread so far, oldest first, archived ones included (empty for an unknown thread)."""
        return self._runner.run(self._history(self._thread(thread_id, new=False)))

    async def ahistory(self, thread_id: str) -> list[Message]:
        """Async twin of :meth:`history`."""
        return await self._runner.arun(self._history(self._thread(thread_id, new=False)))

    def close(self) -> None:
        """End running turns, close the memory's connections and stop the agent's event loop.

        Every method of a closed agent raises :class:`~mesa.errors.AgentClosedError`; closing twice is fine.
        """
        if self._closed:
            return
        self._closed = True
        self._runner.closing = True
        try:
            self._runner.run(self._shutdown())
        finally:
            self._runner.stop()

    async def _shutdown(self) -> None:
        """Cancel the turns still running (their user messages are kept), then close the memory.

        Other tasks on the loop (connection pools' workers, LiteLLM's logger) are left to the memory's
        own closing and then to ``_LoopThread.stop``.
        """
        turns = list(self._turns)
        for task in turns:
            task.cancel()
        await asyncio.gather(*turns, return_exceptions=True)
        if self._memory is not None:
            await self._memory.aclose()

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
