"""Builders of the SMES graphs.

``stepwise``::

    START → perceive → assess_safety ─┬─ crisis → crisis_response → END
                                      └─ ok → recognize_emotion → select_strategy
                                              → choose_system_emotion → respond → finish_turn → END

(``crisis_response`` also ends in ``finish_turn``, which appends the turn to the history.)

``fused``: the same, with ``fused_turn`` (one structured call producing emotion,
strategy, system emotion and response, in that order) in place of the four
steps after ``ok``.

The builders return the **uncompiled** ``StateGraph`` so you can add, replace or
rewire nodes; :func:`compile_graph` compiles one with a checkpointer and cache.
To add a step before or after any node without rebuilding the graph, pass
``build_graph(mode, insert=[Insert("retrieve", my_node, before="recognize_emotion")])``
or call :func:`insert_node` on a built graph: the edges (and the routing) that led to
that node lead to yours first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from mesa.graphs import nodes
from mesa.graphs.context import SupportContext
from mesa.state import SupportState

__all__ = [
    "FUSED_NODES",
    "GRAPH_MODES",
    "STEPWISE_NODES",
    "AnsweredOnlyCache",
    "Insert",
    "build_fused_graph",
    "build_graph",
    "build_stepwise_graph",
    "compile_graph",
    "insert_node",
    "register_graph_mode",
]

LABEL_STEPS = ("recognize_emotion", "select_strategy", "choose_system_emotion")


def _node(name: str, default: Callable, overrides: Mapping[str, Callable] | None) -> Callable:
    return (overrides or {}).get(name, default)


def _check_overrides(overrides: Mapping[str, Callable] | None, known: tuple[str, ...]) -> None:
    unknown = set(overrides or {}) - set(known)
    if unknown:
        raise ValueError(f"no node(s) {sorted(unknown)} in this graph; its nodes are {', '.join(known)}")


def _front(graph: StateGraph, overrides: Mapping[str, Callable] | None) -> StateGraph:
    graph.add_node("perceive", _node("perceive", nodes.perceive, overrides))
    graph.add_node("assess_safety", _node("assess_safety", nodes.assess_safety, overrides))
    graph.add_node("crisis_response", _node("crisis_response", nodes.crisis_response, overrides))
    graph.add_node("finish_turn", _node("finish_turn", nodes.finish_turn, overrides))
    graph.add_edge(START, "perceive")
    graph.add_edge("perceive", "assess_safety")
    graph.add_edge("crisis_response", "finish_turn")
    graph.add_edge("finish_turn", END)
    return graph


STEPWISE_NODES = ("perceive", "assess_safety", "crisis_response", "finish_turn", *LABEL_STEPS, "respond")
FUSED_NODES = ("perceive", "assess_safety", "crisis_response", "finish_turn", "fused_turn")


@dataclass(frozen=True)
class Insert:
    """A node to put into a built graph, just ``before`` or just ``after`` an existing node (one of the two).

    ``options`` are passed to ``StateGraph.add_node`` (``cache_policy``, ``retry_policy``, ...).
    """

    name: str
    node: Callable
    before: str | None = None
    after: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.before is None) == (self.after is None):
            raise ValueError(f"Insert {self.name!r}: give exactly one of before= or after=")


def insert_node(graph: StateGraph, name: str, node: Callable, *, before: str | None = None, after: str | None = None, **options: Any) -> StateGraph:
    """Put ``node`` into an uncompiled ``graph`` just before or just after an existing node, and return the graph.

    ``before=X``: every edge and every routing branch that led to ``X`` leads to ``name``, then ``name`` → ``X``.
    ``after=X``: ``X`` → ``name``, and whatever followed ``X`` (edges, routing) follows ``name``.
    """
    step = Insert(name, node, before, after, options)
    target = step.before or step.after
    if target not in graph.nodes:
        raise ValueError(f"no node {target!r} in this graph; its nodes are {', '.join(graph.nodes)}")
    graph.add_node(name, node, **options)
    if step.before is not None:
        _redirect_into(graph, target, name)
        graph.add_edge(name, target)
    else:
        _move_exits(graph, target, name)
        graph.add_edge(target, name)
    return graph


def _redirect_into(graph: StateGraph, old: str, new: str) -> None:
    """Edges, joins and routing branches into ``old`` go into ``new`` instead."""
    graph.edges = {(start, new if end == old else end) for start, end in graph.edges}
    graph.waiting_edges = {(starts, new if end == old else end) for starts, end in graph.waiting_edges}
    for source, branches in graph.branches.items():
        for key, branch in branches.items():
            if branch.ends is None:
                raise ValueError(f"the routing from {source!r} names no destinations, so {old!r} cannot be preceded there")
            branches[key] = branch._replace(ends={label: new if end == old else end for label, end in branch.ends.items()})


def _move_exits(graph: StateGraph, old: str, new: str) -> None:
    """What followed ``old`` (edges, joins, routing branches) follows ``new`` instead."""
    graph.edges = {(new if start == old else start, end) for start, end in graph.edges}
    graph.waiting_edges = {(tuple(new if s == old else s for s in starts), end) for starts, end in graph.waiting_edges}
    if old in graph.branches:
        graph.branches[new] = graph.branches.pop(old)


def _insert_all(graph: StateGraph, inserts: Sequence[Insert]) -> StateGraph:
    for step in inserts:
        insert_node(graph, step.name, step.node, before=step.before, after=step.after, **step.options)
    return graph


def _reply_tail(graph: StateGraph, reply_node: str, after_reply: Mapping[str, Callable] | None) -> None:
    """Wire ``reply_node`` → the ``after_reply`` nodes, in order → ``finish_turn``."""
    graph.add_edge(reply_node, "finish_turn")
    previous = reply_node
    for name, function in (after_reply or {}).items():
        insert_node(graph, name, function, after=previous)
        previous = name


def build_stepwise_graph(
    *,
    cache_policy: CachePolicy | None = None,
    nodes_override: Mapping[str, Callable] | None = None,
    after_reply: Mapping[str, Callable] | None = None,
) -> StateGraph:
    """The SMES chain with one structured call per step (most controllable).

    ``cache_policy`` is applied to the three label steps (see ``SupportAgent(cache=...)``).
    ``nodes_override`` replaces node functions by name, e.g. ``{"select_strategy": my_policy}``.
    ``after_reply`` adds nodes, in order, between the reply and ``finish_turn`` (a human review
    with ``interrupt()``, a post-filter); they can rewrite ``response`` before it is stored.
    """
    _check_overrides(nodes_override, STEPWISE_NODES)
    graph = _front(StateGraph(SupportState, context_schema=SupportContext), nodes_override)
    for name in LABEL_STEPS:
        graph.add_node(name, _node(name, getattr(nodes, name), nodes_override), cache_policy=cache_policy)
    graph.add_node("respond", _node("respond", nodes.respond, nodes_override))
    graph.add_conditional_edges("assess_safety", nodes.route_after_safety, {"crisis": "crisis_response", "ok": "recognize_emotion"})
    graph.add_edge("recognize_emotion", "select_strategy")
    graph.add_edge("select_strategy", "choose_system_emotion")
    graph.add_edge("choose_system_emotion", "respond")
    _reply_tail(graph, "respond", after_reply)
    return graph


def build_fused_graph(
    *,
    cache_policy: CachePolicy | None = None,
    nodes_override: Mapping[str, Callable] | None = None,
    after_reply: Mapping[str, Callable] | None = None,
) -> StateGraph:
    """The SMES chain as one sequential structured generation (lowest latency).

    ``cache_policy`` is accepted for symmetry (the fused step writes the reply, so it is not
    cached); ``nodes_override`` and ``after_reply`` work as in :func:`build_stepwise_graph`.
    """
    del cache_policy
    _check_overrides(nodes_override, FUSED_NODES)
    graph = _front(StateGraph(SupportState, context_schema=SupportContext), nodes_override)
    graph.add_node("fused_turn", _node("fused_turn", nodes.fused_turn, nodes_override))
    graph.add_conditional_edges("assess_safety", nodes.route_after_safety, {"crisis": "crisis_response", "ok": "fused_turn"})
    _reply_tail(graph, "fused_turn", after_reply)
    return graph


GRAPH_MODES: dict[str, Callable[..., StateGraph]] = {"stepwise": build_stepwise_graph, "fused": build_fused_graph}
"""Graph builders by mode name; add your own with :func:`register_graph_mode`."""


def register_graph_mode(name: str, builder: Callable[..., StateGraph]) -> None:
    """Make ``SupportAgent(mode=name)`` use ``builder`` (a function returning an uncompiled ``StateGraph``)."""
    GRAPH_MODES[name] = builder


def build_graph(mode: str = "stepwise", *, insert: Sequence[Insert] = (), **kwargs: Any) -> StateGraph:
    """The uncompiled graph of a mode (``"stepwise"``, ``"fused"`` or a registered one).

    ``insert`` puts extra nodes before or after any step (see :class:`Insert`), in order.
    """
    try:
        builder = GRAPH_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown graph mode {mode!r}; known: {', '.join(sorted(GRAPH_MODES))}") from None
    return _insert_all(builder(**kwargs), insert)


def _answered(writes: Any) -> bool:
    """Whether a node's writes hold no failed step (see ``SupportState.failed_steps``)."""
    return not any(channel == "failed_steps" and value for channel, value in writes or ())


class AnsweredOnlyCache(BaseCache):
    """A node cache that stores only steps that gave an answer.

    A label step that timed out or got no valid answer finishes normally (its label left absent), so
    LangGraph would cache it; a repeated turn would then never ask again. This wrapper drops those.
    """

    def __init__(self, inner: BaseCache) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return self.inner.get(keys)

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return await self.inner.aget(keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        self.inner.set({key: entry for key, entry in pairs.items() if _answered(entry[0])})

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await self.inner.aset({key: entry for key, entry in pairs.items() if _answered(entry[0])})

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.inner.clear(namespaces)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await self.inner.aclear(namespaces)


def compile_graph(mode: str | StateGraph = "stepwise", *, checkpointer: Any = None, cache: Any = None, **compile_kwargs: Any):
    """Compile a mode's graph (or your own ``StateGraph``) with an optional checkpointer and node cache.

    The cache keeps only steps that gave an answer (:class:`AnsweredOnlyCache`).
    """
    graph = build_graph(mode) if isinstance(mode, str) else mode
    if cache is not None and not isinstance(cache, AnsweredOnlyCache):
        cache = AnsweredOnlyCache(cache)
    return graph.compile(checkpointer=checkpointer, cache=cache, **compile_kwargs)
