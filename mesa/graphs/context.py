"""The LangGraph runtime context: everything a run depends on, none of it in the state.

Nodes receive it as ``runtime.context`` (``Runtime[SupportContext]``).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from mesa.errors import MesaError
from mesa.state import MAX_TEXT_CHARS, Message, Prediction
from mesa.taxonomy import LabelSetName, Taxonomy

if TYPE_CHECKING:
    from mesa.llm import LLM
    from mesa.prompts import PromptSet
    from mesa.safety import SafetyPolicy
    from mesa.tools import Perception

__all__ = [
    "ClientContextPolicy",
    "ContextNotAllowed",
    "Demonstration",
    "DemonstrationSource",
    "LabelClassifier",
    "StrategyPolicy",
    "SupportContext",
]

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


@dataclass(frozen=True)
class SupportContext:
    """Dependencies of one run, passed as ``context=`` to ``invoke``/``stream``.

    Frozen: one context is a complete, fixed set of settings. ``dataclasses.replace(context, ...)``
    makes a changed copy (a :class:`~mesa.SupportAgent` keeps its settings as one, ``agent.settings``).

    ``llm`` may be given as a LiteLLM model string and ``taxonomy`` as a name, so a
    JSON context (LangGraph Server) works: ``{"llm": "openai/gpt-4o-mini", "taxonomy": "esconv"}``.
    Left out, they come from the environment, here and only here: ``llm`` from ``MESA_MODEL``
    (else the embedded model), ``taxonomy`` from ``MESA_TAXONOMY`` (else ``mesc``). So
    ``SupportContext()`` is a complete context; ``prompts`` and ``safety`` left out are the built-in
    prompts and ``SafetyPolicy.default()`` (one per process), so nodes read ``runtime.context`` only.

    Limits (see the reliability page): ``call_timeout`` is the deadline of each model call
    (``None``: the LLM's own ``LLM(timeout=...)``, 60 s by default); ``max_input_chars`` the
    largest user text (``None``: no limit); ``strict=True`` makes a label step that gives no
    valid answer fail the turn instead of leaving that label absent.
    """

    llm: LLM | str | None = None
    taxonomy: Taxonomy | str | None = None
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

        llm = LLM.from_model(self.llm if self.llm is not None else default_model())
        if self.call_timeout is not None and self.call_timeout != llm.timeout:
            llm = llm.with_timeout(self.call_timeout)
        self._resolve("llm", llm)
        self._resolve("taxonomy", get_taxonomy(self.taxonomy if self.taxonomy is not None else default_taxonomy()))
        if self.prompts is None:
            self._resolve("prompts", default_prompts())
        if self.safety is None:
            self._resolve("safety", default_safety_policy())

    def _resolve(self, name: str, value: Any) -> None:
        """Set a field while the context is being built (it is frozen afterwards)."""
        object.__setattr__(self, name, value)

    def answer_fingerprint(self, *more: Any) -> str:
        """A digest of every setting that can change a label step's answer, for cache keys.

        The model and its sampling settings, the prompts (the built-in ones when none are set), the
        taxonomy, the history window, the demonstrations source and their number, the classifier
        (its weights) and how it is used, ``extras``, mesa's version, and ``more`` (say, the graph
        mode). Only what cannot change a label is left out: the thread, deadlines, input limits,
        ``strict``, and the safety and perception parts (their results reach a step through the state).
        """
        from mesa import __version__
        from mesa.fingerprint import fingerprint

        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_IN_ANSWERS}
        return fingerprint([__version__, settings, list(more)])


_NOT_IN_ANSWERS = ("thread_id", "strict", "call_timeout", "max_input_chars", "safety", "perception")
"""SupportContext fields that cannot change a label step's answer (every other field can, new ones included)."""


@lru_cache(maxsize=1)
def default_prompts() -> PromptSet:
    """The built-in prompts, read once."""
    from mesa.prompts import PromptSet

    return PromptSet.default()


@lru_cache(maxsize=1)
def default_safety_policy() -> SafetyPolicy:
    """``SafetyPolicy.default()``, built once: a run without a policy in its context still gets the full protocol."""
    from mesa.safety import SafetyPolicy

    return SafetyPolicy.default()


def default_model() -> str | None:
    """The operator's model: ``MESA_MODEL``, or ``None`` for the embedded model."""
    return os.environ.get("MESA_MODEL") or None


def default_taxonomy() -> str:
    """The operator's taxonomy: ``MESA_TAXONOMY``, or ``mesc``."""
    return os.environ.get("MESA_TAXONOMY") or "mesc"


class ContextNotAllowed(MesaError):
    """A client's run context asked for something the operator has not allowed (a model, a file, an object)."""


@dataclass(frozen=True)
class ClientContextPolicy:
    """What a *client's* run context may choose on a server (LangGraph Server), set by the operator.

    A run context arrives as JSON from whoever can reach the server. Without limits it could pick any
    provider (on the operator's keys) or name local files (a taxonomy JSON, a ``.gguf``). So:

    - ``allowed_models``: model patterns (``fnmatch``: ``"openai/gpt-4o*"``; ``"*"`` allows any). From
      ``MESA_ALLOWED_MODELS`` (comma-separated); unset, only the operator's own default model.
    - ``allow_local_files``: may a client name a taxonomy JSON file or a ``.gguf`` model?
      ``MESA_ALLOW_LOCAL_FILES=1``; off by default: taxonomies by registered name only.
    """

    allowed_models: tuple[str, ...]
    allow_local_files: bool = False

    @classmethod
    def from_env(cls) -> ClientContextPolicy:
        from mesa.llm import DEFAULT_MODEL

        listed = [p.strip() for p in os.environ.get("MESA_ALLOWED_MODELS", "").split(",") if p.strip()]
        allow_files = os.environ.get("MESA_ALLOW_LOCAL_FILES", "").lower() in ("1", "true", "yes")
        return cls(tuple(listed) or (default_model() or DEFAULT_MODEL,), allow_files)

    def check_model(self, model: str) -> str:
        """``model`` if a client may use it, else :class:`ContextNotAllowed`."""
        if not isinstance(model, str):
            raise ContextNotAllowed("the run context's llm must be a model string")
        if _names_a_file(model) and not self.allow_local_files:
            raise ContextNotAllowed(f"model {model!r} names a local file; the operator allows none (MESA_ALLOW_LOCAL_FILES)")
        if not any(fnmatch.fnmatchcase(model, pattern) for pattern in self.allowed_models):
            raise ContextNotAllowed(f"model {model!r} is not allowed here; allowed: {', '.join(self.allowed_models)} (MESA_ALLOWED_MODELS)")
        return model

    def check_taxonomy(self, name: str) -> str:
        """``name`` if it is a registered taxonomy (or a file the operator allows), else :class:`ContextNotAllowed`."""
        from mesa.taxonomy import taxonomy_names

        if not isinstance(name, str):
            raise ContextNotAllowed("the run context's taxonomy must be a name")
        if name.lower() in taxonomy_names():
            return name
        if self.allow_local_files and name.lower().endswith(".json"):
            return name
        raise ContextNotAllowed(f"taxonomy {name!r} is not one of: {', '.join(taxonomy_names())}")


def _names_a_file(model: str) -> bool:
    """Does a model string point at a file on this machine (``mesa-local/<path>.gguf``, ``/x/y.gguf``)?"""
    name = model.split("/", 1)[1] if "/" in model else model
    return name.lower().endswith(".gguf") or name.startswith(("/", "~", ".")) or ("/" in name and model.startswith("mesa-local/"))
