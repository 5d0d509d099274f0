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

The structured-output mode is chosen per provider (:data:`STRUCTURED_MODES`):
tool calls for hosted APIs, a schema-carrying ``response_format`` for local
servers and the embedded llama.cpp model (which only give valid JSON when a
grammar constrains them).

LiteLLM is imported on first use, with its price-list fetch turned off
(``LITELLM_LOCAL_MODEL_COST_MAP=True``) unless you set that variable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from mesa.errors import LLMError, StructuredOutputError

__all__ = [
    "DEFAULT_MODEL",
    "LLM",
    "STRUCTURED_MODES",
    "import_litellm",
    "register_structured_mode",
]

T = TypeVar("T", bound=BaseModel)

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

_litellm_lock = threading.Lock()
_litellm_ready = False


def register_structured_mode(provider: str, mode: str) -> None:
    """Choose the instructor mode (e.g. ``"tools"``, ``"json_schema"``) for a provider prefix."""
    STRUCTURED_MODES[provider] = mode


def import_litellm():
    """Import LiteLLM once, without its network price-list fetch, with mesa's providers registered."""
    global _litellm_ready
    if _litellm_ready:
        import litellm

        return litellm
    with _litellm_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        from mesa.local import local_provider
        from mesa.testing import scripted_provider

        existing = {entry["provider"] for entry in litellm.custom_provider_map}
        for name, handler in (("mesa-local", local_provider()), ("mesa-scripted", scripted_provider())):
            if name not in existing:
                litellm.custom_provider_map.append({"provider": name, "custom_handler": handler})
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


class LLM:
    """A chat model reached through LiteLLM, with structured output through instructor.

    Args:
        model: a LiteLLM model string, or a model group name when ``router`` is given.
        mode: instructor mode name (``"tools"``, ``"json_schema"``, ``"json"``, ...); default by provider.
        max_retries: how many times an invalid structured answer is re-asked.
        temperature: default sampling temperature of every call (a call's own kwargs win).
        max_tokens: default output limit of every call.
        router: a ``litellm.Router`` for fallbacks and load balancing.
        **completion_kwargs: passed to every LiteLLM call (``api_base``, ``api_key``, ``timeout``, ...).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        mode: str | None = None,
        max_retries: int = 2,
        temperature: float | None = None,
        max_tokens: int | None = None,
        router: Any = None,
        **completion_kwargs: Any,
    ) -> None:
        self.model = model
        self.mode = mode or STRUCTURED_MODES.get(_provider_of(model), "tools")
        self.max_retries = max_retries
        self.router = router
        self.defaults: dict[str, Any] = dict(completion_kwargs)
        if temperature is not None:
            self.defaults["temperature"] = temperature
        if max_tokens is not None:
            self.defaults["max_tokens"] = max_tokens
        self._clients: dict[bool, Any] = {}

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, mode={self.mode!r})"

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
            names = sorted({entry["model_name"] for entry in model.model_list})
            group = kwargs.pop("model_name", names[0] if names else DEFAULT_MODEL)
            return cls(group, router=model, **kwargs)
        raise TypeError(f"cannot make an LLM from {type(model).__name__}; pass a LiteLLM model string")

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

    def _kwargs(self, messages: list[dict[str, Any]], overrides: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, **self.defaults, **overrides}

    def _structured_error(self, exc: Exception, response_model: type[BaseModel]) -> LLMError:
        attempts = getattr(exc, "n_attempts", None) or 1
        last = getattr(exc, "last_completion", None)
        cause = exc.__cause__ or exc
        return StructuredOutputError(
            f"{self.model} gave no valid {response_model.__name__} after {attempts} attempt(s): {str(cause)[:300]}",
            attempts=attempts,
            last_error=str(cause)[:2000] if last is not None or cause else None,
        )

    def _wrap(self, exc: Exception) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        return LLMError(f"{self.model}: {type(exc).__name__}: {str(exc)[:500]}")

    # -- structured -------------------------------------------------------------------------------

    def structured(self, messages: list[dict[str, Any]], response_model: type[T], *, max_retries: int | None = None, **kwargs: Any) -> T:
        """Ask for an answer of type ``response_model``; invalid answers are re-asked."""
        from instructor.core.exceptions import InstructorRetryException

        try:
            return self._instructor(False).chat.completions.create(
                response_model=response_model,
                max_retries=self.max_retries if max_retries is None else max_retries,
                **self._kwargs(messages, kwargs),
            )
        except InstructorRetryException as exc:
            raise self._structured_error(exc, response_model) from exc
        except Exception as exc:
            raise self._wrap(exc) from exc

    async def astructured(self, messages: list[dict[str, Any]], response_model: type[T], *, max_retries: int | None = None, **kwargs: Any) -> T:
        """Async twin of :meth:`structured`."""
        from instructor.core.exceptions import InstructorRetryException

        try:
            return await self._instructor(True).chat.completions.create(
                response_model=response_model,
                max_retries=self.max_retries if max_retries is None else max_retries,
                **self._kwargs(messages, kwargs),
            )
        except InstructorRetryException as exc:
            raise self._structured_error(exc, response_model) from exc
        except Exception as exc:
            raise self._wrap(exc) from exc

    def stream_structured(self, messages: list[dict[str, Any]], response_model: type[T], **kwargs: Any) -> Iterator[BaseModel]:
        """Partial answers of ``response_model`` as they are generated (every field optional, strings growing).

        Validate the last one with ``response_model.model_validate(last.model_dump())``; when that fails,
        ask again with :meth:`structured` (which re-asks). This sync twin drives
        :meth:`astream_structured` on a private event loop (instructor hands LiteLLM's sync stream to its
        async parser), so call it from sync code only.
        """
        stream = self.astream_structured(messages, response_model, **kwargs)
        loop = asyncio.new_event_loop()
        try:
            while True:
                try:
                    partial = loop.run_until_complete(anext(stream))
                except StopAsyncIteration:
                    return
                yield partial
        finally:
            loop.run_until_complete(stream.aclose())
            loop.close()

    async def astream_structured(self, messages: list[dict[str, Any]], response_model: type[T], **kwargs: Any) -> AsyncIterator[BaseModel]:
        """Async twin of :meth:`stream_structured`."""
        try:
            async for partial in self._instructor(True).chat.completions.create_partial(
                response_model=response_model, max_retries=0, **self._kwargs(messages, kwargs)
            ):
                yield partial
        except LLMError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc

    # -- text -------------------------------------------------------------------------------------

    def text(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """One text completion."""
        try:
            response = self._completion_fn(False)(**self._kwargs(messages, kwargs))
        except Exception as exc:
            raise self._wrap(exc) from exc
        return response.choices[0].message.content or ""

    async def atext(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """Async twin of :meth:`text`."""
        try:
            response = await self._completion_fn(True)(**self._kwargs(messages, kwargs))
        except Exception as exc:
            raise self._wrap(exc) from exc
        return response.choices[0].message.content or ""

    def stream_text(self, messages: list[dict[str, Any]], **kwargs: Any) -> Iterator[str]:
        """Text as it is generated, piece by piece."""
        try:
            for chunk in self._completion_fn(False)(stream=True, **self._kwargs(messages, kwargs)):
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    yield piece
        except LLMError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc

    async def astream_text(self, messages: list[dict[str, Any]], **kwargs: Any) -> AsyncIterator[str]:
        """Async twin of :meth:`stream_text`."""
        try:
            stream = await self._completion_fn(True)(stream=True, **self._kwargs(messages, kwargs))
            async for chunk in stream:
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    yield piece
        except LLMError:
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc
