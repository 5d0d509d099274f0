"""Exception types. Everything mesa raises on purpose derives from :class:`MesaError`."""

from __future__ import annotations

__all__ = ["LLMError", "MesaError", "MissingExtraError", "StructuredOutputError"]


class MesaError(Exception):
    """Base class of mesa's exceptions."""


class MissingExtraError(MesaError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        self.extra = extra
        super().__init__(f'{what} needs the "{extra}" extra: pip install "mesa-esc[{extra}]"')
        self.name = module


class LLMError(MesaError):
    """The model call failed (network, provider, configuration)."""


class StructuredOutputError(LLMError):
    """The model never produced a valid answer of the requested type within the retries.

    ``attempts`` is how many times it was asked; ``last_error`` the last validation error.
    An invalid answer is never stored in the graph state.
    """

    def __init__(self, message: str, *, attempts: int, last_error: str | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_error = last_error


# -- conversation memory and the agent's life (mesa.memory, mesa.agent) --------------------------

__all__ += ["AgentClosedError", "InvalidThreadIdError"]


class AgentClosedError(MesaError, RuntimeError):
    """The ``SupportAgent`` was closed (``close()`` or the end of its ``with`` block); make a new one."""


class InvalidThreadIdError(MesaError, ValueError):
    """A ``thread_id`` that cannot name a conversation: not a string, empty, too long or not printable.

    Raised before anything is written.
    """
