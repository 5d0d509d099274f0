"""A small supervised model for the emotion / strategy / system-emotion steps.

Sentence embeddings (the shared :class:`~mesa.eval.embeddings.Embedder`) of the
user's utterance and of the preceding context, plus label-history features
(the previous therapist strategies, the speaker's earlier emotions), feed one
multinomial logistic regression per label set. The class weighting and the
regularisation are chosen for weighted F1 on a held-out part of the training
dialogues, then the model is refitted on all of them.

It implements :class:`mesa.graphs.context.LabelClassifier`, so the graph can use
it as the step itself or as a prior the LLM sees. It is saved as one small
``.npz`` file (arrays + a JSON header; loaded with ``allow_pickle=False``), and
predicting needs only NumPy and the embedder, not scikit-learn.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesa.errors import ClassifierFileError, ClassifierMismatchError
from mesa.eval.strategy_features import SequenceBlock, out_of_fold_offsets
from mesa.state import Message
from mesa.taxonomy import MESC, Taxonomy, get_taxonomy

if TYPE_CHECKING:
    import numpy as np

    from mesa.eval.datasets import Example
    from mesa.eval.embeddings import Embedder

__all__ = ["TASKS", "MajorityClassifier", "SupervisedClassifier"]

TASKS = ("user_emotion", "strategy", "system_emotion")
FORMAT_VERSION = 3  # 2: the user-emotion context model (``context.*`` arrays); 3: the strategy sequence block

_CONTEXT = 4  # history messages averaged into the context embedding
_SPAN = 12  # history messages the label histograms look at


def _label_vector(taxonomy: Taxonomy, text: str, history: Sequence[Message]) -> list[float]:
    strategies = taxonomy.names("strategy")
    user_emotions = taxonomy.names("user_emotion")
    system_emotions = taxonomy.names("system_emotion")

    def one_hot(names: list[str], value: str | None) -> list[float]:
        vec = [0.0] * (len(names) + 1)
        vec[names.index(value) if value in names else len(names)] = 1.0
        return vec

    def histogram(names: list[str], values: list[str | None]) -> list[float]:
        counts = Counter(v for v in values if v in names)
        total = sum(counts.values())
        return [counts[n] / total if total else 0.0 for n in names]

    recent = list(history[-_SPAN:])
    assistant = [m for m in history if m.role == "assistant"]
    users = [m for m in history if m.role == "user"]
    trailing = 0
    for message in reversed(history):
        if message.role != "assistant":
            break
        trailing += 1
    out: list[float] = []
    out += one_hot(strategies, assistant[-1].strategy if assistant else None)
    out += one_hot(strategies, assistant[-2].strategy if len(assistant) > 1 else None)
    out += one_hot(system_emotions, assistant[-1].emotion if assistant else None)
    out += one_hot(user_emotions, users[-1].emotion if users else None)
    out += histogram(user_emotions, [m.emotion for m in recent if m.role == "user"])
    out += histogram(strategies, [m.strategy for m in recent if m.role == "assistant"])
    out += [
        min(trailing, 5) / 5.0,
        1.0 if history and history[-1].role == "assistant" else 0.0,
        math.log1p(len(history)) / 5.0,
        math.log1p(len(text.split())) / 4.0,
        1.0 if "?" in text else 0.0,
    ]
    return out


class _Featurizer:
    def __init__(self, taxonomy: Taxonomy, embedder: Embedder) -> None:
        self.taxonomy = taxonomy
        self.embedder = embedder

    def __call__(self, items: Sequence[tuple[str, Sequence[Message]]]) -> np.ndarray:
        import numpy as np

        texts: dict[str, None] = {}
        for text, history in items:
            texts[text] = None
            for message in history[-_SPAN:]:
                texts[message.text] = None
            for message in reversed(history):
                if message.role == "assistant":
                    texts[message.text] = None
                    break
        ordered = list(texts)
        matrix = self.embedder.encode(ordered) if ordered else None
        index = {t: i for i, t in enumerate(ordered)}
        dim = matrix.shape[1] if matrix is not None else 0
        zero = np.zeros(dim, dtype=np.float32)

        def emb(text: str | None) -> np.ndarray:
            return matrix[index[text]] if text is not None and matrix is not None else zero

        def mean(values: list[str]) -> np.ndarray:
            return np.mean([emb(v) for v in values], axis=0) if values else zero

        rows = []
        for text, history in items:
            last_assistant = next((m.text for m in reversed(history) if m.role == "assistant"), None)
            recent = list(history[-_SPAN:])
            blocks = [
                emb(text),
                emb(history[-1].text) if history else zero,
                emb(last_assistant),
                mean([m.text for m in history[-_CONTEXT:]]),
                mean([m.text for m in recent if m.role == "user"] + [text]),
                np.asarray(_label_vector(self.taxonomy, text, history), dtype=np.float32),
            ]
            rows.append(np.concatenate(blocks))
        return np.stack(rows).astype(np.float32)


def _without_user_labels(history: Sequence[Message]) -> list[Message]:
    """The history with no user-emotion labels (what the context model and the heads see)."""
    return [m.model_copy(update={"emotion": None}) if m.role == "user" and m.emotion else m for m in history]


def _previous_user_turn(history: Sequence[Message]) -> tuple[str, list[Message]] | None:
    """The last user message of ``history`` and the history before it (unlabelled), or ``None``."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].role == "user":
            return history[index].text, _without_user_labels(history[:index])
    return None


