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


# --------------------------------------------------------------------------- perception (mesa.tools)
# One tree: the perception errors live here too, so ``except mesa.MesaError`` covers them. Each keeps
# the standard base it had when it was defined in ``mesa.tools`` (LookupError, ValueError), so existing
# ``except`` clauses still work. ``mesa.tools.MissingExtraError`` is :class:`MissingExtraError` above.


class BackendError(MesaError):
    """A perception backend is misconfigured (unknown name, not a backend, bad settings)."""


class BackendNotFoundError(BackendError, LookupError):
    """No perception backend of that kind is registered under that name."""


class MediaError(MesaError, ValueError):
    """The input cannot be perceived: missing or not allowed, empty, corrupt, unsupported, too long or
    too large, silent, or showing no face. Recorded as the cue's ``error``; the turn goes on."""


class CallCancelledError(MesaError):
    """Raised inside a perception backend call whose caller gave up (it timed out), at the backend's
    next ``mesa.tools.check_cancelled()``; it ends that call, and nobody waits for its result."""


__all__ += ["BackendError", "BackendNotFoundError", "CallCancelledError", "MediaError"]
