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
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesa.errors import ClassifierFileError, ClassifierMismatchError
from mesa.eval.boosting import TreeEnsemble
from mesa.eval.strategy_features import SequenceBlock, out_of_fold_offsets
from mesa.state import Message
from mesa.taxonomy import MESC, Taxonomy, get_taxonomy

if TYPE_CHECKING:
    import numpy as np

    from mesa.eval.datasets import Example
    from mesa.eval.embeddings import Embedder

__all__ = ["TASKS", "MajorityClassifier", "SupervisedClassifier"]

TASKS = ("user_emotion", "strategy", "system_emotion")
FORMAT_VERSION = 6  # 6: the filter's prior correction (``filter.prior``); 5: boosted trees beside the strategy
# head (``strategy_booster.*``); 4: the strategy sequence block (``sequence.*``); 3: the dialogue filter
# (``filter.*``); 2: the context model (``context.*``); older formats still read

_CONTEXT = 4  # history messages averaged into the context embedding
_SPAN = 12  # history messages the label histograms look at
# How much the filter trusts each reading (exponents of the probabilities), chosen by grouped 4-fold CV
# on MESC TRAIN dialogues (bench/user_emotion_filter_cv.py): an earlier turn's words are weak evidence
# (0.5 did best of 0.3 / 0.5 / 0.7); the current turn's full model at face value (1.0 of 1.0 / 1.25).
_TAU_HISTORY = 0.5
_TAU_TURN = 1.0
_TAU_WORDS = 0.5  # the current turn's n-gram reading, multiplied in beside the head's (0.5 and 0.75 did best)
# The posterior is multiplied by the training label shares to this power: a negative power leans away from the
# frequent emotions the filter's belief already favours. Grouped 4-fold CV on MESC TRAIN (docs/evaluation.md):
# -0.25 raised weighted F1 by 0.3 on folds of dialogues (every fold) and on folds of whole episodes (every
# fold); 0 and -0.5 did worse.
_TAU_PRIOR = -0.25


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


def forward_filter(emissions: np.ndarray, transition: np.ndarray, start: np.ndarray, tau: float) -> np.ndarray:
    """The belief about the NEXT user turn's emotion after the user turns whose readings are ``emissions``.

    A hidden Markov model over the user turns of a dialogue: ``emissions`` has one row per earlier user
    turn, in order (a per-turn model's probabilities; trained with balanced class weights, they stand
    for the likelihood of the words under each emotion, so no prior is divided out); ``transition[i, j]``
    is P(next = j | this = i) and ``start`` the first turn's shares, both counted on gold training
    sequences. Only the rows given are read: the turns so far, never later ones, never a label.
    """
    import numpy as np

    belief = np.asarray(start, dtype=np.float64)
    for row in emissions:
        belief = belief * np.power(np.maximum(row, 1e-9), tau)
        belief = (belief / belief.sum()) @ transition
    return belief


