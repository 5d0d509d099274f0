"""Disk caches backed by diskcache, storing JSON only (no pickle), in private files.

- :class:`DiskCache` is a LangGraph ``BaseCache``: pass it to
  ``graph.compile(cache=...)`` and give nodes a ``CachePolicy`` so a repeated
  step (same input) is answered from disk.
- :class:`PerceptionCache` memoises perception results by content hash +
  backend + settings (see :func:`PerceptionCache.key`).

A cache folder is data another process may have written, so reading it must
never run code: diskcache's default ``Disk`` pickles keys and values, and
``pickle.load`` of a planted entry runs whatever it names. Here keys are
strings, values are JSON text, and an entry stored any other way (a pickle) is
treated as a miss. LangGraph values go through its serializer with the pickle
fallback off and msgpack objects limited to mesa's state types. Folders are created 0700 and files 0600, whatever the umask.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import diskcache
from langgraph.cache.base import BaseCache, FullKey, Namespace

__all__ = ["DiskCache", "PerceptionCache", "default_cache_dir", "resolve_cache"]

_DB_FILES = ("cache.db", "cache.db-wal", "cache.db-shm")


def default_cache_dir() -> Path:
    """``$MESA_CACHE_DIR``, else ``~/.cache/mesa``."""
    return Path(os.environ.get("MESA_CACHE_DIR") or Path.home() / ".cache" / "mesa")


def resolve_cache(spec: Any, make: Callable[..., Any]) -> Any:
    """A ``cache=`` argument, with one meaning everywhere in mesa: ``None`` or ``False``: no cache; ``True``: the
    default folder; a folder path: a cache there (both made by ``make``); anything else: that cache object."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return make()
    if isinstance(spec, (str, Path)):
        return make(spec)
    return spec


class _UnsafeEntry(OSError):
    """An entry not stored as text by mesa (e.g. a planted pickle). diskcache treats an OSError as a miss."""


class JSONTextDisk(diskcache.Disk):
    """A diskcache ``Disk`` that stores string keys and string (JSON text) values, and never unpickles.

    Reading an entry in pickle mode raises :class:`_UnsafeEntry`, which diskcache answers as a miss;
    a non-raw (pickled) key is returned as its bytes, never loaded. Value files are created 0600 in
    folders created 0700.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"cache keys are strings, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        return bytes(key) if isinstance(key, (bytes, memoryview)) else key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple[int, int, str | None, Any]:
        if not isinstance(value, str) or read:
            raise TypeError(f"cache values are JSON text, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_TEXT):
            raise _UnsafeEntry(f"cache entry in mode {mode} ignored: mesa stores text only")
        return super().fetch(mode, filename, value, read)

    def _write(self, full_path: str, iterator: Any, mode: str, encoding: str | None = None) -> int:
        _private_folder(Path(full_path).parent)
        descriptor = os.open(full_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        binary = "b" in mode
        with os.fdopen(descriptor, "wb" if binary else "w", encoding=None if binary else encoding) as writer:
            size = 0
            for chunk in iterator:
                size += len(chunk)
                writer.write(chunk)
        return size


def _private_folder(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 whatever the umask; existing folders are left as they are."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)


def _open(directory: str | Path | None, subdir: str) -> diskcache.Cache:
    path = Path(directory) if directory is not None else default_cache_dir() / subdir
    _private_folder(path)
    # SQLite creates its journal files with the database file's mode, so make that file 0600 first.
    os.close(os.open(path / "cache.db", os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600))
    store = diskcache.Cache(str(path), disk=JSONTextDisk)
    for name in _DB_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path / name, 0o600)
    return store


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text: Any) -> Any:
    """The JSON value of a stored entry, or ``None`` (a miss) if it is not JSON text."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _safe_serializer():
    """LangGraph's JSON+msgpack serializer with the pickle fallback off (nothing unpickled, ever) and
    msgpack objects revived only for mesa's state types and LangGraph's safe list (its default would
    import and call any ``module.name`` a planted entry names)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from mesa.memory import MESA_STATE_TYPES

    return JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=MESA_STATE_TYPES)


class DiskCache(BaseCache):
    """A LangGraph node cache stored with diskcache (survives restarts, shared by processes).

    Values are serialised by LangGraph's serializer without pickle and stored as JSON text;
    an entry of type ``pickle`` is never loaded (a miss).
    """

    def __init__(self, directory: str | Path | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("serde", _safe_serializer())
        super().__init__(**kwargs)
        self._store = _open(directory, "graph")

    @staticmethod
    def _key(ns: Namespace, key: str) -> str:
        return "\x1f".join((*ns, key))

    def _load(self, text: Any) -> Any:
        entry = _loads(text)
        if not isinstance(entry, dict) or entry.get("type") in (None, "pickle"):
            return None
        try:
            return self.serde.loads_typed((entry["type"], base64.b64decode(entry["data"])))
        except Exception:  # noqa: BLE001 - a damaged entry is a miss, never a failed turn
            return None

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        values: dict[FullKey, Any] = {}
        for ns, key in keys:
            value = self._load(self._store.get(self._key(ns, key)))
            if value is not None:
                values[(ns, key)] = value
        return values

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        for (ns, key), (value, ttl) in pairs.items():
            kind, data = self.serde.dumps_typed(value)
            if kind == "pickle":  # pragma: no cover - the serializer has its pickle fallback off
                continue
            text = _dumps({"type": kind, "data": base64.b64encode(data).decode("ascii")})
            self._store.set(self._key(ns, key), text, expire=ttl, tag="\x1f".join(ns))

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        self.set(pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        if namespaces is None:
            self._store.clear()
            return
        for ns in namespaces:
            self._store.evict("\x1f".join(ns))

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.clear(namespaces)

    def close(self) -> None:
        self._store.close()


class PerceptionCache:
    """Perception results on disk, keyed by content hash + backend + settings. Values are JSON."""

    def __init__(self, directory: str | Path | None = None, *, expire: float | None = None) -> None:
        self._store = _open(directory, "perception")
        self.expire = expire

    @staticmethod
    def key(content_sha256: str, backend: str, settings: Mapping[str, Any] | None = None) -> str:
        """A stable key for one backend's result on one piece of content with given settings."""
        blob = json.dumps({"sha": content_sha256, "backend": backend, "settings": settings or {}}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        """The stored JSON value, or ``None`` (missing, expired, or not an entry mesa wrote)."""
        return _loads(self._store.get(key))

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-compatible value (a dict from ``model_dump(mode="json")``)."""
        self._store.set(key, _dumps(value), expire=self.expire)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def close(self) -> None:
        self._store.close()
