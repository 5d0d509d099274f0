"""Keyless scripted models for tests (yours and ours).

:class:`ScriptedModel` answers like a real model, through the same LiteLLM +
instructor path (it is registered as the LiteLLM provider ``mesa-scripted``),
so validation, re-asking and streaming behave exactly as with a real model::

    from mesa import SupportAgent
    from mesa.testing import ScriptedModel

    model = ScriptedModel(user_emotion="sadness", strategy="Restatement", reply="That sounds hard.")
    agent = SupportAgent(model=model)
    assert agent.respond("I lost my job").strategy.label == "Restatement"

Each scripted value is either one answer for every call, or a list consumed in
order (the last one repeats), e.g. ``strategy=["Not a strategy", "Approval"]``
answers the first strategy question with an invalid label, which mesa re-asks,
and the second with a valid one. ``model.calls`` records every request.

Misbehaviour on purpose, to test deadlines and degraded turns (requests are named
by schema title, e.g. ``"Strategy"``, ``"SafetyJudgement"``, ``"FusedTurn"``, or
``"text"`` for text requests such as the reply)::

    ScriptedModel(hang={"Strategy"})           # that request is never answered
    ScriptedModel(stall_after=1)               # streams send one piece, then nothing, never ending
    ScriptedModel(truncate={"Strategy": 12})   # answer cut after 12 characters, finish_reason "length"
    ScriptedModel(fail={"text"})               # the provider raises an error

``model.hanging`` is a ``threading.Event`` set when a request starts hanging or
stalling; ``model.release()`` lets hung requests go on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesa.custom_provider import Answer, custom_provider
from mesa.taxonomy import LABEL_SETS

__all__ = ["ScriptedCall", "ScriptedModel", "scripted_provider"]

# The scripts that ``mesa-scripted/<name>`` strings reach. Weak: a script leaves when it is closed or collected
# (an LLM made by :meth:`ScriptedModel.as_llm` keeps its script alive).
_instances: weakref.WeakValueDictionary[str, ScriptedModel] = weakref.WeakValueDictionary()
_ids = itertools.count(1)

# Schema titles that the graph's step models use, mapped to the scripted field that answers them.
_STEP_FIELDS = {"UserEmotion": "user_emotion", "Strategy": "strategy", "SystemEmotion": "system_emotion"}
_DEFAULT_LABELS = {"user_emotion": "neutral", "strategy": "Restatement", "system_emotion": "neutral"}


@dataclass
class ScriptedCall:
    """One request a scripted model received."""

    kind: str  # "structured" or "text"
    schema: str | None
    messages: list[dict[str, Any]]
    answer: str

    @property
    def prompt(self) -> str:
        """All message contents joined, for asserting on what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


class _Answers:
    def __init__(self, value: str | Sequence[str] | None) -> None:
        self.values = [value] if isinstance(value, str) or value is None else list(value)
        self.index = 0

    def next(self) -> str | None:
        value = self.values[min(self.index, len(self.values) - 1)] if self.values else None
        self.index += 1
        return value


