"""Graphs for LangGraph Server / Studio (see ``langgraph.json``).

The server supplies the checkpointer and store; the runtime context (the model,
taxonomy, safety policy) is given per run as ``context`` (e.g.
``{"llm": "openai/gpt-4o-mini", "taxonomy": "esconv"}``) — or, when a run gives
none, built from the environment: ``MESA_MODEL`` (a LiteLLM model string,
default the embedded model) and ``MESA_TAXONOMY`` (default ``mesc``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from mesa.graphs.context import SupportContext
from mesa.graphs.smes import build_graph

__all__ = ["default_context", "fused", "stepwise"]


@lru_cache(maxsize=1)
def default_context() -> SupportContext:
    """The context a server run uses when the request carries none."""
    from mesa.llm import LLM
    from mesa.safety import SafetyPolicy
    from mesa.taxonomy import get_taxonomy

    return SupportContext(
        llm=LLM.from_model(os.environ.get("MESA_MODEL") or None),
        taxonomy=get_taxonomy(os.environ.get("MESA_TAXONOMY", "mesc")),
        safety=SafetyPolicy.default(),
    )


def _compiled(mode: str) -> Any:
    return build_graph(mode).compile()


stepwise = _compiled("stepwise")
fused = _compiled("fused")
