"""Disk caches backed by diskcache.

- :class:`DiskCache` is a LangGraph ``BaseCache``: pass it to
  ``graph.compile(cache=...)`` and give nodes a ``CachePolicy`` so a repeated
  step (same input) is answered from disk.
- :class:`PerceptionCache` memoises perception results by content hash +
  backend + settings (see :func:`PerceptionCache.key`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langgraph.cache.base import BaseCache, FullKey, Namespace

__all__ = ["DiskCache", "PerceptionCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$MESA_CACHE_DIR``, else ``~/.cache/mesa``."""
    return Path(os.environ.get("MESA_CACHE_DIR") or Path.home() / ".cache" / "mesa")


def _open(directory: str | Path | None, subdir: str):
    import diskcache

    path = Path(directory) if directory is not None else default_cache_dir() / subdir
    path.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(path))


class DiskCache(BaseCache):
    """A LangGraph node cache stored with diskcache (survives restarts, shared by processes)."""

    def __init__(self, directory: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store = _open(directory, "graph")

    @staticmethod
    def _key(ns: Namespace, key: str) -> str:
        return "\x1f".join((*ns, key))

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        values: dict[FullKey, Any] = {}
        for ns, key in keys:
            hit = self._store.get(self._key(ns, key))
            if hit is not None:
                values[(ns, key)] = self.serde.loads_typed(hit)
        return values

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        for (ns, key), (value, ttl) in pairs.items():
            self._store.set(self._key(ns, key), self.serde.dumps_typed(value), expire=ttl, tag="\x1f".join(ns))

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
    """Perception results on disk, keyed by content hash + backend + settings."""

    def __init__(self, directory: str | Path | None = None, *, expire: float | None = None) -> None:
        self._store = _open(directory, "perception")
        self.expire = expire

    @staticmethod
    def key(content_sha256: str, backend: str, settings: Mapping[str, Any] | None = None) -> str:
        """A stable key for one backend's result on one piece of content with given settings."""
        blob = json.dumps({"sha": content_sha256, "backend": backend, "settings": settings or {}}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        return self._store.get(key)

    def set(self, key: str, value: Any) -> None:
        self._store.set(key, value, expire=self.expire)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def close(self) -> None:
        self._store.close()
