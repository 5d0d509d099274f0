"""mesa: Multimodal Emotional Support Agent.

The SMES framework (Chu et al., arXiv 2408.03650) as a LangGraph library:
perceive → recognise the user's emotion → select a support strategy →
choose the system's emotion → respond, on any LiteLLM model.

Names are imported on first use, so ``import mesa`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SupportAgent": "mesa.agent",
    "StreamEvent": "mesa.agent",
    "LLM": "mesa.llm",
    "PromptSet": "mesa.prompts",
    "SupportContext": "mesa.graphs.context",
    "build_graph": "mesa.graphs.smes",
    "compile_graph": "mesa.graphs.smes",
    "Taxonomy": "mesa.taxonomy",
    "Label": "mesa.taxonomy",
    "MESC": "mesa.taxonomy",
    "ESCONV": "mesa.taxonomy",
    "get_taxonomy": "mesa.taxonomy",
    "register_taxonomy": "mesa.taxonomy",
    "Turn": "mesa.state",
    "MediaRef": "mesa.state",
    "Message": "mesa.state",
    "Prediction": "mesa.state",
    "PerceptionResult": "mesa.state",
    "SafetyAssessment": "mesa.state",
    "SupportState": "mesa.state",
    "Reply": "mesa.state",
    "SafetyPolicy": "mesa.safety",
    "MesaError": "mesa.errors",
    "LLMError": "mesa.errors",
    "StructuredOutputError": "mesa.errors",
    "MissingExtraError": "mesa.errors",
    "LLMTimeoutError": "mesa.errors",
    "TurnTimeoutError": "mesa.errors",
    "InputTooLargeError": "mesa.errors",
    "AgentClosedError": "mesa.errors",
    "InvalidThreadIdError": "mesa.errors",
}

__all__ = [
    "ESCONV",
    "LLM",
    "MESC",
    "AgentClosedError",
    "InputTooLargeError",
    "InvalidThreadIdError",
    "LLMError",
    "LLMTimeoutError",
    "Label",
    "MediaRef",
    "MesaError",
    "Message",
    "MissingExtraError",
    "PerceptionResult",
    "Prediction",
    "PromptSet",
    "Reply",
    "SafetyAssessment",
    "SafetyPolicy",
    "StreamEvent",
    "StructuredOutputError",
    "SupportAgent",
    "SupportContext",
    "SupportState",
    "Taxonomy",
    "Turn",
    "TurnTimeoutError",
    "__version__",
    "build_graph",
    "compile_graph",
    "get_taxonomy",
    "register_taxonomy",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mesa' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from mesa.agent import StreamEvent, SupportAgent
    from mesa.errors import (
        AgentClosedError,
        InputTooLargeError,
        InvalidThreadIdError,
        LLMError,
        LLMTimeoutError,
        MesaError,
        MissingExtraError,
        StructuredOutputError,
        TurnTimeoutError,
    )
    from mesa.graphs.context import SupportContext
    from mesa.graphs.smes import build_graph, compile_graph
    from mesa.llm import LLM
    from mesa.prompts import PromptSet
    from mesa.safety import SafetyPolicy
    from mesa.state import MediaRef, Message, PerceptionResult, Prediction, Reply, SafetyAssessment, SupportState, Turn
    from mesa.taxonomy import ESCONV, MESC, Label, Taxonomy, get_taxonomy, register_taxonomy