@dataclass
class ScriptedModel:
    """A model that answers from a script. See the module docs.

    Args:
        user_emotion: label(s) to answer the emotion step with (default ``"neutral"``).
        strategy: label(s) to answer the strategy step with (default ``"Restatement"``).
        system_emotion: label(s) to answer the system-emotion step with (default ``"neutral"``).
            A default that the active taxonomy lacks becomes its first label.
        reply: the response text (streamed word by word).
        structured: answers for other structured requests, by schema title
            (``{"SafetyJudgement": {"level": "imminent", ...}}``); a dict or a list of dicts.
        latency: seconds to wait before each answer (0 for orchestration benchmarks).
        confidence: the confidence reported with each label.
        hang: requests never answered (titles, ``"text"``; ``True``: all) until :meth:`release`.
        stall_after: streamed answers stop after this many pieces and hang (until :meth:`release`).
        truncate: ``{title: n}``: that answer is cut after ``n`` characters with ``finish_reason="length"``,
            as a model that hit its ``max_tokens``.
        fail: requests answered with a provider error (titles, ``"text"``; ``True``: all).
    """

    user_emotion: str | Sequence[str] | None = None
    strategy: str | Sequence[str] | None = None
    system_emotion: str | Sequence[str] | None = None
    reply: str | Sequence[str] = "I hear you. That sounds really hard, and it makes sense that you feel this way."
    structured: dict[str, Any] = field(default_factory=dict)
    latency: float = 0.0
    confidence: float = 0.9
    hang: bool | str | Collection[str] = ()
    stall_after: int | None = None
    truncate: dict[str, int] = field(default_factory=dict)
    fail: bool | str | Collection[str] = ()
    calls: list[ScriptedCall] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.name = f"s{next(_ids)}"
        self._answers = {
            "user_emotion": _Answers(self.user_emotion),
            "strategy": _Answers(self.strategy),
            "system_emotion": _Answers(self.system_emotion),
            "reply": _Answers(self.reply),
        }
        self._other = {key: _Answers([json.dumps(v)] if isinstance(v, dict) else [json.dumps(x) for x in v]) for key, v in self.structured.items()}
        self._lock = threading.Lock()
        self.hanging = threading.Event()
        self._released = threading.Event()
        _instances[self.name] = self

    @property
    def model(self) -> str:
        """The LiteLLM model string that reaches this script."""
        return f"mesa-scripted/{self.name}"

    def as_llm(self, **kwargs: Any):
        """This script as a :class:`mesa.llm.LLM` (which keeps the script alive)."""
        from mesa.llm import LLM

        llm = LLM(self.model, **kwargs)
        llm.owner = self
        return llm

    def close(self) -> None:
        """Unregister this script: its model string reaches nothing from now on."""
        _instances.pop(self.name, None)

    def calls_for(self, schema: str | None) -> list[ScriptedCall]:
        """The recorded requests for one schema title (``None``: text requests)."""
        return [c for c in self.calls if c.schema == schema]

    def release(self) -> None:
        """Let hung and stalled requests go on (they answer as scripted)."""
        self._released.set()

    # -- misbehaving on purpose -----------------------------------------------------------------

    @staticmethod
    def _selects(which: bool | str | Collection[str], name: str) -> bool:
        if isinstance(which, bool):
            return which
        return name == which if isinstance(which, str) else name in which

    def request_name(self, params: dict[str, Any]) -> str:
        """The schema title a request asks for (``Partial`` stripped), or ``"text"``."""
        fmt = params.get("response_format")
        if not (isinstance(fmt, dict) and fmt.get("type") == "json_schema"):
            return "text"
        spec = fmt["json_schema"]
        title = spec.get("schema", {}).get("title") or spec.get("name") or ""
        base = title.removeprefix("Partial")  # a streamed request (instructor's Partial[...]) gets the same answer
        if base != title and (base in self._other or base in _STEP_FIELDS or base == "FusedTurn"):
            return base
        return title

    def _check_fail(self, name: str) -> None:
        if self._selects(self.fail, name):
            raise RuntimeError(f"scripted provider error for {name}")

    async def wait_async(self, name: str, *, stalled: bool = False) -> None:
        """Latency, then hang (polling, so a deadline can cancel it) when this request is scripted to."""
        if self.latency:
            await asyncio.sleep(self.latency)
        if stalled or self._selects(self.hang, name):
            self.hanging.set()
            while not self._released.is_set():
                await asyncio.sleep(0.02)

    def wait_sync(self, name: str, *, stalled: bool = False) -> None:
        """Sync twin of :meth:`wait_async` (a hung sync request waits for :meth:`release`)."""
        if self.latency:
            time.sleep(self.latency)
        if stalled or self._selects(self.hang, name):
            self.hanging.set()
            self._released.wait()

    def cut(self, name: str, answer: str) -> tuple[str, str]:
        """``(answer, finish_reason)``: cut with ``"length"`` when ``truncate`` names this request."""
        limit = self.truncate.get(name)
        if limit is not None and len(answer) > limit:
            return answer[:limit], "length"
        return answer, "stop"

    # -- answering ------------------------------------------------------------------------------

    def _minimal(self, schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in schema.get("required", []):
            prop = schema.get("properties", {}).get(name, {})
            if "enum" in prop:
                out[name] = prop["enum"][0]
            elif prop.get("type") == "number" or prop.get("type") == "integer":
                out[name] = 0
            elif prop.get("type") == "array":
                out[name] = []
            elif prop.get("type") == "boolean":
                out[name] = False
            else:
                out[name] = ""
        return out

    def answer_structured(self, schema: dict[str, Any], title: str) -> str:
        with self._lock:
            if title in self._other:
                return self._other[title].next() or "{}"
            props = schema.get("properties", {})
            if title in _STEP_FIELDS:
                label = self._label(_STEP_FIELDS[title], props.get("label", {}))
                return json.dumps({"label": label, "confidence": self.confidence, "rationale": "scripted"})
            if title == "FusedTurn":
                answer = {field: self._label(field, props.get(field, {})) for field in LABEL_SETS}
                return json.dumps({**answer, "response": self._answers["reply"].next()})
            return json.dumps(self._minimal(schema))

    def _label(self, which: str, prop: dict[str, Any]) -> str | None:
        value = self._answers[which].next()
        if value is None:
            enum = prop.get("enum") or []
            value = _DEFAULT_LABELS[which]
            if enum and value not in enum:
                value = enum[0]
        return value

    def answer_text(self) -> str:
        with self._lock:
            return self._answers["reply"].next() or ""

    def respond_to(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        """The scripted answer to one request (recorded in :attr:`calls`)."""
        name = self.request_name(params)
        if name == "text":
            answer = self.answer_text()
            self.calls.append(ScriptedCall("text", None, list(messages), answer))
            return answer
        schema = params["response_format"]["json_schema"].get("schema", {})
        answer = self.answer_structured(schema, name)
        self.calls.append(ScriptedCall("structured", name, list(messages), answer))
        return answer


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class _ScriptedAnswerer:
    """The scripts as a mesa provider (see :mod:`mesa.custom_provider`)."""

    @staticmethod
    def _prepare(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> tuple[ScriptedModel, str, list[str], str]:
        """The script, the request's name, the answer's pieces (as streamed) and its finish reason."""
        try:
            script = _instances[model]
        except KeyError:
            raise ValueError(f"no scripted model named {model!r} in this process (closed or collected?)") from None
        name = script.request_name(params)
        answer = script.respond_to(messages, params)  # recorded even when it then fails
        script._check_fail(name)
        text, finish = script.cut(name, answer)
        return script, name, _pieces(text) or [""], finish

    def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        script, name, pieces, finish = self._prepare(model, messages, params)
        script.wait_sync(name)
        return Answer("".join(pieces), finish)

    async def acomplete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        script, name, pieces, finish = self._prepare(model, messages, params)
        await script.wait_async(name)
        return Answer("".join(pieces), finish)

    def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        script, name, pieces, finish = self._prepare(model, messages, params)
        script.wait_sync(name)
        for i, piece in enumerate(pieces):
            if script.stall_after is not None and i == script.stall_after:
                script.wait_sync(name, stalled=True)
            yield piece, finish if i == len(pieces) - 1 else None

    async def astream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[tuple[str, str | None]]:
        script, name, pieces, finish = self._prepare(model, messages, params)
        await script.wait_async(name)
        for i, piece in enumerate(pieces):
            if script.stall_after is not None and i == script.stall_after:
                await script.wait_async(name, stalled=True)
            yield piece, finish if i == len(pieces) - 1 else None


def scripted_provider():
    """The LiteLLM ``CustomLLM`` behind ``mesa-scripted/...`` model strings."""
    return custom_provider("mesa-scripted", _ScriptedAnswerer())
