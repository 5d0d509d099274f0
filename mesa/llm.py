"""One LLM interface over LiteLLM + instructor.

:class:`LLM` wraps any LiteLLM model string (``"openai/gpt-4o-mini"``,
``"ollama_chat/llama3.1"``, ``"hosted_vllm/..."``, the embedded
``"mesa-local/smollm2"``) or a LiteLLM ``Router``. It offers

- structured calls (``structured`` / ``astructured``) through instructor: the
  answer is parsed into a Pydantic model; an invalid answer (say, a label
  outside the taxonomy) is re-asked up to ``max_retries`` times and never
  returned; when the model never answers validly a
  :class:`~mesa.errors.StructuredOutputError` is raised;
- streamed structured answers (``stream_structured`` / ``astream_structured``):
  partial objects whose fields fill in as the model writes them, for showing
  progress; the caller validates the last one (no re-ask happens mid-stream);
- text calls (``text`` / ``atext``) and streamed text (``stream_text`` /
  ``astream_text``).

Every call has a deadline (``LLM(timeout=...)``, 60 s by default; a call's own
``timeout=`` wins): it is passed to LiteLLM and also enforced here with
``asyncio.timeout`` around the whole call — its re-asks, and the whole of a
stream, so a stream that stalls after one token ends too. On expiry
:class:`~mesa.errors.LLMTimeoutError` is raised.

The async methods are the bodies; each sync twin runs its async twin on one
background event loop (:func:`mesa.bridge.run_sync`), so the logic and the deadlines are
written once.

The structured-output mode is chosen per provider (:data:`STRUCTURED_MODES`):
tool calls for hosted APIs, a schema-carrying ``response_format`` for local
servers and the embedded llama.cpp model (which only give valid JSON when a
grammar constrains them). With a LiteLLM ``Router`` the caller names the model
group (:meth:`LLM.from_router`); the mode is one that every deployment the
group can reach (its fallbacks included) accepts.

LiteLLM is imported on first use, with its price-list fetch turned off
(``LITELLM_LOCAL_MODEL_COST_MAP=True``) unless you set that variable.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from mesa.bridge import END as _END
from mesa.bridge import iterate_sync as _iterate_sync
from mesa.bridge import next_or_end as _next_or_end
from mesa.bridge import run_sync
from mesa.errors import LLMError, LLMTimeoutError, StructuredOutputError

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MODEL",
    "LLM",
    "PROVIDERS",
    "STRUCTURED_MODES",
    "import_litellm",
    "register_provider",
    "register_structured_mode",
    "run_sync",
]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
log = logging.getLogger("mesa.llm")

DEFAULT_CALL_TIMEOUT = 60.0
"""Seconds one model call may take (re-asks and the whole stream included). Hosted models answer in
a few seconds and the embedded model in 3–10 s on a small CPU; LiteLLM's own default is 6000 s."""

DEFAULT_MODEL = "mesa-local/smollm2"
"""The embedded offline model (SmolLM2-135M-Instruct, in-process llama.cpp). Tiny: for trying things out."""

STRUCTURED_MODES: dict[str, str] = {
    "mesa-local": "json_schema",
    "mesa-scripted": "json_schema",
    "ollama": "json_schema",
    "ollama_chat": "json_schema",
    "hosted_vllm": "json_schema",
    "lm_studio": "json_schema",
    "llamafile": "json_schema",
    "openai": "tools",
    "azure": "tools",
    "anthropic": "tools",
    "gemini": "tools",
    "vertex_ai": "tools",
    "mistral": "tools",
    "groq": "tools",
    "bedrock": "tools",
}
"""Provider prefix → instructor mode name (``instructor.Mode[name.upper()]``). Unknown providers use ``"tools"``."""

PROVIDERS: dict[str, str] = {
    "mesa-local": "mesa.local:local_provider",
    "mesa-scripted": "mesa.testing:scripted_provider",
}
"""LiteLLM custom providers of mesa's: model-string prefix → ``"module:factory"``, a dotted path imported only
when LiteLLM is first used (so this module imports neither the embedded model nor the test double)."""

_litellm_lock = threading.Lock()
_litellm_ready = False


def register_structured_mode(provider: str, mode: str) -> None:
    """Choose the instructor mode (e.g. ``"tools"``, ``"json_schema"``) for a provider prefix."""
    STRUCTURED_MODES[provider] = mode