def _context_block(proba: np.ndarray, present: np.ndarray) -> np.ndarray:  # proba: one row per item
    """The previous user turn's emotion distribution (and a flag that there was one), as head features.

    Rows without a previous user turn are all zeros but the offset. The fixed scaling puts the
    block on the scale of the standardised features.
    """
    import numpy as np

    block = np.zeros((len(present), proba.shape[1] + 1), dtype=np.float32)
    block[present, :-1] = proba[present]
    block[present, -1] = 1.0
    return (block - 0.15) * 4.0


def _softmax(logits: np.ndarray) -> np.ndarray:
    import numpy as np

    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class _Head:
    """One linear softmax head: classes, coefficients, intercepts."""

    def __init__(self, classes: list[str], coef: np.ndarray, intercept: np.ndarray) -> None:
        self.classes = classes
        self.coef = coef
        self.intercept = intercept

    def proba(self, z: np.ndarray) -> np.ndarray:
        import numpy as np

        if len(self.classes) == 1:
            return np.ones((z.shape[0], 1), dtype=np.float64)
        logits = z @ self.coef.T + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:  # scikit-learn's binary form
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        return _softmax(logits)


class _NoBar:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _fits_bar(progress: bool) -> Any:
    """A counter of model fits (their number depends on the grid and the labels present)."""
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(desc="fitting", unit="fit")


def _embed_corpus(embedder: Embedder, examples: Sequence[Example], progress: bool) -> None:
    """Embed every text once up front (cached on disk), with a progress bar when asked."""
    texts = dict.fromkeys(t for e in examples for t in (e.text, *(m.text for m in e.history[-_SPAN:])))
    try:
        embedder.encode(list(texts), progress=progress)
    except TypeError:  # an embedder without a progress option
        embedder.encode(list(texts))