class _Words:
    """TF-IDF word and character n-grams of a message: the filter's reading of a user message's words.

    Kept as vocabularies and idf weights (arrays, no pickle); the n-grams come from scikit-learn's own
    analyzers, built again at load time, so a message is read exactly as in training. On held-out MESC
    train dialogues these n-grams told a message's emotion better than its MiniLM embedding did (weighted
    F1 28.7 against 24.2 for one message alone; bench/user_emotion_filter_cv.py).
    """

    SETTINGS = (
        {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
        {"analyzer": "char_wb", "ngram_range": (2, 4), "min_df": 3, "sublinear_tf": True},
    )

    def __init__(
        self, vocabularies: list[list[str]], idfs: list[np.ndarray], settings: Sequence[dict[str, Any]] = SETTINGS
    ) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocabularies = vocabularies
        self.idfs = idfs
        self.settings = [dict(block) for block in settings]
        # scikit-learn's own vectorizers, given the stored vocabulary and idf: no fit, the same reading as in training
        self._vectorizers = []
        for vocabulary, idf, block in zip(vocabularies, idfs, self.settings, strict=True):
            vectorizer = TfidfVectorizer(vocabulary=vocabulary, dtype=np.float32, **block)
            vectorizer.idf_ = idf
            self._vectorizers.append(vectorizer)

    @classmethod
    def fit(cls, texts: list[str]) -> _Words:
        """Fit the vocabularies; on a corpus too small for ``min_df`` every n-gram seen once counts."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vocabularies, idfs, used = [], [], []
        for settings in cls.SETTINGS:
            try:
                vectorizer = TfidfVectorizer(**settings).fit(texts)
            except ValueError:  # nothing left after pruning (a toy corpus): keep every n-gram
                settings = {**settings, "min_df": 1}
                vectorizer = TfidfVectorizer(**settings).fit(texts)
            vocabularies.append(vectorizer.get_feature_names_out().tolist())
            idfs.append(vectorizer.idf_.astype("float32"))
            used.append(settings)
        return cls(vocabularies, idfs, used)

    def transform(self, texts: list[str]) -> Any:
        """A sparse matrix: each block's sublinear tf times idf, L2-normalised, side by side."""
        from scipy import sparse

        return sparse.hstack([vectorizer.transform(texts) for vectorizer in self._vectorizers], format="csr")


class _DialogueFilter:
    """The user-emotion filter of format 3: what the user turns so far say about this one.

    ``emission`` reads one user message's words (:class:`_Words`). The belief the earlier user turns
    leave (:func:`forward_filter`) is multiplied with the user-emotion head's distribution of the current
    turn (its full features) and with the emission model's reading of the current turn's words.
    """

    def __init__(
        self,
        classes: list[str],
        words: _Words,
        emission: _Head,
        transition: np.ndarray,
        start: np.ndarray,
        *,
        tau_history: float = _TAU_HISTORY,
        tau_turn: float = _TAU_TURN,
        tau_words: float = _TAU_WORDS,
        prior: np.ndarray | None = None,
        tau_prior: float = 0.0,
    ) -> None:
        self.classes = classes
        self.words = words
        self.emission = emission
        self.transition = transition
        self.start = start
        self.tau_history = tau_history
        self.tau_turn = tau_turn
        self.tau_words = tau_words
        self.prior = prior  # the training label shares (format 6); None: no prior correction
        self.tau_prior = tau_prior if prior is not None else 0.0

    def readings(self, texts: list[str]) -> np.ndarray:
        """The emission model's distribution for each text, in the order of ``classes``."""
        import numpy as np

        out = np.zeros((len(texts), len(self.classes)))
        if texts:
            out[:, [self.classes.index(c) for c in self.emission.classes]] = self.emission.proba(
                self.words.transform(texts)
            )
        return out

    def posterior(self, earlier: list[list[str]], texts: list[str], turn: np.ndarray) -> np.ndarray:
        """Each item's distribution: the belief its earlier user turns leave times its own two readings."""
        import numpy as np

        unique = list(dict.fromkeys([*texts, *(t for turns in earlier for t in turns)]))
        readings = self.readings(unique)
        row = {t: i for i, t in enumerate(unique)}
        before = np.stack([
            forward_filter(readings[[row[t] for t in turns]], self.transition, self.start, self.tau_history)
            for turns in earlier
        ])
        own = readings[[row[t] for t in texts]]
        posterior = before * np.power(np.maximum(turn, 1e-9), self.tau_turn)
        posterior *= np.power(np.maximum(own, 1e-9), self.tau_words)
        if self.prior is not None and self.tau_prior:
            posterior *= np.power(np.maximum(self.prior, 1e-9), self.tau_prior)
        return posterior / posterior.sum(axis=1, keepdims=True)


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


def _mix(head: np.ndarray, booster: np.ndarray, weight: float) -> np.ndarray:
    """The logistic head's and the booster's probabilities, their logarithms averaged (``weight``: the booster's)."""
    import numpy as np

    log = (1 - weight) * np.log(np.maximum(head, 1e-12)) + weight * np.log(np.maximum(booster, 1e-12))
    return _softmax(log)


class _MixedFit:
    """A logistic head and a booster fitted on the same rows: what the decision offsets are chosen for.

    ``out_of_fold_offsets`` hands it row numbers (a column of indices), so the two feature matrices
    (standardised for the head, raw for the trees) need not be copied side by side.
    """

    def __init__(self, head: Any, booster: TreeEnsemble, weight: float, zx: np.ndarray, bx: np.ndarray) -> None:
        self.head, self.booster, self.weight, self.zx, self.bx = head, booster, weight, zx, bx
        self.classes_ = head.classes_

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        index = rows[:, 0]
        return _mix(self.head.predict_proba(self.zx[index]), self.booster.proba(self.bx[index]), self.weight)


def _embedding_columns(features: np.ndarray, taxonomy: Taxonomy) -> int:
    """How many leading columns of the featurizer's output are sentence embeddings (the rest: label history)."""
    return features.shape[1] - len(_label_vector(taxonomy, "", []))


def _booster_input(
    features: np.ndarray, taxonomy: Taxonomy, items: Sequence[tuple[str, Sequence[Message]]] | None
) -> np.ndarray:
    """What the strategy booster reads: the embedding columns of ``features`` and the raw sequence features.

    The label-history columns (the last block of ``features``) are left out: the sequence features
    hold the same strategies, in more detail.
    """
    import numpy as np

    blocks = [features[:, : _embedding_columns(features, taxonomy)]]
    if items is not None:
        blocks.append(SequenceBlock.raw(taxonomy.names("strategy"), items))
    return np.hstack(blocks).astype(np.float32)


def _strategy_booster(
    zx: np.ndarray,
    bx: np.ndarray,
    y: np.ndarray,
    groups: list[str],
    fit_head: Any,
    weight: float,
    pca_columns: int,
    *,
    offsets: bool,
    accuracy_weight: float | None,
    folds: int,
    seed: int,
    steps: Any,
) -> tuple[TreeEnsemble, np.ndarray | None]:
    """The booster on all rows, and the mixture's decision offsets from out-of-fold fits of head and booster."""
    import numpy as np

    from mesa.eval.boosting import BOOSTING

    def sample_weight(labels: np.ndarray) -> np.ndarray:
        counts = Counter(labels.tolist())
        k, n = len(counts), len(labels)
        return np.array([(n / (k * counts[c])) ** BOOSTING["weight_power"] for c in labels.tolist()])

    def fit_booster(rows: np.ndarray) -> TreeEnsemble:
        booster = TreeEnsemble.fit(bx[rows], y[rows], pca_columns, sample_weight=sample_weight(y[rows]), seed=seed)
        steps.update(1)
        return booster

    booster = fit_booster(np.arange(len(y)))
    if not offsets:
        return booster, None

    def fit_mixed(rows: np.ndarray, labels: np.ndarray) -> _MixedFit:
        index = rows[:, 0]
        return _MixedFit(fit_head(zx[index], labels), fit_booster(index), weight, zx, bx)

    classes = [str(c) for c in sorted(set(y.tolist()))]
    rows = np.arange(len(y))[:, None]
    found = out_of_fold_offsets(
        rows, y, groups, classes, fit_mixed, folds=folds, seed=seed, steps=steps, accuracy_weight=accuracy_weight
    )
    return booster, found


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


def _user_turns(examples: Sequence[Example]) -> dict[str, list[tuple[int, str, str | None]]]:
    """Every user message of every dialogue once, in dialogue order: ``(position, text, gold emotion)``."""
    turns: dict[str, dict[int, tuple[str, str | None]]] = {}
    for e in examples:
        seen = turns.setdefault(e.dialogue_id, {})
        if len(e.history_index) == len(e.history):  # positions known (always for loaded corpora)
            for message, position in zip(e.history, e.history_index, strict=True):
                if message.role == "user":
                    seen.setdefault(position, (message.text, message.emotion))
        if e.user_index is not None:
            seen[e.user_index] = (e.text, e.user_emotion)
    return {d: [(p, *seen[p]) for p in sorted(seen)] for d, seen in turns.items()}


def _transitions(sequences: list[list[str | None]], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gold user-emotion transitions between consecutive labelled user turns, and first-turn shares (add-one)."""
    import numpy as np

    counts, first = np.ones((len(classes), len(classes))), np.ones(len(classes))
    for labels in sequences:
        index = [classes.index(label) for label in labels if label in classes]
        if index:
            first[index[0]] += 1
        for a, b in pairwise(index):
            counts[a, b] += 1
    return counts / counts.sum(axis=1, keepdims=True), first / first.sum()


def _dialogue_filter(examples: Sequence[Example], classes: list[str], **fit: Any) -> _DialogueFilter:
    """Fit the filter of format 3 on the gold-labelled ``examples`` (gold is used for training only).

    Its emission model reads one user message's words (TF-IDF n-grams; fitted on every user message once,
    balanced class weights); its transitions and start shares are counted on the gold sequences.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    turns = _user_turns(examples)
    labelled = [(text, gold) for sequence in turns.values() for _, text, gold in sequence if gold in classes]
    words = _Words.fit([text for text, _ in labelled])
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=fit["max_iter"])
    model.fit(words.transform([text for text, _ in labelled]), [gold for _, gold in labelled])
    fit["steps"].update(1)
    labels = [str(c) for c in model.classes_]
    emission = _Head(labels, model.coef_.astype(np.float32), model.intercept_.astype(np.float32))
    transition, start = _transitions([[gold for _, _, gold in sequence] for sequence in turns.values()], classes)
    return _DialogueFilter(
        classes, words, emission, transition, start, prior=_label_shares(examples, classes), tau_prior=_TAU_PRIOR
    )