def register_provider(prefix: str, factory: str, *, mode: str = "json_schema") -> None:
    """Make ``prefix/...`` model strings reach a LiteLLM ``CustomLLM`` built by ``factory`` (``"module:function"``).

    The factory is imported when LiteLLM is first used (now, when it already was).
    """
    with _litellm_lock:
        PROVIDERS[prefix] = factory
        STRUCTURED_MODES.setdefault(prefix, mode)
        if _litellm_ready:
            _install_providers(sys.modules["litellm"])


def _load_factory(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _install_providers(litellm: Any) -> None:
    """Add each provider of :data:`PROVIDERS` that LiteLLM does not know yet to its custom provider map."""
    existing = {entry["provider"] for entry in litellm.custom_provider_map}
    for prefix, factory in PROVIDERS.items():
        if prefix not in existing:
            litellm.custom_provider_map.append({"provider": prefix, "custom_handler": _load_factory(factory)()})


def import_litellm():
    """Import LiteLLM once, without its network price-list fetch, with mesa's providers registered."""
    global _litellm_ready
    if _litellm_ready:
        import litellm

        return litellm
    with _litellm_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        _install_providers(litellm)
        litellm.suppress_debug_info = True
        # LiteLLM warns each time its logging worker meets a new event loop; mesa runs graphs on
        # its own loop, so that warning is noise. Errors still show.
        lite_logger = logging.getLogger("LiteLLM")
        if lite_logger.level in (logging.NOTSET, logging.WARNING):  # not when LITELLM_LOG asks for more
            lite_logger.setLevel(logging.ERROR)
        _litellm_ready = True
        return litellm


def _provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


# -- the sync twins' bridge: mesa.bridge (one shared loop thread) ---------------------------------


# -- routers ------------------------------------------------------------------------------------


def _router_groups(router: Any) -> list[str]:
    """The router's model groups in the order they were configured (not sorted)."""
    return list(dict.fromkeys(entry["model_name"] for entry in router.model_list))


def _reachable_groups(router: Any, group: str) -> list[str]:
    """``group`` and every group its fallbacks (of any kind) can lead to."""
    reach = [group]
    rules: list[dict[str, Any]] = []
    for name in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        rules += [rule for rule in getattr(router, name, None) or [] if isinstance(rule, dict)]
    for current in reach:
        for rule in rules:
            for target in rule.get(current, []) + (rule.get("*", []) if current == group else []):
                if target not in reach:
                    reach.append(target)
    return reach


def _router_mode(router: Any, group: str) -> str:
    """One structured-output mode every deployment ``group`` can reach accepts.

    instructor shapes the request once, before the router picks a deployment, so the mode cannot
    change per deployment. When the providers agree, theirs; when they differ, ``json_schema``
    (a ``response_format`` with the schema), which LiteLLM translates for every provider that has
    structured output, while local servers often reject tool calls.
    """
    groups = set(_reachable_groups(router, group))
    models = [entry.get("litellm_params", {}).get("model", "") for entry in router.model_list if entry["model_name"] in groups]
    modes = {STRUCTURED_MODES.get(_provider_of(model), "tools") for model in models if model}
    if len(modes) == 1:
        return modes.pop()
    if modes:
        log.info("router group %r reaches providers with different output modes %s; using json_schema", group, sorted(modes))
    return "json_schema"


class LLM:
    """A chat model reached through LiteLLM, with structured output through instructor.

    Args:
        model: a LiteLLM model string, or a model group name when ``router`` is given.
        mode: instructor mode name (``"tools"``, ``"json_schema"``, ``"json"``, ...); default by provider.
        max_retries: how many times an invalid structured answer is re-asked.
        temperature: default sampling temperature of every call (a call's own kwargs win).
        max_tokens: default output limit of every call.
        timeout: seconds each call may take, re-asks and the whole stream included (default 60);
            passed to LiteLLM and enforced here. ``None``: no deadline of mesa's (LiteLLM's own, 6000 s).
        router: a ``litellm.Router`` for fallbacks and load balancing (see :meth:`from_router`).
        **completion_kwargs: passed to every LiteLLM call (``api_base``, ``api_key``, ...).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        mode: str | None = None,
        max_retries: int = 2,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = DEFAULT_CALL_TIMEOUT,
        router: Any = None,
        **completion_kwargs: Any,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
        if router is not None and model not in _router_groups(router):
            raise ValueError(f"the router has no model group {model!r}; its groups are {_router_groups(router)}")
        if router is None and _provider_of(model) == "mesa-local":
            from mesa.local import check_installed

            check_installed(model.split("/", 1)[1])
        self.model = model
        self.router = router
        self.mode = mode or (_router_mode(router, model) if router is not None else STRUCTURED_MODES.get(_provider_of(model), "tools"))
        self.max_retries = max_retries
        self.timeout = timeout
        self.defaults: dict[str, Any] = dict(completion_kwargs)
        if temperature is not None:
            self.defaults["temperature"] = temperature
        if max_tokens is not None:
            self.defaults["max_tokens"] = max_tokens
        self._clients: dict[bool, Any] = {}
        self.owner: Any = None  # the object this LLM was made from (say, a scripted model), kept alive with it

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, mode={self.mode!r}, timeout={self.timeout!r})"

    @classmethod
    def from_model(cls, model: str | LLM | Any = None, **kwargs: Any) -> LLM:
        """An :class:`LLM` from a model string, an ``LLM``, a scripted model or a LiteLLM ``Router``."""
        if model is None:
            return cls(DEFAULT_MODEL, **kwargs)
        if isinstance(model, LLM):
            return model
        if isinstance(model, str):
            return cls(model, **kwargs)
        as_llm = getattr(model, "as_llm", None)
        if callable(as_llm):
            return as_llm(**kwargs)
        if hasattr(model, "acompletion") and hasattr(model, "model_list"):
            return cls.from_router(model, **kwargs)
        raise TypeError(f"cannot make an LLM from {type(model).__name__}; pass a LiteLLM model string")

    @classmethod
    def from_router(cls, router: Any, group: str | None = None, **kwargs: Any) -> LLM:
        """An :class:`LLM` over a LiteLLM ``Router``, calling its model group ``group``.

        Without ``group``, the router's first model group in its configured order (the first entry
        of its ``model_list``), so list the primary first. The router's fallbacks work as usual.
        """
        groups = _router_groups(router)
        if not groups:
            raise ValueError("the router has no model groups (its model_list is empty)")
        return cls(group or groups[0], router=router, **kwargs)

    def with_timeout(self, seconds: float | None) -> LLM:
        """A copy of this LLM whose calls have ``seconds`` as their deadline."""
        twin = copy.copy(self)
        twin.timeout = seconds
        return twin

    def cache_identity(self) -> dict[str, Any]:
        """What of this LLM can change an answer, for cache keys (:func:`mesa.fingerprint.fingerprint`): the model,
        the output mode, the re-asks, the sampling settings (``temperature``, ``max_tokens``, ``seed``...) and a
        router's deployments. Credentials are left out by the fingerprint."""
        deployments = [entry.get("litellm_params", {}) for entry in self.router.model_list] if self.router is not None else None
        return {"model": self.model, "mode": self.mode, "max_retries": self.max_retries, "defaults": self.defaults, "deployments": deployments}

    # -- plumbing ---------------------------------------------------------------------------------

    def _completion_fn(self, is_async: bool):
        litellm = import_litellm()
        if self.router is not None:
            return self.router.acompletion if is_async else self.router.completion
        return litellm.acompletion if is_async else litellm.completion

    def _instructor(self, is_async: bool):
        client = self._clients.get(is_async)
        if client is None:
            import instructor

            client = instructor.from_litellm(self._completion_fn(is_async), mode=instructor.Mode[self.mode.upper()])
            self._clients[is_async] = client
        return client

    def _seconds(self, overrides: dict[str, Any]) -> float | None:
        """This call's deadline: its own ``timeout=`` when given, else the LLM's."""
        return overrides.get("timeout", self.timeout)

    def _kwargs(self, messages: list[dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
        kwargs = {"model": self.model, "messages": messages, **self.defaults, **overrides}
        if kwargs.get("timeout", self.timeout) is not None:
            kwargs.setdefault("timeout", self.timeout)  # LiteLLM's own deadline too (its default is 6000 s)
        return kwargs

    def _structured_error(self, exc: Exception, response_model: type[BaseModel]) -> LLMError:
        attempts = getattr(exc, "n_attempts", None) or 1
        last = getattr(exc, "last_completion", None)
        cause = exc.__cause__ or exc
        return StructuredOutputError(
            f"{self.model} gave no valid {response_model.__name__} after {attempts} attempt(s): {str(cause)[:300]}",
            attempts=attempts,
            last_error=str(cause)[:2000] if last is not None or cause else None,
        )

    def _wrap(self, exc: BaseException, seconds: float | None) -> LLMError:
        """Any failure as an :class:`LLMError`; a deadline (ours or LiteLLM's) as :class:`LLMTimeoutError`."""
        if isinstance(exc, LLMError):
            return exc
        if _is_timeout(exc):
            return LLMTimeoutError(f"{self.model}: no answer within {seconds} s", seconds=seconds or 0.0)
        return LLMError(f"{self.model}: {type(exc).__name__}: {str(exc)[:500]}")

    async def _bounded(self, stream: AsyncIterator[R], seconds: float | None) -> AsyncIterator[R]:
        """The items of ``stream``, all of them within ``seconds`` of the first request.

        The deadline covers only the waits for the model (each ``anext``), never the caller's work
        between items: a timer around a ``yield`` would cancel the caller instead.
        """
        deadline = None if seconds is None else asyncio.get_running_loop().time() + seconds
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    item = await _next_or_end(stream)
                if item is _END:
                    return
                yield item
        except Exception as exc:
            raise self._wrap(exc, seconds) from exc
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()

    # -- structured -------------------------------------------------------------------------------

    async def astructured(self, messages: list[dict[str, Any]], response_model: type[T], *, max_retries: int | None = None, **kwargs: Any) -> T:
        """Ask for an answer of type ``response_model``; invalid answers are re-asked, all within the deadline."""
        from instructor.core.exceptions import InstructorRetryException

        seconds = self._seconds(kwargs)
        client = self._instructor(True)  # imports LiteLLM on first use: not the model's time
        try:
            async with asyncio.timeout(seconds):
                return await client.chat.completions.create(
                    response_model=response_model,
                    max_retries=self.max_retries if max_retries is None else max_retries,
                    **self._kwargs(messages, kwargs),
                )
        except InstructorRetryException as exc:
            if _is_timeout(exc.__cause__):
                raise self._wrap(exc.__cause__, seconds) from exc
            raise self._structured_error(exc, response_model) from exc
        except Exception as exc:
            raise self._wrap(exc, seconds) from exc

    def structured(self, messages: list[dict[str, Any]], response_model: type[T], *, max_retries: int | None = None, **kwargs: Any) -> T:
        """Sync twin of :meth:`astructured`."""
        return run_sync(self.astructured(messages, response_model, max_retries=max_retries, **kwargs))

    async def astream_structured(self, messages: list[dict[str, Any]], response_model: type[T], **kwargs: Any) -> AsyncIterator[BaseModel]:
        """Partial answers of ``response_model`` as they are generated (every field optional, strings growing).

        Validate the last one with ``response_model.model_validate(last.model_dump())``; when that fails,
        ask again with :meth:`astructured` (which re-asks). The whole stream has the call's deadline.
        """
        partials = self._instructor(True).chat.completions.create_partial(
            response_model=response_model, max_retries=0, **self._kwargs(messages, kwargs)
        )
        async for partial in self._bounded(partials, self._seconds(kwargs)):
            yield partial

    def stream_structured(self, messages: list[dict[str, Any]], response_model: type[T], **kwargs: Any) -> Iterator[BaseModel]:
        """Sync twin of :meth:`astream_structured`."""
        return _iterate_sync(self.astream_structured(messages, response_model, **kwargs))

    # -- text -------------------------------------------------------------------------------------

    async def atext(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One text completion."""
        seconds = self._seconds(kwargs)
        complete = self._completion_fn(True)  # imports LiteLLM on first use: not the model's time
        try:
            async with asyncio.timeout(seconds):
                response = await complete(**self._kwargs(messages, kwargs))
        except Exception as exc:
            raise self._wrap(exc, seconds) from exc
        return response.choices[0].message.content or ""

    def text(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """Sync twin of :meth:`atext`."""
        return run_sync(self.atext(messages, **kwargs))

    async def _text_pieces(self, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> AsyncIterator[str]:
        stream = await self._completion_fn(True)(stream=True, **self._kwargs(messages, kwargs))
        async for chunk in stream:
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                yield piece

    async def astream_text(self, messages: list[dict[str, Any]], **kwargs: Any) -> AsyncIterator[str]:
        """Text as it is generated, piece by piece; the whole stream has the call's deadline."""
        async for piece in self._bounded(self._text_pieces(messages, kwargs), self._seconds(kwargs)):
            yield piece

    def stream_text(self, messages: list[dict[str, Any]], **kwargs: Any) -> Iterator[str]:
        """Sync twin of :meth:`astream_text`."""
        return _iterate_sync(self.astream_text(messages, **kwargs))


def _is_timeout(exc: BaseException | None) -> bool:
    """A deadline passed: asyncio's, or a provider's (LiteLLM's ``Timeout``, httpx's)."""
    if exc is None:
        return False
    if isinstance(exc, TimeoutError):
        return True
    return "timeout" in type(exc).__name__.lower()
