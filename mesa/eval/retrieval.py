"""Few-shot demonstration retrieval: the most similar labelled turns of a corpus.

:class:`EmbeddingRetriever` implements :class:`mesa.graphs.context.DemonstrationSource`.
A turn is represented by the embedding of the user's utterance blended with the
embedding of the message before it; similarity is cosine. Corpus embeddings
are cached on disk by the shared :class:`~mesa.eval.embeddings.Embedder`, and
:meth:`EmbeddingRetriever.save` / :meth:`load` keep a ready index as one ``.npz``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesa.state import Message

if TYPE_CHECKING:
    import numpy as np

    from mesa.eval.datasets import Example
    from mesa.eval.embeddings import Embedder
    from mesa.graphs.context import Demonstration

__all__ = ["EmbeddingRetriever", "render_context"]

_CONTEXT_WEIGHT = 0.5


def render_context(text: str, history: Sequence[Message], turns: int = 2) -> str:
    """The last ``turns`` history messages and the user's utterance, one ``Role: text`` line each."""
    lines = [f"{'User' if m.role == 'user' else 'Supporter'}: {m.text}" for m in list(history)[-turns:] if m.text]
    lines.append(f"User: {text}")
    return "\n".join(lines)


class EmbeddingRetriever:
    """Retrieves the ``k`` labelled turns most similar to the current one.

    Build it with :meth:`from_examples` (e.g. MESC train) or :meth:`from_corpus`;
    pass it to ``SupportAgent(demonstrations=...)``.
    """

    def __init__(
        self,
        demonstrations: Sequence[Demonstration],
        matrix: np.ndarray,
        *,
        embedder: Embedder | None = None,
        embedding_model: str | None = None,
        keys: Sequence[str] | None = None,
        context_turns: int = 2,
    ) -> None:
        if len(demonstrations) != len(matrix):
            raise ValueError("one embedding row per demonstration is needed")
        self.demonstrations = list(demonstrations)
        self.matrix = matrix
        self.keys = list(keys) if keys is not None else None
        self.embedding_model = embedding_model or (embedder.model_id if embedder else None)
        self.context_turns = context_turns
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from mesa.eval.embeddings import default_embedder

            self._embedder = default_embedder(self.embedding_model)
        return self._embedder

    def __len__(self) -> int:
        return len(self.demonstrations)

    # ------------------------------------------------------------------ building

    @staticmethod
    def _vectors(embedder: Embedder, pairs: Sequence[tuple[str, Sequence[Message]]]) -> np.ndarray:
        import numpy as np

        texts = [t for t, _ in pairs]
        previous = [h[-1].text if h else "" for _, h in pairs]
        unique = list(dict.fromkeys(texts + previous))
        matrix = embedder.encode(unique)
        index = {t: i for i, t in enumerate(unique)}
        rows = []
        for text, prev, (_, history) in zip(texts, previous, pairs, strict=True):
            vector = matrix[index[text]] + (_CONTEXT_WEIGHT * matrix[index[prev]] if history else 0.0)
            rows.append(vector / max(float(np.linalg.norm(vector)), 1e-9))
        return np.stack(rows).astype(np.float32)

    @classmethod
    def from_examples(
        cls, examples: Sequence[Example], *, embedder: Embedder | None = None, context_turns: int = 2
    ) -> EmbeddingRetriever:
        """An index over labelled examples (gold user emotion, strategy, system emotion and reply)."""
        from mesa.eval.embeddings import default_embedder
        from mesa.graphs.context import Demonstration

        embedder = embedder or default_embedder()
        demos = [
            Demonstration(
                context=render_context(e.text, e.history, context_turns),
                user_emotion=e.user_emotion,
                strategy=e.strategy,
                system_emotion=e.system_emotion,
                reply=e.reply,
            )
            for e in examples
        ]
        matrix = cls._vectors(embedder, [(e.text, e.history) for e in examples])
        return cls(demos, matrix, embedder=embedder, keys=[e.id for e in examples], context_turns=context_turns)

    @classmethod
    def from_corpus(
        cls,
        path: str | Path | None,
        corpus: str = "mesc",
        split: str = "train",
        *,
        embedder: Embedder | None = None,
        limit: int | None = None,
        **load_kwargs: Any,
    ) -> EmbeddingRetriever:
        """An index over one split of a corpus read with :func:`mesa.eval.load_corpus`."""
        from mesa.eval.datasets import load_corpus

        examples = load_corpus(corpus, path, split, **load_kwargs)
        return cls.from_examples(examples[:limit] if limit else examples, embedder=embedder)

    # ------------------------------------------------------------------ DemonstrationSource

    def retrieve(self, text: str, history: list[Message], k: int) -> list[Demonstration]:
        """The ``k`` most similar demonstrations, most similar first (exact repeats of the query skipped)."""
        import numpy as np

        if k <= 0 or not self.demonstrations:
            return []
        query = self._vectors(self.embedder, [(text, history)])[0]
        scores = self.matrix @ query
        order = np.argsort(-scores)
        wanted = render_context(text, history, self.context_turns)
        out: list[Demonstration] = []
        for i in order:
            demo = self.demonstrations[int(i)]
            if demo.context == wanted:  # the query itself (evaluating on the index corpus)
                continue
            out.append(demo)
            if len(out) == k:
                break
        return out

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the index (embeddings + demonstrations as JSON) to one ``.npz``."""
        import numpy as np

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": "mesa.EmbeddingRetriever",
            "version": 1,
            "embedding_model": self.embedding_model,
            "context_turns": self.context_turns,
            "keys": self.keys,
            "demonstrations": [d.model_dump(mode="json") for d in self.demonstrations],
        }
        with path.open("wb") as handle:
            np.savez_compressed(handle, header=np.array(json.dumps(header)), matrix=self.matrix)
        return path

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | None = None) -> EmbeddingRetriever:
        """Read an index written by :meth:`save`."""
        import numpy as np

        from mesa.graphs.context import Demonstration

        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            matrix = data["matrix"]
        if header.get("format") != "mesa.EmbeddingRetriever":
            raise ValueError(f"{path} is not a mesa retrieval index")
        demos = [Demonstration.model_validate(d) for d in header["demonstrations"]]
        return cls(
            demos,
            matrix,
            embedder=embedder,
            embedding_model=header.get("embedding_model"),
            keys=header.get("keys"),
            context_turns=header.get("context_turns", 2),
        )
