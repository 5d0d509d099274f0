"""A stable digest of settings, for cache keys: equal settings give equal digests, in any process.

:func:`fingerprint` reads a value's content, not its identity: numbers and strings as they are,
Pydantic models as JSON, arrays (numpy or anything with ``dtype`` and ``tobytes``) by a hash of
their bytes, other objects by their class and public attributes. An object that knows better
defines ``cache_identity()`` (returning any value this function can read), as :class:`mesa.llm.LLM`
does. Secrets (``api_key``, ``*_token``, ``*secret*``, ``*password*``) are left out, so rotating a
key keeps the cache. What cannot be read (a lock, a socket) counts by its class only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["fingerprint", "is_secret"]

_SECRET = re.compile(r"(^|_)(api_?key|token|password|auth|authorization)s?$|(^|_)secret", re.IGNORECASE)
_NOT_SECRET = {"max_tokens", "max_completion_tokens", "max_new_tokens"}
_MAX_DEPTH = 8


def is_secret(name: str) -> bool:
    """Does a setting's name say it holds a credential (``api_key``, ``aws_session_token``)?"""
    return name not in _NOT_SECRET and bool(_SECRET.search(name))


def fingerprint(value: Any) -> str:
    """The SHA-256 hex digest of ``value``'s content (see the module docs)."""
    text = json.dumps(_readable(value, set(), 0), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _readable(value: Any, seen: set[int], depth: int) -> Any:
    """``value`` as JSON-able data that changes when its content does."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", hashlib.sha256(value).hexdigest()]
    if isinstance(value, PurePath):
        return str(value)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if id(value) in seen or depth > _MAX_DEPTH:
        return [kind, "..."]
    seen = seen | {id(value)}
    identity = getattr(value, "cache_identity", None)
    if callable(identity) and not isinstance(value, type):
        return [kind, _readable(identity(), seen, depth + 1)]
    if hasattr(value, "model_dump_json") and not isinstance(value, type):  # a Pydantic model
        return [kind, value.model_dump_json()]
    if hasattr(value, "dtype") and hasattr(value, "tobytes"):  # an array's weights
        return [kind, str(value.dtype), list(getattr(value, "shape", ())), hashlib.sha256(value.tobytes()).hexdigest()]
    if isinstance(value, Mapping):
        return {str(k): _readable(v, seen, depth + 1) for k, v in value.items() if not is_secret(str(k))}
    if isinstance(value, (list, tuple)):
        return [_readable(item, seen, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_readable(item, seen, depth + 1), sort_keys=True, default=str) for item in value)
    return [kind, _readable(_public_attributes(value), seen, depth + 1)]


def _public_attributes(value: Any) -> dict[str, Any]:
    """The object's own public attributes (a function: its code), or nothing when it has none to read."""
    code = getattr(value, "__code__", None)
    if code is not None:  # a function or lambda: what it does, and what it closed over
        cells = [cell.cell_contents for cell in (getattr(value, "__closure__", None) or ())]
        return {"code": code.co_code.hex(), "consts": repr(code.co_consts), "closure": cells}
    try:
        attributes = vars(value)
    except TypeError:
        slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
        attributes = {name: getattr(value, name) for name in slots if hasattr(value, name)}
    return {name: item for name, item in attributes.items() if not name.startswith("_")}
