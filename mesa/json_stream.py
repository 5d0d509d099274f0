"""Read one JSON object as it streams in, without re-parsing it at every piece.

A structured answer streams as raw JSON text cut anywhere (inside a key, inside an escape such as
``\\u00e9`` or ``\\"``). :class:`JsonFieldReader` is fed those pieces and reports

- each top-level field once its value is complete (``("field", name, value)``, the value parsed), and
- for one string field named up front (the reply), its decoded text as it grows (``("text", name, piece)``),
  escapes decoded only once whole, so a piece never holds half an escape.

It checks only the JSON's shape (anything else raises :class:`~mesa.errors.StructuredOutputError`); the caller validates the whole object once at the end (with the
response model). The work per piece is proportional to the piece, so a long answer costs no more per
character than a short one. Used by :meth:`mesa.llm.LLM.astream_fields`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mesa.errors import StructuredOutputError

__all__ = ["JsonFieldReader"]

_STRING_STOP = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,}\]\s]")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WHITESPACE = " \t\r\n"


def _not_json(message: str) -> StructuredOutputError:
    """The streamed answer is not the JSON object it should be (a stray character, a bad escape)."""
    return StructuredOutputError(f"the streamed answer is not a JSON object: {message}", attempts=1)


def _string_end(buffer: str, start: int) -> int | None:
    """Index just past the JSON string opening at ``start`` (a quote), or ``None`` while it is incomplete."""
    at = start + 1
    while (stop := _STRING_STOP.search(buffer, at)) is not None:
        if stop.group() == '"':
            return stop.end()
        at = stop.start() + 2  # skip the escaped character (a \\u escape's hex digits hold no quote or backslash)
    return None


def _container_end(buffer: str, start: int) -> int | None:
    """Index just past the object or array opening at ``start``, or ``None`` while it is incomplete."""
    depth, at = 0, start
    while at < len(buffer):
        char = buffer[at]
        if char == '"':
            end = _string_end(buffer, at)
            if end is None:
                return None
            at = end
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    return None


def _value_end(buffer: str, start: int) -> int | None:
    """Index just past the JSON value starting at ``start``, or ``None`` while more text is needed."""
    first = buffer[start]
    if first == '"':
        return _string_end(buffer, start)
    if first in "{[":
        return _container_end(buffer, start)
    end = _SCALAR_END.search(buffer, start)  # a number or literal ends where the next token begins
    return end.start() if end is not None else None


class JsonFieldReader:
    """Feed it the pieces of one streamed JSON object; it returns what each piece completed.

    Args:
        text_field: the string field whose text is reported as it grows (``("text", name, piece)``);
            when complete it is reported as a field too, like every other field.
    """

    def __init__(self, text_field: str | None = None) -> None:
        self.text_field = text_field
        self.buffer = ""
        self.fields: dict[str, Any] = {}
        self._at = 0  # the next character not yet read
        self._state = "object"  # object → key → colon → value → comma → ... → done
        self._key = ""
        self._text: list[str] = []  # decoded pieces of the text field so far

    @property
    def done(self) -> bool:
        """The object's closing brace was read."""
        return self._state == "done"

    @property
    def text(self) -> str:
        """The decoded text of the text field so far."""
        return "".join(self._text)

    def feed(self, piece: str) -> list[tuple[str, str, Any]]:
        """Add ``piece``; the fields it completed and the text it added, in order."""
        self.buffer += piece
        events: list[tuple[str, str, Any]] = []
        while self._step(events):
            pass
        return events

    # -- one step of the reader: True when it moved on, False when it needs more text ------------------

    def _skip_space(self) -> str | None:
        while self._at < len(self.buffer) and self.buffer[self._at] in _WHITESPACE:
            self._at += 1
        return self.buffer[self._at] if self._at < len(self.buffer) else None

    def _step(self, events: list[tuple[str, str, Any]]) -> bool:
        if self._state == "text":
            return self._read_text(events)
        char = self._skip_space()
        if char is None or self._state == "done":
            return False
        return getattr(self, f"_on_{self._state}")(char, events)

    def _expect(self, char: str, wanted: str, next_state: str) -> bool:
        if char != wanted:
            raise _not_json(f"expected {wanted!r} at character {self._at} of the answer, got {char!r}")
        self._at += 1
        self._state = next_state
        return True

    def _on_object(self, char: str, events: list) -> bool:
        return self._expect(char, "{", "key")

    def _on_key(self, char: str, events: list) -> bool:
        if char == "}" and not self.fields:  # an empty object
            return self._expect(char, "}", "done")
        if char != '"':
            raise _not_json(f"expected a field name at character {self._at} of the answer, got {char!r}")
        end = _string_end(self.buffer, self._at)
        if end is None:
            return False
        self._key = json.loads(self.buffer[self._at : end])
        self._at = end
        self._state = "colon"
        return True

    def _on_colon(self, char: str, events: list) -> bool:
        return self._expect(char, ":", "value")

    def _on_value(self, char: str, events: list) -> bool:
        if char == '"' and self._key == self.text_field:
            self._at += 1
            self._state = "text"
            return True
        end = _value_end(self.buffer, self._at)
        if end is None:
            return False
        try:
            value = json.loads(self.buffer[self._at : end])
        except ValueError as exc:
            raise _not_json(f"field {self._key!r} holds no valid JSON value: {exc}") from exc
        self._at = end
        self._complete(value, events)
        return True

    def _on_comma(self, char: str, events: list) -> bool:
        if char == "}":
            return self._expect(char, "}", "done")
        return self._expect(char, ",", "key")

    def _complete(self, value: Any, events: list) -> None:
        self.fields[self._key] = value
        events.append(("field", self._key, value))
        self._state = "comma"

    def _read_text(self, events: list) -> bool:
        """Decode the text field from where it was left: plain runs at once, escapes once whole."""
        stop = _STRING_STOP.search(self.buffer, self._at)
        plain = self.buffer[self._at : stop.start() if stop else len(self.buffer)]
        if plain:
            self._emit_text(plain, events)
            self._at += len(plain)
        if stop is None:
            return False
        if stop.group() == '"':
            self._at = stop.end()
            self._complete(self.text, events)
            return True
        decoded, length = self._escape(stop.start())
        if decoded is None:
            return False  # the escape is cut by the end of the piece: wait for the rest
        self._emit_text(decoded, events)
        self._at += length
        return True

    def _escape(self, start: int) -> tuple[str | None, int]:
        """The character(s) of the escape at ``start`` and its length, or ``(None, 0)`` when it is incomplete."""
        rest = self.buffer[start : start + 12]
        if len(rest) < 2:
            return None, 0
        if rest[1] in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[rest[1]], 2
        if rest[1] != "u":
            raise _not_json(f"bad escape {rest[:2]!r} in field {self._key!r}")
        if len(rest) < 6:
            return None, 0
        length = 6
        if 0xD800 <= _hex(rest[2:6]) <= 0xDBFF:  # a high surrogate: its low half should follow as a second escape
            tail = rest[6:12]
            if len(tail) < 6 and "\\u".startswith(tail[:2]):
                return None, 0  # the second escape may still be coming
            if tail.startswith("\\u"):
                length = 12
        try:
            return json.loads(f'"{rest[:length]}"'), length
        except ValueError as exc:
            raise _not_json(f"bad escape {rest[:length]!r} in field {self._key!r}") from exc

    def _emit_text(self, text: str, events: list) -> None:
        self._text.append(text)
        events.append(("text", self._key, text))


def _hex(digits: str) -> int:
    try:
        return int(digits, 16)
    except ValueError:
        raise _not_json(f"bad \\u escape {digits!r}") from None
