"""Graphs for LangGraph Server / Studio (see ``langgraph.json``): ``langgraph dev`` serves them as is.

- **No context needed.** A run without ``context`` (the server passes ``{}``) uses the operator's
  defaults, which :class:`~mesa.graphs.context.SupportContext` fills itself: ``MESA_MODEL`` (else the
  embedded model) and ``MESA_TAXONOMY`` (else ``mesc``).
- **A client's context is limited.** A run may set ``llm``, ``taxonomy`` and ``history_window``
  (the fields Studio shows in its context form), within the operator's allow-list
  (:class:`~mesa.graphs.context.ClientContextPolicy`: ``MESA_ALLOWED_MODELS``,
  ``MESA_ALLOW_LOCAL_FILES``). Anything else is refused.
- **Nothing blocks the server's event loop.** LiteLLM, instructor, the prompts and the safety
  policy load here, when the server loads the graphs, not inside an async node (LangGraph Server
  refuses blocking calls on its loop unless started with ``--allow-blocking``).
- **Chat UIs work.** The state keeps ``messages`` (LangChain message dicts): a run's input may be
  ``{"turn": {"text": "..."}}`` or, as chat UIs built for LangGraph send it,
  ``{"messages": [{"type": "human", "content": "..."}]}``; the reply is appended as an ``ai`` message.

For tests and demos without any model, ``MESA_SCRIPTED='{"reply": "..."}'`` (the arguments of
:class:`mesa.testing.ScriptedModel`, as JSON) makes a scripted model the server's default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.graph import END, START
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from mesa.graphs.context import (
    ClientContextPolicy,
    ContextNotAllowed,
    SupportContext,
    default_prompts,
    default_safety_policy,
)
from mesa.graphs.smes import build_graph
from mesa.state import SupportState, Turn
from mesa.taxonomy import LABEL_SETS, taxonomy_names

__all__ = ["ClientContext", "ServerContext", "chat_input", "chat_output", "fused", "server_graph", "stepwise"]

# Fields that hold Python objects: an operator sets them in code, a client (JSON) never can.
_OBJECT_FIELDS = ("prompts", "perception", "safety", "demonstrations", "classifier")
_PER_TURN_RESET = {"perception": {}, "safety": None, "user_emotion": None, "strategy": None, "system_emotion": None, "response": None, "timings": {}}


class ClientContext(BaseModel):
    """What a client may put in a run's ``context`` (the form LangGraph Studio shows)."""

    llm: str | None = Field(default=None, description="LiteLLM model string; must be allowed by the operator (MESA_ALLOWED_MODELS)")
    taxonomy: Literal[tuple(taxonomy_names())] | None = Field(default=None, description="label sets of a registered taxonomy")  # type: ignore[valid-type]
    history_window: int = Field(default=SupportContext.history_window, ge=0, le=64, description="how many earlier messages the prompts see")


@dataclass(frozen=True)
class ServerContext(SupportContext):
    """The run context of the server graphs: a :class:`SupportContext` whose client-set values are checked."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # The JSON schema LangGraph Server gives Studio (and filters run contexts by): the client fields only.
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(lambda data: cls(**data.model_dump()), handler(ClientContext))

    def __post_init__(self) -> None:
        policy = ClientContextPolicy.from_env()
        if self.llm is not None:
            self._resolve("llm", policy.check_model(self.llm) if isinstance(self.llm, str) else _refuse("llm"))
        if self.taxonomy is not None:
            self._resolve("taxonomy", policy.check_taxonomy(self.taxonomy) if isinstance(self.taxonomy, str) else _refuse("taxonomy"))
        for name in _OBJECT_FIELDS:
            if getattr(self, name) is not None:
                _refuse(name)
        super().__post_init__()


def _refuse(name: str) -> Any:
    raise ContextNotAllowed(f"a client's run context cannot set {name!r} here; allowed: {', '.join(ClientContext.model_fields)}")


async def chat_input(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Start a turn from either input: a chat UI's new human message, or a ``turn`` (then recorded as one)."""
    last = state.messages[-1] if state.messages else None
    if last is not None and last.get("type") == "human":
        return {**_PER_TURN_RESET, "turn": Turn(text=_content_text(last.get("content")))}
    return {**_PER_TURN_RESET, "messages": [{"type": "human", "content": state.turn.text or f"[{', '.join(state.turn.modalities())}]"}]}


async def chat_output(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Append the reply as an ``ai`` message, with the chain's labels where a UI can show them."""
    labels = {name: getattr(state, name).label for name in LABEL_SETS if getattr(state, name)}
    safety = state.safety.level if state.safety else None
    return {"messages": [{"type": "ai", "content": state.response or "", "additional_kwargs": {"mesa": {**labels, "safety": safety}}}]}


def _content_text(content: Any) -> str:
    """The text of a LangChain message content (a string, or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(block.get("text", "") if isinstance(block, dict) else str(block) for block in content).strip()
    return str(content or "")


def server_graph(mode: str) -> Any:
    """A mode's graph with the chat-message nodes around it and :class:`ServerContext`, compiled for the server."""
    builder = build_graph(mode)
    builder.context_schema = ServerContext
    # Re-wire START → chat_input → (the graph) → finish_turn → chat_output → END.
    builder.edges.discard((START, "perceive"))
    builder.edges.discard(("finish_turn", END))
    builder.add_node("chat_input", chat_input)
    builder.add_node("chat_output", chat_output)
    builder.add_edge(START, "chat_input")
    builder.add_edge("chat_input", "perceive")
    builder.add_edge("finish_turn", "chat_output")
    builder.add_edge("chat_output", END)
    return builder.compile()


_scripted_model: Any = None


def _scripted_default() -> None:
    """``MESA_SCRIPTED`` (JSON arguments of a ScriptedModel) makes a scripted model the default: tests, demos."""
    spec = os.environ.get("MESA_SCRIPTED")
    if not spec:
        return
    from mesa.testing import ScriptedModel

    global _scripted_model
    _scripted_model = ScriptedModel(**json.loads(spec))  # held here: the registry of scripts holds them weakly
    os.environ["MESA_MODEL"] = _scripted_model.model


def _load_blocking_parts() -> None:
    """Import and read now, at graph load, what a node would otherwise load on the server's event loop."""
    from mesa.llm import import_litellm

    import_litellm()
    import instructor  # noqa: F401 - imported for its side effect: no import inside a node

    default_prompts()
    default_safety_policy()
    ServerContext()  # the default model and taxonomy resolve (and a bad MESA_MODEL fails) at start-up


_scripted_default()
_load_blocking_parts()
stepwise = server_graph("stepwise")
fused = server_graph("fused")
