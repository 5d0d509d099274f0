"""The LangGraph runtime context: everything a run depends on, none of it in the state.

Nodes receive it as ``runtime.context`` (``Runtime[SupportContext]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from mesa.state import MAX_TEXT_CHARS, Message, Prediction
from mesa.taxonomy import MESC, Taxonomy

if TYPE_CHECKING:
    from mesa.llm import LLM
    from mesa.prompts import PromptSet
    from mesa.safety import SafetyPolicy
    from mesa.tools import Perception

__all__ = [
    "Demonstration",
    "DemonstrationSource",
    "LabelClassifier",
    "StrategyPolicy",
    "SupportContext",
]

LabelSetName = Literal["user_emotion", "strategy", "system_emotion"]


class Demonstration(BaseModel):
    """A labelled example turn shown to the model as a few-shot demonstration."""

    context: str
    user_emotion: str | None = None
    strategy: str | None = None
    system_emotion: str | None = None
    reply: str | None = None


@runtime_checkable
class DemonstrationSource(Protocol):
    """Finds labelled turns similar to the current one (e.g. by sentence embeddings)."""

    def retrieve(self, text: str, history: list[Message], k: int) -> list[Demonstration]: ...


@runtime_checkable
class LabelClassifier(Protocol):
    """A small supervised model for one or more label sets.

    Used either as the step itself (``classifier_use="step"``) or as a prior the
    LLM sees (``classifier_use="prior"``). ``predict_distribution`` returns the
    label probabilities in the taxonomy's label names.
    """

    def supports(self, which: LabelSetName) -> bool: ...

    def predict_distribution(self, which: LabelSetName, text: str, history: list[Message]) -> dict[str, float]: ...


@runtime_checkable
class StrategyPolicy(Protocol):
    """A user's own strategy policy, replacing the LLM's strategy step."""

    def __call__(self, text: str, user_emotion: Prediction | None, history: list[Message]) -> Prediction: ...


@dataclass
class SupportContext:
    """Dependencies of one run, passed as ``context=`` to ``invoke``/``stream``.

    ``llm`` may be given as a LiteLLM model string and ``taxonomy`` as a name, so a
    JSON context (LangGraph Server) works: ``{"llm": "openai/gpt-4o-mini", "taxonomy": "esconv"}``.

    Limits (see the reliability page): ``call_timeout`` is the deadline of each model call
    (``None``: the LLM's own ``LLM(timeout=...)``, 60 s by default); ``max_input_chars`` the
    largest user text (``None``: no limit); ``strict=True`` makes a label step that gives no
    valid answer fail the turn instead of leaving that label absent.
    """

    llm: LLM
    taxonomy: Taxonomy = MESC
    prompts: PromptSet | None = None
    perception: Perception | None = None
    safety: SafetyPolicy | None = None
    history_window: int = 8
    demonstrations: DemonstrationSource | None = None
    n_demonstrations: int = 4
    classifier: LabelClassifier | None = None
    classifier_use: Literal["prior", "step"] = "prior"
    thread_id: str | None = None
    strict: bool = False
    call_timeout: float | None = None
    max_input_chars: int | None = MAX_TEXT_CHARS
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mesa.llm import LLM
        from mesa.taxonomy import get_taxonomy

        self.llm = LLM.from_model(self.llm)
        if self.call_timeout is not None and self.call_timeout != self.llm.timeout:
            self.llm = self.llm.with_timeout(self.call_timeout)
        self.taxonomy = get_taxonomy(self.taxonomy)
