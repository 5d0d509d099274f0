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
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
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
                    response_model=_schema_model(response_model),
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
            response_model=_schema_model(response_model), max_retries=0, **self._kwargs(messages, kwargs)
        )
        async for partial in self._bounded(partials, self._seconds(kwargs)):
            yield partial

    def stream_structured(self, messages: list[dict[str, Any]], response_model: type[T], **kwargs: Any) -> Iterator[BaseModel]:
        """Sync twin of :meth:`astream_structured`."""
        return _iterate_sync(self.astream_structured(messages, response_model, **kwargs))

    def _stream_request(self, messages: list[dict[str, Any]], response_model: type[BaseModel], overrides: dict[str, Any]):
        """The streamed request instructor would send for this LLM's mode, and that mode's handlers."""
        handlers = _mode_handlers(self.mode)
        _, kwargs = handlers.request_handler(response_model=_schema_model(response_model), kwargs=self._kwargs(messages, overrides))
        if handlers.message_converter is not None:
            kwargs["messages"] = handlers.message_converter(kwargs["messages"])
        return handlers, {**kwargs, "stream": True}

    async def _json_pieces(self, messages: list[dict[str, Any]], response_model: type[BaseModel], overrides: dict[str, Any]) -> AsyncIterator[str]:
        handlers, kwargs = self._stream_request(messages, response_model, overrides)
        stream = await self._completion_fn(True)(**kwargs)
        try:
            async for piece in handlers.stream_extractor_async(stream):
                yield piece
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()

    async def astream_fields(
        self, messages: list[dict[str, Any]], response_model: type[T], *, text_field: str | None = None, **kwargs: Any
    ) -> AsyncIterator[tuple[str, str, Any]]:
        """A structured answer read as the model writes it, validated once, at the end.

        Lighter than :meth:`astream_structured` (which validates a partial object at every piece):
        the raw JSON is read incrementally (:class:`~mesa.json_stream.JsonFieldReader`). Yields
        ``("field", name, value)`` as each top-level field completes (values as parsed, not yet
        validated), ``("text", text_field, piece)`` as that string field grows (escapes decoded whole),
        and last ``("answer", "", obj)``: the whole answer validated by ``response_model``. An answer
        that is not JSON, is cut off or is invalid raises :class:`~mesa.errors.StructuredOutputError`
        after the pieces it gave (no re-ask: ask again with :meth:`astructured`). The whole stream has
        the call's deadline.
        """
        from mesa.json_stream import JsonFieldReader

        reader = JsonFieldReader(text_field)
        pieces = self._bounded(self._json_pieces(messages, response_model, kwargs), self._seconds(kwargs))
        try:
            async for piece in pieces:
                for event in reader.feed(piece):
                    yield event
        finally:  # a caller that stops early (a reply long enough) closes the model's stream now, not at GC
            await pieces.aclose()
        yield "answer", "", self._validated(response_model, reader)

    def _validated(self, response_model: type[T], reader: Any) -> T:
        """The streamed answer as ``response_model``, or :class:`StructuredOutputError`."""
        from pydantic import ValidationError

        if not reader.done:
            raise StructuredOutputError(f"{self.model}: the {response_model.__name__} answer ended before it was complete", attempts=1)
        try:
            return response_model.model_validate(reader.fields)
        except ValidationError as exc:
            raise StructuredOutputError(f"{self.model} gave no valid {response_model.__name__}: {str(exc)[:300]}", attempts=1, last_error=str(exc)[:2000]) from exc

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


def _schema_model(response_model: Any) -> Any:
    """``response_model`` as instructor wraps it for a call, built once per Pydantic model.

    Anything else instructor accepts (``list[Model]``, simple types, ...) is passed on as it is.
    """
    if isinstance(response_model, type) and issubclass(response_model, BaseModel) and _can_wrap():
        return _wrapped_model(response_model)
    return response_model


@lru_cache(maxsize=1)
def _can_wrap() -> bool:
    """Whether this instructor has the wrapping helper mesa reuses (1.x ``v2`` layout); else instructor wraps per call."""
    try:
        from instructor.v2.core.function_calls import response_schema  # noqa: F401
    except ImportError:
        log.info("instructor has no instructor.v2.core.function_calls.response_schema; response models are wrapped per call")
        return False
    return True


@lru_cache(maxsize=256)
def _wrapped_model(response_model: type[T]) -> type[T]:
    """instructor's wrapping of a Pydantic model, made once instead of at every call.

    instructor makes a new subclass of the model for every request (and JSON-schema modes regenerate its
    schema each time); both cost milliseconds of CPU per call. Given an already wrapped class, instructor
    uses it as it is. Its JSON schema is generated once and handed out as a fresh copy each time, since
    request code may change it in place.
    """
    from instructor.v2.core.function_calls import response_schema

    wrapped = response_schema(response_model)
    schema_json = json.dumps(wrapped.model_json_schema())
    generate = wrapped.model_json_schema

    def model_json_schema(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return generate(*args, **kwargs) if args or kwargs else json.loads(schema_json)

    wrapped.model_json_schema = model_json_schema  # type: ignore[method-assign]
    return wrapped


@lru_cache(maxsize=32)
def _mode_handlers(mode: str):
    """instructor's request shaping and stream reading for a mode, as its LiteLLM client uses them."""
    import instructor
    from instructor.v2.core.providers import Provider
    from instructor.v2.core.registry import mode_registry

    return mode_registry.get_handlers(Provider.OPENAI, instructor.Mode[mode.upper()])