def _out_of_fold_history(
    examples: Sequence[Example], featurize: _Featurizer, *, folds: int, seed: int, max_iter: int, steps: Any
) -> list[Example]:
    """The training examples as a live chain sees them: earlier user turns carry predicted labels, not gold.

    A user-emotion model that sees no user labels is fitted on all folds of the
    dialogues but one and labels the user turns of that one; every example's
    history then carries those out-of-fold labels. Trained on gold, the model
    learns to copy the previous gold emotion, which a live chat never has.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from mesa.eval.protocol import with_predicted_history

    if not any(m.role == "user" and m.emotion for e in examples for m in e.history):
        return list(examples)  # nothing to replace (ESConv: no per-turn user labels in the history)
    bare = [with_predicted_history(e, {}) for e in examples]
    features = featurize([(e.text, e.history) for e in bare])
    z = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-6)
    gold = np.array([e.user_emotion or "" for e in examples])
    dialogues = sorted({e.dialogue_id for e in examples})
    fold_of = dict(zip(np.random.default_rng(seed).permutation(dialogues).tolist(), range(len(dialogues)), strict=True))
    fold = np.array([fold_of[e.dialogue_id] % max(2, folds) for e in examples])
    predicted = np.full(len(examples), "", dtype=object)
    for k in range(max(2, folds)):
        train = (fold != k) & (gold != "")
        if not (fold == k).any() or len(set(gold[train].tolist())) < 2:
            continue  # an empty fold, or too few labels to learn from: those turns keep no prediction
        model = LogisticRegression(C=0.02, class_weight="balanced", max_iter=max_iter)
        model.fit(z[train], gold[train])
        steps.update(1)
        predicted[fold == k] = model.predict(z[fold == k])
    # As in the live protocol, an example sees only the labels given at earlier system turns.
    given: dict[str, list[tuple[int, int, str | None]]] = {}
    for example, label in zip(examples, predicted.tolist(), strict=True):
        if example.user_index is not None:
            given.setdefault(example.dialogue_id, []).append((example.turn_index, example.user_index, label or None))

    def earlier(example: Example) -> dict[int, str | None]:
        return {user: label for turn, user, label in given.get(example.dialogue_id, []) if turn < example.turn_index}

    return [with_predicted_history(e, earlier(e)) for e in bare]


def _out_of_fold_context(
    z: np.ndarray,
    gold: np.ndarray,
    dialogue_ids: list[str],
    z_previous: np.ndarray,
    previous_rows: np.ndarray,
    classes: list[str],
    *,
    folds: int,
    seed: int,
    max_iter: int,
    steps: Any,
) -> np.ndarray:
    """Each example's previous user turn's emotion distribution, from a model that never saw its dialogue.

    The context model reads the words (no user labels); fitted on all folds of the dialogues but
    one, it gives the distributions of the previous user turns of that one. Trained on these, the
    user-emotion head learns how much the model's own earlier reading is worth, as it will be live.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fold_of = {d: i % max(2, folds) for i, d in enumerate(np.random.default_rng(seed).permutation(sorted(set(dialogue_ids))).tolist())}
    fold = np.array([fold_of[d] for d in dialogue_ids])
    previous_fold = fold[previous_rows]
    proba = np.zeros((len(previous_rows), len(classes)), dtype=np.float32)
    for k in range(max(2, folds)):
        train = (fold != k) & (gold != "")
        if not (previous_fold == k).any() or len(set(gold[train].tolist())) < 2:
            continue  # nothing to predict in this fold, or too few labels to learn from
        model = LogisticRegression(C=0.02, class_weight="balanced", max_iter=max_iter)
        model.fit(z[train], gold[train])
        steps.update(1)
        rows = model.predict_proba(z_previous[previous_fold == k])
        for j, label in enumerate(model.classes_):
            proba[previous_fold == k, classes.index(str(label))] = rows[:, j]
    return proba


def _has_user_labels(examples: Sequence[Example]) -> bool:
    """Whether the histories carry per-turn user labels (MESC does; ESConv has none)."""
    return any(m.role == "user" and m.emotion for e in examples for m in e.history)


