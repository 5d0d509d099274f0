"""Exception types. Everything mesa raises on purpose derives from :class:`MesaError`::

    MesaError
    ├── MissingExtraError          (also an ImportError) an optional dependency is not installed
    ├── InputTooLargeError         the user's text is over the size limit; raised before any model call or write
    ├── TurnTimeoutError           (also a TimeoutError) the whole turn ran past its deadline
    ├── AgentClosedError           (also a RuntimeError) the SupportAgent was closed
    ├── InvalidThreadIdError       (also a ValueError) a thread id that cannot name a conversation
    ├── LLMError                   a model call failed (network, provider, configuration)
    │   ├── LLMTimeoutError        (also a TimeoutError) one model call ran past its deadline
    │   └── StructuredOutputError  no valid structured answer within the re-asks
    ├── BackendError               a perception backend is misconfigured
    │   └── BackendNotFoundError   (also a LookupError) no backend of that kind and name
    ├── MediaError                 (also a ValueError) media that cannot be perceived (recorded as the cue's error)
    ├── CallCancelledError         a perception call was cancelled (its deadline passed)
    ├── ContextNotAllowed          (mesa.graphs.context) a server client's run context asked for what the operator forbids
    ├── ClassifierFileError        (also a ValueError) a stored classifier that cannot be used
    │   └── ClassifierMismatchError  its labels are not the taxonomy's
    ├── AdapterMismatchError       (also a ValueError) an encoder adapter for other base weights (mesa.safety.minilm)
    └── BadTurn, UploadTooLarge, UnsupportedUpload   (mesa.serve) a request the chat server refuses
"""

from __future__ import annotations

__all__ = [
    "InputTooLargeError",
    "LLMError",
    "LLMTimeoutError",
    "MesaError",
    "MissingExtraError",
    "StructuredOutputError",
    "TurnTimeoutError",
]


class MesaError(Exception):
    """Base class of mesa's exceptions."""


class MissingExtraError(MesaError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""

    def __init__(self, what: str, extra: str, module: str | None = None, install: str | None = None) -> None:
        self.extra = extra
        install = install or f'pip install "mesa-esc[{extra}]"'
        super().__init__(f'{what} needs the "{extra}" extra: {install}')
        self.name = module


class InputTooLargeError(MesaError):
    """The user's text is longer than the configured limit (``SupportAgent(max_input_chars=...)``).

    Raised before any model call and before anything is stored. Not a ``ValueError`` on purpose:
    Pydantic validators let it through unwrapped. ``size`` and ``limit`` are in characters.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message has {size} characters; the limit is {limit} (SupportAgent(max_input_chars=...))")
        self.size = size
        self.limit = limit


class TurnTimeoutError(MesaError, TimeoutError):
    """The whole turn ran past its deadline (``SupportAgent(turn_timeout=...)``); ``seconds`` is that deadline."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class LLMError(MesaError):
    """The model call failed (network, provider, configuration)."""


class LLMTimeoutError(LLMError, TimeoutError):
    """One model call (its re-asks and the whole of a stream included) ran past ``LLM(timeout=...)``."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


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


class ClassifierFileError(MesaError, ValueError):
    """A file that is not a classifier mesa can read (another format, a newer version)."""


class ClassifierMismatchError(ClassifierFileError):
    """A stored classifier was trained on other labels than the taxonomy it is meant for."""


class AdapterMismatchError(MesaError, ValueError):
    """An encoder adapter that cannot be merged: trained on other base weights, or a file that is not an adapter."""


__all__ += ["AdapterMismatchError", "ClassifierFileError", "ClassifierMismatchError"]
