"""``SupportAgent``: the few-lines facade over a compiled SMES graph.

```python
from mesa import SupportAgent

agent = SupportAgent()                                  # embedded offline model, no key
reply = agent.respond("I failed my exam and I feel worthless.", thread_id="u1")
print(reply.user_emotion.label, reply.strategy.label, reply.text)
```

Every run happens on one event loop the agent owns (a daemon thread), so the
sync and async methods share the same checkpointer and models safely.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from mesa.errors import TurnTimeoutError
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

DEFAULT_TURN_TIMEOUT = 120.0
"""Seconds a whole turn may take (``SupportAgent(turn_timeout=...)``): two slow model calls' worth."""


class StreamEvent(BaseModel):
    """One event of ``SupportAgent.stream``.

    ``type`` is ``"perception"`` (one cue's result), ``"safety"`` (the risk
    assessment), ``"stage"`` (``stage`` is ``user_emotion``, ``strategy`` or
    ``system_emotion``, with its ``prediction``), ``"token"`` (a piece of the reply
    in ``text``) or, last, ``"reply"`` (the whole :class:`~mesa.state.Reply`).
    """

    type: Literal["perception", "safety", "stage", "token", "reply"]
    stage: str | None = None
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
            return cls(type="perception", stage=event.get("cue"), perception=PerceptionResult.model_validate(event["result"]))
        return None


