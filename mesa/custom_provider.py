"""The one LiteLLM ``CustomLLM`` adapter behind mesa's own providers (``mesa-local``, ``mesa-scripted``).

A provider implements four small methods over plain values (:class:`Answerer`); :func:`custom_provider`
wraps it in LiteLLM's ``CustomLLM`` with its long signatures, its response and its stream-chunk shapes,
written here once. LiteLLM is imported when the adapter is built (on LiteLLM's first use), never before.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple, Protocol

__all__ = ["Answer", "Answerer", "custom_provider"]


class Answer(NamedTuple):
    """A whole answer: its text, why it ended (``"stop"``, ``"length"``) and token counts when known."""

    text: str
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None


class Answerer(Protocol):
    """What a mesa provider implements; ``model`` is the part of the model string after ``<prefix>/``.

    Streams yield ``(piece, finish_reason)``, the reason ``None`` until the last piece.
    """

    def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer: ...

    async def acomplete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer: ...

    def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Iterator[tuple[str, str | None]]: ...

    def astream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[tuple[str, str | None]]: ...


_NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def custom_provider(prefix: str, answerer: Answerer) -> Any:
    """A LiteLLM ``CustomLLM`` answering ``<prefix>/<model>`` strings through ``answerer``."""
    from litellm import CustomLLM
    from litellm.types.utils import ModelResponse

    def response(model: str, answer: Answer) -> ModelResponse:
        return ModelResponse(
            id=f"{prefix}-{uuid.uuid4().hex[:12]}",
            created=int(time.time()),
            model=f"{prefix}/{model}",
            choices=[{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": answer.finish_reason}],
            usage=answer.usage or _NO_USAGE,
        )

    def chunk(piece: str, finish: str | None) -> dict[str, Any]:
        return {"text": piece, "is_finished": finish is not None, "finish_reason": finish or "", "usage": None, "index": 0, "tool_use": None}

    class Provider(CustomLLM):
        def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):
            return response(model, answerer.complete(model, messages, optional_params))

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):
            return response(model, await answerer.acomplete(model, messages, optional_params))

        def streaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):
            with contextlib.closing(answerer.stream(model, messages, optional_params)) as pieces:
                for piece, finish in pieces:
                    yield chunk(piece, finish)

        async def astreaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):
            # closed at once when the reader stops (a deadline, a reply cap), so the provider stops generating
            async with contextlib.aclosing(answerer.astream(model, messages, optional_params)) as pieces:
                async for piece, finish in pieces:
                    yield chunk(piece, finish)

    Provider.__name__ = Provider.__qualname__ = f"{prefix.title().replace('-', '')}Provider"
    return Provider()