def _context_model(
    examples: Sequence[Example],
    z: np.ndarray,
    featurize: _Featurizer,
    mean: np.ndarray,
    scale: np.ndarray,
    taxonomy: Taxonomy,
    **fit: Any,
) -> tuple[_Head, np.ndarray]:
    """The user-emotion context model (fitted on all) and the user-emotion head's features.

    The head's features are ``z`` plus the previous user turn's distribution, out of fold.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    names = taxonomy.names("user_emotion")
    gold = np.array([e.user_emotion or "" for e in examples])
    previous = [_previous_user_turn(e.history) for e in examples]
    rows = np.array([i for i, p in enumerate(previous) if p is not None], dtype=int)
    z_previous = (featurize([p for p in previous if p is not None]) - mean) / scale if len(rows) else z[:0]
    dialogue_ids = [e.dialogue_id for e in examples]
    proba = _out_of_fold_context(z, gold, dialogue_ids, z_previous, rows, names, **fit)
    present = np.zeros(len(examples), dtype=bool)
    present[rows] = True
    full = np.zeros((len(examples), len(names)), dtype=np.float32)
    full[rows] = proba
    labelled = gold != ""
    model = LogisticRegression(C=0.02, class_weight="balanced", max_iter=fit["max_iter"])
    model.fit(z[labelled], gold[labelled])
    fit["steps"].update(1)
    head = _Head([str(c) for c in model.classes_], model.coef_.astype(np.float32), model.intercept_.astype(np.float32))
    return head, np.hstack([z, _context_block(full, present)])


class SupervisedClassifier:
    """Embeddings + logistic regression per label set; a :class:`~mesa.graphs.context.LabelClassifier`.

    Train with :meth:`train`, keep with :meth:`save` / :meth:`load`::

        from mesa.eval import SupervisedClassifier, load_mesc

        clf = SupervisedClassifier.train(load_mesc("data/mesc", "train"), "mesc")
        clf.save("mesc-clf.npz")
        clf = SupervisedClassifier.load("mesc-clf.npz")
        clf.predict_distribution("strategy", "I can't sleep.", history=[])
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        heads: dict[str, _Head],
        mean: np.ndarray,
        scale: np.ndarray,
        *,
        embedding_model: str | None = None,
        embedder: Embedder | None = None,
        info: dict[str, Any] | None = None,
        context: _Head | None = None,
        sequence: SequenceBlock | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.heads = heads
        # The user-emotion context model (see _out_of_fold_context); None in models of format 1,
        # which read the user labels carried by the history instead.
        self.context = context
        # The strategy head's strategy-sequence features (mesa.eval.strategy_features); None: it has none.
        self.sequence = sequence
        self.mean = mean
        self.scale = scale
        self.embedding_model = embedding_model
        self.info = info or {}
        self._embedder = embedder

    # ------------------------------------------------------------------ LabelClassifier

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from mesa.eval.embeddings import default_embedder

            self._embedder = default_embedder(self.embedding_model)
        return self._embedder

    def supports(self, which: str) -> bool:
        """Whether this model predicts ``which`` (``user_emotion``, ``strategy``, ``system_emotion``)."""
        return which in self.heads

    def predict_distribution(self, which: str, text: str, history: list[Message]) -> dict[str, float]:
        """Probabilities over the taxonomy's labels of ``which`` for one turn."""
        return self.predict_distributions(which, [(text, history)])[0]

    # ------------------------------------------------------------------ batches

    def _z(self, items: Sequence[tuple[str, Sequence[Message]]]) -> np.ndarray:
        if self.context is not None:  # labels in the history are ignored: the model reads the words
            items = [(text, _without_user_labels(history)) for text, history in items]
        features = _Featurizer(self.taxonomy, self.embedder)(items)
        return (features - self.mean) / self.scale

    def _proba(self, which: str, items: Sequence[tuple[str, Sequence[Message]]], z: np.ndarray) -> np.ndarray:
        """One head's probabilities; the user-emotion head also sees the previous user turn's distribution."""
        import numpy as np

        if which == "strategy" and self.sequence is not None:
            return self.heads[which].proba(np.hstack([z, self.sequence.transform(items)]))
        if which != "user_emotion" or self.context is None:
            return self.heads[which].proba(z)
        previous = [_previous_user_turn(history) for _, history in items]
        present = np.array([p is not None for p in previous])
        names = self.taxonomy.names("user_emotion")
        proba = np.zeros((len(items), len(names)), dtype=np.float32)
        if present.any():
            columns = [names.index(label) for label in self.context.classes]
            proba[np.ix_(present, columns)] = self.context.proba(self._z([p for p in previous if p is not None]))
        return self.heads[which].proba(np.hstack([z, _context_block(proba, present)]))

    def predict_distributions(
        self, which: str, items: Sequence[tuple[str, Sequence[Message]]]
    ) -> list[dict[str, float]]:
        """Label distributions for many ``(text, history)`` pairs (one embedding batch)."""
        if which not in self.heads:
            raise KeyError(f"this classifier does not predict {which!r}; it predicts {sorted(self.heads)}")
        if not items:
            return []
        head = self.heads[which]
        proba = self._proba(which, items, self._z(items))
        names = self.taxonomy.names(which)  # type: ignore[arg-type]
        out = []
        for row in proba:
            dist = dict.fromkeys(names, 0.0)
            for label, p in zip(head.classes, row, strict=True):
                dist[label] = dist.get(label, 0.0) + float(p)
            out.append(dist)
        return out

    def predict_all(self, items: Sequence[tuple[str, Sequence[Message]]]) -> dict[str, list[dict[str, float]]]:
        """Distributions of every supported label set for many turns, featurising once."""
        if not items:
            return {which: [] for which in self.heads}
        z = self._z(items)
        result = {}
        for which, head in self.heads.items():
            names = self.taxonomy.names(which)  # type: ignore[arg-type]
            rows = []
            for row in self._proba(which, items, z):
                dist = dict.fromkeys(names, 0.0)
                for label, p in zip(head.classes, row, strict=True):
                    dist[label] = dist.get(label, 0.0) + float(p)
                rows.append(dist)
            result[which] = rows
        return result

    def predict(self, which: str, text: str, history: list[Message]) -> str:
        """The most probable label."""
        dist = self.predict_distribution(which, text, history)
        return max(dist, key=dist.__getitem__)

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, examples: Sequence[Example], taxonomy: Taxonomy | str = MESC, **kwargs: Any) -> SupervisedClassifier:
        """Fit one head per label set that has gold labels in ``examples``.

        For each head, every ``C`` in ``c_grid`` (default 0.02, 0.05) and
        class-weight power in ``weight_powers`` (0: none, 1: "balanced", 0.5:
        in between; default 0.5, 1) is scored by weighted F1 on ``holdout``
        (default 20 %) of the dialogues; the best is refitted on all. Other
        keywords: ``embedder``, ``tasks``, ``seed``, ``max_iter``, ``verbose``,
        ``threads`` (BLAS threads while fitting; default 1).
        """
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        # One BLAS thread by default: these fits are small, and on a shared CPU several BLAS threads
        # per fit oversubscribe the cores (one MESC fit: 117 s wall with the default threads, 35 s
        # with one, at load average ~10 on 2 cores).
        threads = kwargs.pop("threads", 1)
        with warnings.catch_warnings(), threadpool_limits(limits=threads, user_api="blas"):
            # An lbfgs stopped at max_iter at this regularisation is still a good model (see info["tasks"]).
            warnings.simplefilter("ignore", ConvergenceWarning)
            return cls._fit(examples, taxonomy, **kwargs)

    @classmethod
    def _fit(
        cls,
        examples: Sequence[Example],
        taxonomy: Taxonomy | str = MESC,
        *,
        embedder: Embedder | None = None,
        tasks: Sequence[str] | None = None,
        c_grid: Sequence[float] = (0.02, 0.05),
        weight_powers: Sequence[float] = (0.5, 1.0),
        holdout: float = 0.2,
        seed: int = 0,
        max_iter: int = 300,
        verbose: bool = False,
        history: str = "predicted",
        folds: int = 4,
        progress: bool = False,
        user_context: str = "distribution",
        strategy_sequence: float = 0.0,
        strategy_c_grid: Sequence[float] | None = None,
        strategy_weight_powers: Sequence[float] | None = None,
        strategy_offsets: bool = False,
    ) -> SupervisedClassifier:
        """Fit one head per label set that has gold labels in ``examples``.

        For each head, every ``C`` in ``c_grid`` and class-weight power in
        ``weight_powers`` (0: none, 1: "balanced", 0.5: in between) is scored by
        weighted F1 on ``holdout`` of the dialogues; the best is refitted on all.
        ``history="predicted"`` trains on what the live chain will have. With
        ``user_context="distribution"`` (the default) no head sees user labels in the
        history; the user-emotion head sees the previous user turn's emotion
        distribution from a context model that reads the words (:func:`_out_of_fold_context`,
        computed again by the model at run time). ``"labels"``: the history carries
        out-of-fold predicted labels (:func:`_out_of_fold_history`, format 1).
        ``"gold"`` history trains on the dataset's labels. ``strategy_sequence`` > 0 gives the
        strategy head the strategy-sequence features (:class:`~mesa.eval.strategy_features.SequenceBlock`)
        with that block weight; 0: none. ``strategy_c_grid`` / ``strategy_weight_powers`` replace
        the shared grid for the strategy head; ``strategy_offsets`` adds to its intercepts the per-class
        offsets that raise macro-F1 + accuracy on out-of-fold predictions (``folds`` more fits).
        """
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score

        from mesa.eval.embeddings import default_embedder
        from mesa.eval.protocol import with_predicted_history

        tax = get_taxonomy(taxonomy)
        embedder = embedder or default_embedder()
        started = time.perf_counter()
        featurize = _Featurizer(tax, embedder)
        _embed_corpus(embedder, examples, progress)
        embed_seconds = time.perf_counter() - started
        steps = _fits_bar(progress)
        with_context = (
            history == "predicted"
            and user_context == "distribution"
            and _has_user_labels(examples)
            and len({e.user_emotion for e in examples if e.user_emotion}) > 1  # else nothing to learn from
        )
        if with_context:
            examples = [with_predicted_history(e, {}) for e in examples]  # no user label reaches any head
        elif history == "predicted":
            examples = _out_of_fold_history(examples, featurize, folds=folds, seed=seed, max_iter=max_iter, steps=steps)
        items = [(e.text, e.history) for e in examples]
        features = featurize(items)
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale[scale < 1e-6] = 1.0
        z = (features - mean) / scale
        context, z_user = None, z
        sequence, z_strategy = None, z
        if strategy_sequence > 0 and "strategy" in (tasks or TASKS):
            sequence = SequenceBlock.fit(tax.names("strategy"), items, weight=strategy_sequence)
            z_strategy = np.hstack([z, sequence.transform(items)])
        if with_context:
            context, z_user = _context_model(
                examples, z, featurize, mean, scale, tax, folds=folds, seed=seed, max_iter=max_iter, steps=steps
            )

        dialogues = sorted({e.dialogue_id for e in examples})
        rng = np.random.default_rng(seed)
        held = (
            set(rng.choice(dialogues, size=max(1, int(len(dialogues) * holdout)), replace=False).tolist())
            if holdout > 0 and len(dialogues) > 1
            else set()
        )
        is_held = np.array([e.dialogue_id in held for e in examples])

        heads: dict[str, _Head] = {}
        info: dict[str, Any] = {"n_examples": len(examples), "n_features": int(features.shape[1]), "tasks": {}}
        for which in tasks or TASKS:
            gold = [e.gold(which) for e in examples]
            mask = np.array([g is not None for g in gold])
            if mask.sum() == 0:
                continue
            y = np.array([g for g in gold if g is not None])
            zx = {"user_emotion": z_user, "strategy": z_strategy}.get(which, z)[mask]
            held_mask = is_held[mask]
            classes = sorted(set(y.tolist()))
            if len(classes) == 1:
                heads[which] = _Head(classes, np.zeros((1, z.shape[1])), np.zeros(1))
                info["tasks"][which] = {"classes": classes, "constant": True}
                continue

            def weights(labels: np.ndarray, power: float) -> dict[str, float] | None:
                if power == 0:
                    return None
                counts = Counter(labels.tolist())
                k, n = len(counts), len(labels)
                return {c: (n / (k * counts[c])) ** power for c in counts}

            c_values = (strategy_c_grid or c_grid) if which == "strategy" else c_grid
            powers = (strategy_weight_powers or weight_powers) if which == "strategy" else weight_powers
            best = (-1.0, c_values[0], powers[0])
            scores = []
            can_tune = held_mask.any() and (~held_mask).any() and len(set(y[~held_mask].tolist())) > 1
            if can_tune and (len(c_values) > 1 or len(powers) > 1):
                for c in c_values:
                    for power in powers:
                        model = LogisticRegression(C=c, class_weight=weights(y[~held_mask], power), max_iter=max_iter)
                        model.fit(zx[~held_mask], y[~held_mask])
                        steps.update(1)
                        f1 = float(
                            f1_score(y[held_mask], model.predict(zx[held_mask]), average="weighted", zero_division=0)
                        )
                        scores.append({"C": c, "weight_power": power, "holdout_weighted_f1": f1})
                        if verbose:
                            print(f"  {which}: C={c} weight_power={power} holdout weighted F1={f1:.4f}", flush=True)
                        if f1 > best[0]:
                            best = (f1, c, power)
            def make(c: float, power: float) -> Any:
                return lambda x, labels: LogisticRegression(
                    C=c, class_weight=weights(labels, power), max_iter=max_iter
                ).fit(x, labels)

            model = make(best[1], best[2])(zx, y)
            steps.update(1)
            intercept = model.intercept_
            offsets = None
            if which == "strategy" and strategy_offsets and len(model.classes_) > 2:
                groups = [e.dialogue_id for e, keep in zip(examples, mask, strict=True) if keep]
                classes_ = [str(c) for c in model.classes_]
                fit_again = make(best[1], best[2])
                offsets = out_of_fold_offsets(zx, y, groups, classes_, fit_again, folds=folds, seed=seed, steps=steps)
                intercept = intercept + offsets
            heads[which] = _Head(
                [str(c) for c in model.classes_], model.coef_.astype(np.float32), intercept.astype(np.float32)
            )
            info["tasks"][which] = {
                "classes": [str(c) for c in model.classes_],
                "C": best[1],
                "weight_power": best[2],
                "holdout_weighted_f1": best[0] if best[0] >= 0 else None,
                "grid": scores,
                "n": int(mask.sum()),
                "iterations": int(np.max(model.n_iter_)),
                "converged": bool(np.max(model.n_iter_) < max_iter),
            }
            if offsets is not None:
                info["tasks"][which]["decision_offsets"] = [round(float(v), 3) for v in offsets]
        steps.close()
        info["embed_seconds"] = round(embed_seconds, 2)
        info["history"] = history
        info["user_context"] = "distribution" if with_context else ("labels" if history == "predicted" else "gold")
        info["strategy_sequence"] = strategy_sequence if sequence is not None else 0.0
        info["train_seconds"] = round(time.perf_counter() - started, 2)
        return cls(
            tax,
            heads,
            mean.astype(np.float32),
            scale.astype(np.float32),
            embedding_model=embedder.model_id,
            embedder=embedder,
            info=info,
            context=context,
            sequence=sequence,
        )

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the model as one ``.npz`` (NumPy arrays and a JSON header; no pickle)."""
        import numpy as np

        path = Path(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        header = {
            "format": "mesa.SupervisedClassifier",
            "version": self._format_version(),  # readable by older mesa when it can be
            "taxonomy": self.taxonomy.model_dump(mode="json"),
            "embedding_model": self.embedding_model,
            "heads": {which: head.classes for which, head in self.heads.items()},
            "info": self.info,
        }
        arrays: dict[str, Any] = {"header": np.array(json.dumps(header)), "mean": self.mean, "scale": self.scale}
        for which, head in self.heads.items():
            arrays[f"{which}.coef"] = head.coef
            arrays[f"{which}.intercept"] = head.intercept
        if self.sequence is not None:  # an older mesa would misread the strategy head: version 3 stops it
            header["strategy_sequence"] = True
            arrays.update(self.sequence.arrays())
            arrays["header"] = np.array(json.dumps(header))
        if self.context is not None:
            arrays["header"] = np.array(json.dumps({**header, "context": self.context.classes}))
            arrays["context.coef"] = self.context.coef
            arrays["context.intercept"] = self.context.intercept
        # Private from the first byte (0600), complete or absent: written aside, then renamed.
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)
        return path

    def _format_version(self) -> int:
        """The oldest format that holds this model (1: no context model, no sequence block)."""
        if self.sequence is not None:
            return 3
        return 2 if self.context is not None else 1

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | None = None) -> SupervisedClassifier:
        """Read a model written by :meth:`save`."""
        import numpy as np

        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != "mesa.SupervisedClassifier":
                raise ClassifierFileError(f"{path} is not a mesa classifier file")
            if header.get("version", 0) > FORMAT_VERSION:
                raise ClassifierFileError(f"{path} was written by a newer mesa (format {header['version']})")
            heads = {
                which: _Head(list(classes), data[f"{which}.coef"], data[f"{which}.intercept"])
                for which, classes in header["heads"].items()
            }
            mean, scale = data["mean"], data["scale"]
            context = None
            if header.get("context"):
                context = _Head(list(header["context"]), data["context.coef"], data["context.intercept"])
            taxonomy = Taxonomy.model_validate(header["taxonomy"])
            sequence = None
            if header.get("strategy_sequence"):
                sequence = SequenceBlock.from_arrays(taxonomy.names("strategy"), data)
        for which, head in heads.items():
            # A label outside the model's own taxonomy would reach the graph unchecked.
            unknown = sorted(set(head.classes) - set(taxonomy.names(which)))
            if unknown:
                raise ClassifierMismatchError(f"{path}: {which} labels {unknown} are not in its taxonomy")
        if context is not None and set(context.classes) - set(taxonomy.names("user_emotion")):
            raise ClassifierMismatchError(f"{path}: its context model's labels are not in its taxonomy")
        return cls(
            taxonomy,
            heads,
            mean,
            scale,
            embedding_model=header.get("embedding_model"),
            embedder=embedder,
            info=header.get("info"),
            context=context,
            sequence=sequence,
        )


class MajorityClassifier:
    """Always the most frequent training label: the trivial baseline, as a ``LabelClassifier``."""

    def __init__(self, taxonomy: Taxonomy, majority: dict[str, str]) -> None:
        self.taxonomy = taxonomy
        self.majority = majority

    @classmethod
    def fit(cls, examples: Sequence[Example], taxonomy: Taxonomy | str = MESC) -> MajorityClassifier:
        majority = {}
        for which in TASKS:
            counts = Counter(g for e in examples if (g := e.gold(which)) is not None)
            if counts:
                majority[which] = counts.most_common(1)[0][0]
        return cls(get_taxonomy(taxonomy), majority)

    def supports(self, which: str) -> bool:
        return which in self.majority

    def predict_distribution(self, which: str, text: str, history: list[Message]) -> dict[str, float]:
        dist = dict.fromkeys(self.taxonomy.names(which), 0.0)  # type: ignore[arg-type]
        dist[self.majority[which]] = 1.0
        return dist