class _LoopThread:
    """An event loop in a daemon thread; coroutines from any thread or loop run on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mesa-agent-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("SupportAgent's sync methods cannot be called from inside its own graph run")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

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
        memory: ``None`` (in memory), a SQLite file path, or any LangGraph checkpointer.
        history_window: how many earlier messages the prompts see.
        demonstrations: a source of similar labelled turns shown as few-shot examples (see ``mesa.eval``).
        n_demonstrations: how many demonstrations each prompt gets.
        classifier: a small supervised model for emotion and/or strategy (see ``mesa.eval``); ``"auto"``
            (default) uses the model ``mesa train`` stored for the taxonomy if there is one, ``None`` none.
        classifier_use: ``"prior"`` (the LLM sees its distribution) or ``"step"`` (it decides).
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
        from mesa.graphs.smes import build_graph

        self.llm = LLM.from_model(model)
        if call_timeout is not None:
            self.llm = self.llm.with_timeout(call_timeout)
        self.turn_timeout = turn_timeout
        self.strict = strict
        self.max_input_chars = max_input_chars
        self.mode = mode
        self.taxonomy = get_taxonomy(taxonomy)
        self.prompts = prompts if isinstance(prompts, PromptSet) or prompts is None else PromptSet.from_dir(prompts)
        self.perception = self._resolve_perception(perception)
        self.safety = safety if safety is not None else self._default_safety()
        self.history_window = history_window
        self.demonstrations = demonstrations
        self.n_demonstrations = n_demonstrations
        from mesa.eval.store import resolve_classifier

        self.classifier = resolve_classifier(classifier, self.taxonomy)
        self.classifier_use = classifier_use
        self._cache = self._resolve_cache(cache)
        cache_policy = self._cache_policy() if self._cache is not None else None
        self.builder = graph if graph is not None else build_graph(mode, cache_policy=cache_policy)
        self._memory_spec = memory
        self._runner = _LoopThread()
        weakref.finalize(self, self._runner.stop)
        self._closer = None
        self.graph = self._runner.run(self._compile())

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
        from mesa.cache import DiskCache

        if cache is True:
            return DiskCache()
        if isinstance(cache, (str, Path)):
            return DiskCache(cache)
        return cache

    def _cache_policy(self):
        from langgraph.types import CachePolicy

        prompts = self.prompts.templates if self.prompts else {}
        scope = f"{self.llm.model}|{self.mode}|{self.taxonomy.model_dump_json()}|{sorted(prompts.items())}|{self.history_window}"

        def key(state: Any) -> str:
            data = state.model_dump(include={"turn", "history", "perception", "user_emotion", "strategy"}, mode="json")
            blob = scope + repr(sorted(data.items()))
            return hashlib.sha256(blob.encode()).hexdigest()

        return CachePolicy(key_func=key)

    async def _compile(self):
        from mesa.graphs.smes import compile_graph
        from mesa.memory import open_checkpointer

        checkpointer, self._closer = await open_checkpointer(self._memory_spec)
        return compile_graph(self.builder, checkpointer=checkpointer, cache=self._cache)

    def context(self, thread_id: str | None = None) -> SupportContext:
        """The runtime context this agent passes to its graph."""
        return SupportContext(
            llm=self.llm,
            taxonomy=self.taxonomy,
            prompts=self.prompts,
            perception=self.perception,
            safety=self.safety,
            history_window=self.history_window,
            demonstrations=self.demonstrations,
            n_demonstrations=self.n_demonstrations,
            classifier=self.classifier,
            classifier_use=self.classifier_use,
            thread_id=thread_id,
            strict=self.strict,
            max_input_chars=self.max_input_chars,
        )

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

    def _turn_timeout_error(self) -> TurnTimeoutError:
        return TurnTimeoutError(f"the turn took longer than {self.turn_timeout} s (SupportAgent(turn_timeout=...))", seconds=self.turn_timeout or 0.0)

    async def _run(self, graph_input: Any, thread_id: str) -> Reply:
        start = time.perf_counter()
        config = {"configurable": {"thread_id": thread_id}}
        try:
            async with asyncio.timeout(self.turn_timeout) as deadline:
                values = await self.graph.ainvoke(graph_input, config, context=self.context(thread_id))
        except TimeoutError as exc:
            if not deadline.expired():
                raise  # not the turn's deadline (a model call's, under strict=True)
            raise self._turn_timeout_error() from exc
        return self._reply(values, thread_id, time.perf_counter() - start)

    async def _events(self, turn: Turn, thread_id: str, history: list[Message] | None) -> AsyncIterator[StreamEvent]:
        start = time.perf_counter()
        config = {"configurable": {"thread_id": thread_id}}
        async for event in self.graph.astream(
            self._input(turn, history), config, context=self.context(thread_id), stream_mode="custom"
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
            async with asyncio.timeout(self.turn_timeout) as deadline:
                async for event in self._events(turn, thread_id, history):
                    put(event)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread or task
            put(self._turn_timeout_error() if isinstance(exc, TimeoutError) and deadline.expired() else exc)
        finally:
            put(_DONE)

    def _turn(self, text: str | None, audio: Any, video: Any, image: Any) -> Turn:
        return Turn.from_inputs(text, audio=audio, video=video, image=image, max_chars=self.max_input_chars)

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
        """Answer one user turn. ``thread_id`` keeps the conversation; ``history`` seeds a new thread."""
        turn = self._turn(text, audio, video, image)
        return self._runner.run(self._run(self._input(turn, history), thread_id or uuid.uuid4().hex))

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
        turn = self._turn(text, audio, video, image)
        return await self._runner.arun(self._run(self._input(turn, history), thread_id or uuid.uuid4().hex))

    def resume(self, thread_id: str, value: Any = None) -> Reply:
        """Resume a turn that a node paused with ``interrupt()``; ``value`` is what ``interrupt()`` returns."""
        from langgraph.types import Command

        return self._runner.run(self._run(Command(resume=value), thread_id))

    async def aresume(self, thread_id: str, value: Any = None) -> Reply:
        """Async twin of :meth:`resume`."""
        from langgraph.types import Command

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
        turn = self._turn(text, audio, video, image)
        inbox: queue.Queue = queue.Queue()
        pump = self._pump(turn, thread_id or uuid.uuid4().hex, history, inbox.put)
        future = asyncio.run_coroutine_threadsafe(pump, self._runner.loop)
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
        turn = self._turn(text, audio, video, image)
        inbox: asyncio.Queue = asyncio.Queue()
        caller = asyncio.get_running_loop()
        pump = self._pump(turn, thread_id or uuid.uuid4().hex, history, lambda item: caller.call_soon_threadsafe(inbox.put_nowait, item))
        future = asyncio.run_coroutine_threadsafe(pump, self._runner.loop)
        while (item := await inbox.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
        await asyncio.wrap_future(future)

    # -- memory --------------------------------------------------------------------------------

    def state(self, thread_id: str) -> SupportState:
        """The graph state of a thread as it stands (an empty state for an unknown thread)."""

        async def read() -> SupportState:
            snapshot = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
            return SupportState.model_validate(snapshot.values or {})

        return self._runner.run(read())

    def history(self, thread_id: str) -> list[Message]:
        """The messages of a thread so far (empty for an unknown thread)."""
        return list(self.state(thread_id).history)

    def close(self) -> None:
        """Close the checkpointer connection and stop the agent's event loop."""
        if self._closer is not None:
            self._runner.run(self._closer())
            self._closer = None
        self._runner.stop()

    def __enter__(self) -> SupportAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