def _label_shares(examples: Sequence[Example], classes: list[str]) -> np.ndarray:
    """How often each user emotion is the gold of a training example (add-one), in the order of ``classes``."""
    import numpy as np

    counts = Counter(e.user_emotion for e in examples)
    shares = np.array([counts[c] + 1.0 for c in classes])
    return shares / shares.sum()


def _filter_fits(dialogue_filter: _DialogueFilter, head: _Head | None) -> bool:
    """Whether a filter read from a file belongs to the user-emotion head it came with."""
    return (
        head is not None
        and dialogue_filter.classes == head.classes
        and set(dialogue_filter.emission.classes) <= set(head.classes)
        and dialogue_filter.transition.shape == (len(head.classes), len(head.classes))
        and dialogue_filter.emission.coef.shape[1] == sum(len(v) for v in dialogue_filter.words.vocabularies)
        and (dialogue_filter.prior is None or dialogue_filter.prior.shape == (len(head.classes),))
    )


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
        dialogue_filter: _DialogueFilter | None = None,
        sequence: SequenceBlock | None = None,
        booster: TreeEnsemble | None = None,
        booster_weight: float = 0.0,
    ) -> None:
        self.taxonomy = taxonomy
        self.heads = heads
        # The user-emotion filter over the dialogue's user turns (format 3, see forward_filter); None in
        # models of formats 1 and 2.
        self.filter = dialogue_filter
        # The user-emotion context model (see _out_of_fold_context); None in models of format 1,
        # which read the user labels carried by the history instead.
        self.context = context
        # The strategy head's strategy-sequence features (mesa.eval.strategy_features); None: it has none.
        self.sequence = sequence
        # Boosted trees beside the strategy head (format 5, mesa.eval.boosting) and their share of the
        # averaged log probabilities; None: the head alone.
        self.booster = booster
        self.booster_weight = booster_weight
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
        reads_words = self.info.get("user_context") in ("filter", "distribution")
        if self.context is not None or self.filter is not None or reads_words:
            # history labels ignored: the model reads words (it was trained without them)
            items = [(text, _without_user_labels(history)) for text, history in items]
        features = _Featurizer(self.taxonomy, self.embedder)(items)
        return (features - self.mean) / self.scale

    def _proba(self, which: str, items: Sequence[tuple[str, Sequence[Message]]], z: np.ndarray) -> np.ndarray:
        """One head's probabilities; the user-emotion head also sees the previous user turn's distribution."""
        import numpy as np

        if which == "user_emotion" and self.filter is not None:
            earlier = [[m.text for m in history if m.role == "user"] for _, history in items]
            turn = self.heads[which].proba(z)  # the filter's classes are the head's, in the same order
            return self.filter.posterior(earlier, [text for text, _ in items], turn)
        if which == "strategy" and (self.sequence is not None or self.booster is not None):
            with_sequence = self.sequence is not None
            proba = self.heads[which].proba(np.hstack([z, self.sequence.transform(items)]) if with_sequence else z)
            if self.booster is None:
                return proba
            features = z * self.scale + self.mean  # the trees read raw features, as in training
            booster_x = _booster_input(features, self.taxonomy, items if with_sequence else None)
            return _mix(proba, self.booster.proba(booster_x), self.booster_weight)
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
        # All thread pools: BLAS for the logistic fits, OpenMP for the boosted trees.
        with warnings.catch_warnings(), threadpool_limits(limits=threads):
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
        user_context: str = "filter",
        strategy_sequence: float = 0.0,
        strategy_c_grid: Sequence[float] | None = None,
        strategy_weight_powers: Sequence[float] | None = None,
        strategy_offsets: bool = False,
        strategy_booster: float = 0.0,
        strategy_accuracy_weight: float | None = None,
    ) -> SupervisedClassifier:
        """Fit one head per label set that has gold labels in ``examples``.

        For each head, every ``C`` in ``c_grid`` and class-weight power in
        ``weight_powers`` (0: none, 1: "balanced", 0.5: in between) is scored by
        weighted F1 on ``holdout`` of the dialogues; the best is refitted on all.
        ``history="predicted"`` trains on what the live chain will have. With
        ``user_context="filter"`` (the default, format 3) no head sees user labels in the
        history; the user-emotion head reads the current turn, and a filter over the
        dialogue's earlier user turns (:func:`forward_filter`: their words only, turns so far
        only) gives the belief it is multiplied with. ``"distribution"`` (format 2): the head
        sees the previous user turn's emotion distribution from a context model
        (:func:`_out_of_fold_context`). ``"labels"``: the history carries out-of-fold
        predicted labels (:func:`_out_of_fold_history`, format 1). ``"gold"`` history
        trains on the dataset's labels.
        ``strategy_sequence`` > 0 gives the
        strategy head the strategy-sequence features (:class:`~mesa.eval.strategy_features.SequenceBlock`)
        with that block weight; 0: none. ``strategy_c_grid`` / ``strategy_weight_powers`` replace
        the shared grid for the strategy head; ``strategy_offsets`` adds to its intercepts the per-class
        offsets that raise macro-F1 + accuracy on out-of-fold predictions (``folds`` more fits), accuracy
        counting ``strategy_accuracy_weight`` (default :data:`~mesa.eval.strategy_features.ACCURACY_WEIGHT`).
        ``strategy_booster`` > 0 fits boosted trees (:class:`~mesa.eval.boosting.TreeEnsemble`) beside the
        strategy head and averages their log probabilities with that weight (the offsets are then chosen
        for the mixture).
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
        reads_words = (
            history == "predicted"
            and user_context in ("filter", "distribution")
            and _has_user_labels(examples)
            and len({e.user_emotion for e in examples if e.user_emotion}) > 1  # else nothing to learn from
        )
        with_context = reads_words and user_context == "distribution"
        gold_examples = examples  # the filter's transitions are counted on gold (training only)
        if reads_words:
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
        booster: TreeEnsemble | None = None
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
            fit_again = make(best[1], best[2])
            groups = [e.dialogue_id for e, keep in zip(examples, mask, strict=True) if keep]
            classes_ = [str(c) for c in model.classes_]
            if which == "strategy" and strategy_booster > 0:
                booster_x = _booster_input(features, tax, None if sequence is None else items)[mask]
                booster, offsets = _strategy_booster(
                    zx, booster_x, y, groups, fit_again, strategy_booster, _embedding_columns(features, tax),
                    offsets=strategy_offsets,
                    accuracy_weight=strategy_accuracy_weight, folds=folds, seed=seed, steps=steps,
                )
                info["strategy_booster"] = {"weight": strategy_booster, "pca_columns": booster.pca_columns}
                if offsets is not None:  # offsets of the mixture's logits, carried by the head's share of them
                    intercept = intercept + offsets / (1 - strategy_booster)
            elif which == "strategy" and strategy_offsets and len(model.classes_) > 2:
                offsets = out_of_fold_offsets(
                    zx, y, groups, classes_, fit_again, folds=folds, seed=seed, steps=steps,
                    accuracy_weight=strategy_accuracy_weight,
                )
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
        dialogue_filter = None
        if reads_words and user_context == "filter" and "user_emotion" in heads:
            try:
                dialogue_filter = _dialogue_filter(
                    gold_examples, heads["user_emotion"].classes, max_iter=max_iter, steps=steps
                )
            except ValueError as exc:  # no words to read at all (empty messages): the head alone decides
                info["filter_skipped"] = str(exc)
        steps.close()
        info["embed_seconds"] = round(embed_seconds, 2)
        info["history"] = history
        info["user_context"] = (
            user_context if reads_words else ("labels" if history == "predicted" else "gold")
        )
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
            dialogue_filter=dialogue_filter,
            sequence=sequence,
            booster=booster,
            booster_weight=strategy_booster,
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
        if self.sequence is not None:  # an older mesa would misread the strategy head: version 4 stops it
            header["strategy_sequence"] = True
            arrays.update(self.sequence.arrays())
            arrays["header"] = np.array(json.dumps(header))
        if self.booster is not None:  # format 5: an older mesa would drop the trees and misread the offsets
            header["strategy_booster"] = {
                "weight": self.booster_weight, "pca_columns": self.booster.pca_columns, "classes": self.booster.classes
            }
            arrays.update(self.booster.to_arrays("strategy_booster"))
            arrays["header"] = np.array(json.dumps(header))
        if self.context is not None:
            arrays["header"] = np.array(json.dumps({**header, "context": self.context.classes}))
            arrays["context.coef"] = self.context.coef
            arrays["context.intercept"] = self.context.intercept
        if self.filter is not None:
            arrays["header"] = np.array(json.dumps({**header, "filter": self._filter_header()}))
            arrays |= self._filter_arrays()
        # Private from the first byte (0600), complete or absent: written aside, then renamed.
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)
        return path

    def _format_version(self) -> int:
        """The oldest format that holds this model (6: the filter's prior, 5: a strategy booster, 4: a strategy
        sequence block, 3: a filter)."""
        if self.filter is not None and self.filter.prior is not None:
            return 6
        if self.booster is not None:
            return 5
        if self.sequence is not None:
            return 4
        return 3 if self.filter is not None else 2 if self.context is not None else 1

    def _filter_header(self) -> dict[str, Any]:
        f = self.filter
        assert f is not None
        taus = {"tau_history": f.tau_history, "tau_turn": f.tau_turn, "tau_words": f.tau_words}
        if f.prior is not None:
            taus["tau_prior"] = f.tau_prior
        return {"classes": f.classes, "emission": f.emission.classes, "words": f.words.settings, **taus}

    def _filter_arrays(self) -> dict[str, Any]:
        import numpy as np

        f = self.filter
        assert f is not None
        arrays = {"filter.coef": f.emission.coef, "filter.intercept": f.emission.intercept,
                  "filter.transition": f.transition, "filter.start": f.start}
        if f.prior is not None:
            arrays["filter.prior"] = f.prior
        for i, (vocabulary, idf) in enumerate(zip(f.words.vocabularies, f.words.idfs, strict=True)):
            arrays[f"filter.vocabulary{i}"] = np.array(vocabulary, dtype=str)
            arrays[f"filter.idf{i}"] = idf
        return arrays

    @staticmethod
    def _read_filter(spec: dict[str, Any], data: Any) -> _DialogueFilter:
        settings = spec.get("words")
        known = [{key for key in block if key != "min_df"} for block in json.loads(json.dumps(_Words.SETTINGS))]
        if not isinstance(settings, list) or [set(block) - {"min_df"} for block in settings] != known:
            raise ClassifierFileError(f"its filter reads words with settings this mesa lacks: {settings}")
        for block in settings:  # JSON gave lists where scikit-learn wants tuples
            block["ngram_range"] = tuple(block["ngram_range"])
        blocks = range(len(settings))
        words = _Words(
            [data[f"filter.vocabulary{i}"].tolist() for i in blocks], [data[f"filter.idf{i}"] for i in blocks], settings
        )
        emission = _Head(list(spec["emission"]), data["filter.coef"], data["filter.intercept"])
        taus = {key: float(spec[key]) for key in ("tau_history", "tau_turn", "tau_words")}
        transition, start = data["filter.transition"], data["filter.start"]
        prior = None
        if "tau_prior" in spec:  # format 6
            if "filter.prior" not in data.files:
                raise ClassifierFileError("its filter names a prior correction but holds no prior")
            prior, taus["tau_prior"] = data["filter.prior"], float(spec["tau_prior"])
        return _DialogueFilter(list(spec["classes"]), words, emission, transition, start, prior=prior, **taus)

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
            dialogue_filter = cls._read_filter(header["filter"], data) if header.get("filter") else None
            taxonomy = Taxonomy.model_validate(header["taxonomy"])
            sequence = None
            if header.get("strategy_sequence"):
                sequence = SequenceBlock.from_arrays(taxonomy.names("strategy"), data)
            booster, booster_weight = cls._read_booster(header.get("strategy_booster"), data)
        for which, head in heads.items():
            # A label outside the model's own taxonomy would reach the graph unchecked.
            unknown = sorted(set(head.classes) - set(taxonomy.names(which)))
            if unknown:
                raise ClassifierMismatchError(f"{path}: {which} labels {unknown} are not in its taxonomy")
        if context is not None and set(context.classes) - set(taxonomy.names("user_emotion")):
            raise ClassifierMismatchError(f"{path}: its context model's labels are not in its taxonomy")
        if booster is not None and ("strategy" not in heads or booster.classes != heads["strategy"].classes):
            raise ClassifierMismatchError(f"{path}: its strategy booster's labels are not its strategy head's")
        if dialogue_filter is not None and not _filter_fits(dialogue_filter, heads.get("user_emotion")):
            raise ClassifierMismatchError(f"{path}: its dialogue filter's labels are not its user-emotion head's")
        return cls(
            taxonomy,
            heads,
            mean,
            scale,
            embedding_model=header.get("embedding_model"),
            embedder=embedder,
            info=header.get("info"),
            context=context,
            dialogue_filter=dialogue_filter,
            sequence=sequence,
            booster=booster,
            booster_weight=booster_weight,
        )

    @staticmethod
    def _read_booster(spec: Any, data: Any) -> tuple[TreeEnsemble | None, float]:
        if not spec:
            return None, 0.0
        try:
            weight, columns, classes = float(spec["weight"]), int(spec["pca_columns"]), list(spec["classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ClassifierFileError(f"its strategy booster's header is unreadable: {spec!r}") from exc
        if not 0 < weight < 1:
            raise ClassifierFileError(f"its strategy booster's weight {weight} is not between 0 and 1")
        return TreeEnsemble.from_arrays(classes, columns, data, "strategy_booster"), weight


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
