"""The embedded model's own logic, without loading weights: how streamed answers end, truncated JSON.

A stand-in replaces the llama.cpp object (generation is not under test here; the real model is in
tests/test_integration_embedded.py).
"""

import asyncio
import json
import threading
import time

import pytest

from mesa.local import EmbeddedModel, close_truncated_json


class _StandInLlama:
    def __init__(self, pieces):
        self.pieces = pieces
        self.closed = False

    def create_chat_completion(self, stream, **request):
        def generate():
            try:
                for i, piece in enumerate(self.pieces):
                    last = i == len(self.pieces) - 1
                    yield {"choices": [{"delta": {"content": piece}, "finish_reason": "length" if last else None}]}
            finally:
                self.closed = True

        return generate()


def _model(pieces, **kwargs):
    model = EmbeddedModel("stand-in.gguf", prompt_cache_mb=0, **kwargs)
    model._llama = _StandInLlama(pieces)
    return model


ASK = [{"role": "user", "content": "How do I cope?"}]


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["It sounds hard.", " I'm here.", "\n", "\nFirstly, ", "breathe"], "It sounds hard. I'm here.\n"),
        (["It sounds hard.\n\nFirstly"], "It sounds hard."),
        (["\n\nA leading blank line is not an end.", "\n\nThis is."], "\n\nA leading blank line is not an end."),
    ],
)
def test_a_text_answer_ends_at_its_first_blank_line(pieces, expected):
    model = _model(pieces)
    out = list(model.stream(ASK, {}))
    assert "".join(piece for piece, _ in out) == expected
    assert out[-1] == ("", "stop")
    assert model._llama.closed  # generation stopped, not run to max_tokens in the background


def test_json_answers_and_one_paragraph_off_are_never_cut():
    pieces = ['{"a": "x.', '\n\n', 'y"}']
    json_out = list(_model(pieces).stream(ASK, {"response_format": {"type": "json_object"}}))
    assert "".join(p for p, _ in json_out) == '{"a": "x.\n\ny"}'
    text_out = list(_model(["One.", "\n\nTwo."], one_paragraph=False).stream(ASK, {}))
    assert "".join(p for p, _ in text_out) == "One.\n\nTwo." and text_out[-1][1] == "length"


def test_an_answer_without_a_blank_line_keeps_its_finish_reason():
    out = list(_model(["One", " two"]).stream(ASK, {}))
    assert out == [("One", None), (" two", "length")]


def test_truncated_json_is_closed_where_it_was_cut():
    assert json.loads(close_truncated_json('{"label": "fear", "rationale": "the user is wor')) == {
        "label": "fear",
        "rationale": "the user is wor",
    }
    assert close_truncated_json("not json at all {") is None


def test_prompt_cache_size_is_validated(monkeypatch):
    monkeypatch.setenv("MESA_LOCAL_PROMPT_CACHE_MB", "0")
    assert EmbeddedModel("x.gguf").prompt_cache_mb == 0
    with pytest.raises(ValueError):
        EmbeddedModel("x.gguf", prompt_cache_mb=-1)


class _EndlessLlama:
    """Generates pieces until closed; counts them."""

    def __init__(self):
        self.generated = 0
        self.closed = threading.Event()

    def create_chat_completion(self, stream, **request):
        def generate():
            try:
                while True:
                    self.generated += 1
                    time.sleep(0.001)
                    yield {"choices": [{"delta": {"content": "word "}, "finish_reason": None}]}
            finally:
                self.closed.set()

        return generate()


async def test_a_stream_nobody_reads_any_more_stops_generating(monkeypatch):
    from mesa import local

    model = EmbeddedModel("stand-in.gguf", prompt_cache_mb=0)
    model._llama = _EndlessLlama()
    monkeypatch.setitem(local._models, "endless", model)
    stream = local.local_provider().astreaming("endless", ASK, None, {}, None, None, None, None, None, {})
    assert (await anext(stream))["text"] == "word "
    await stream.aclose()  # a deadline or the reply cap ended the read
    assert await asyncio.to_thread(model._llama.closed.wait, 30)  # generation stopped instead of running forever
    assert not model._lock.locked()


async def test_an_abandoned_completion_stops_and_a_queued_one_never_runs(monkeypatch):
    from mesa import local

    model = EmbeddedModel("stand-in.gguf", prompt_cache_mb=0)
    model._llama = _EndlessLlama()
    monkeypatch.setitem(local._models, "endless", model)
    provider = local.local_provider()
    args = ("endless", ASK, None, {}, None, None, None, None, None, {})
    first = asyncio.create_task(provider.acompletion(*args))
    while model._llama.generated == 0:
        await asyncio.sleep(0.01)
    queued = asyncio.create_task(provider.acompletion(*args))  # waits for the model's lock
    await asyncio.sleep(0.05)
    queued.cancel()  # its caller's deadline passed while it waited
    await asyncio.gather(queued, return_exceptions=True)
    first.cancel()  # and then the running one's
    assert await asyncio.to_thread(model._llama.closed.wait, 30)  # it stopped generating
    await asyncio.gather(first, return_exceptions=True)
    generated = model._llama.generated
    await asyncio.to_thread(time.sleep, 0.2)
    assert model._llama.generated == generated  # and the queued one never started an endless generation
