"""Features of the strategy sequence for the strategy head of the small supervised model.

What a supporter does next depends much on what they did before: a question is
followed by a restatement once the answer comes, suggestions come late in a
conversation, a supporter's second message in a row often carries on the first.
These features read only what a live chain has when it chooses the strategy of
the turn: the user's message and the history before it, where earlier supporter
turns carry the strategies the system itself chose (their gold labels in the
evaluation protocol). Nothing of the turn being predicted, and no label the
chain lacks (ESConv's conversation-level ``emotion_type`` / ``problem_type``),
enters them.

The features are pure Python; :class:`SequenceBlock` standardises them with NumPy (no scikit-learn).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mesa.state import STATE_WINDOW_MIN, Message

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ACCURACY_WEIGHT",
    "LIVE_WINDOW",
    "POSITION_BUCKETS",
    "SequenceBlock",
    "decision_offsets",
    "macro_f1",
    "out_of_fold_offsets",
    "sequence_feature_names",
    "sequence_features",
]

#: Upper bounds of the buckets of "supporter turns so far" (the last bucket is open).
POSITION_BUCKETS = (0, 1, 2, 4, 7, 12, 20)
_LAST = 3  # earlier supporter strategies seen one-hot
#: Messages the features read: a running SupportAgent keeps this many in its state (older ones go to its
#: store), so counts and positions computed on more would differ between evaluation and live use. On
#: ESConv train (grouped CV) reading 20 instead of all cost 0.0-0.1 points of accuracy and 0.1 of macro-F1.
LIVE_WINDOW = STATE_WINDOW_MIN


def _one_hot(strategies: Sequence[str], value: str | None) -> list[float]:
    """One slot per strategy plus one for "none" (no such turn, or an unlabelled one)."""
    vec = [0.0] * (len(strategies) + 1)
    vec[strategies.index(value) if value in strategies else len(strategies)] = 1.0
    return vec


def _bucket(count: int) -> list[float]:
    vec = [0.0] * (len(POSITION_BUCKETS) + 1)
    vec[next((i for i, bound in enumerate(POSITION_BUCKETS) if count <= bound), len(POSITION_BUCKETS))] = 1.0
    return vec


def _trailing_supporter_turns(history: Sequence[Message]) -> list[Message]:
    """The supporter messages after the user's message (the current run of supporter turns)."""
    run: list[Message] = []
    for message in reversed(history):
        if message.role != "assistant":
            break
        run.append(message)
    return run[::-1]


def sequence_features(strategies: Sequence[str], text: str, history: Sequence[Message]) -> list[float]:
    """The strategy-sequence features of one turn: ``text`` is the user's message, ``history`` what came before.

    In order: the last three supporter strategies (one-hot each), the bigram of the last two
    (one-hot), the share and the log count of each strategy so far, the number of supporter
    turns so far (buckets and log), whether this turn continues a run of supporter turns, the
    length of the user's message, whether it asks a question, whether the last supporter turn did.
    Only the last :data:`LIVE_WINDOW` messages of ``history`` are read (what a live chain holds).
    """
    history = history[-LIVE_WINDOW:]
    supporter = [m for m in history if m.role == "assistant"]
    past = [m.strategy for m in supporter]
    last = [past[-i] if len(past) >= i else None for i in range(1, _LAST + 1)]
    out: list[float] = []
    for value in last:
        out += _one_hot(strategies, value)
    first, second = _one_hot(strategies, last[1]), _one_hot(strategies, last[0])
    out += [a * b for a in first for b in second]
    counts = Counter(s for s in past if s in strategies)
    total = sum(counts.values())
    out += [counts[s] / total if total else 0.0 for s in strategies]
    out += [math.log1p(counts[s]) / 3.0 for s in strategies]
    out += _bucket(len(supporter))
    out += [math.log1p(len(supporter)) / 3.0, math.log1p(len(history)) / 4.0]
    run = _trailing_supporter_turns(history)
    out += [1.0 if run else 0.0, min(len(run), 4) / 4.0]
    words = len(text.split())
    out += [math.log1p(words) / 4.0, 1.0 if words <= 3 else 0.0, 1.0 if "?" in text else 0.0]
    out += [1.0 if supporter and "?" in supporter[-1].text else 0.0]
    return out


def sequence_feature_names(strategies: Sequence[str]) -> list[str]:
    """A name per column of :func:`sequence_features` (for reports and tests)."""
    slots = [*strategies, "none"]
    names = [f"last{i}={s}" for i in range(1, _LAST + 1) for s in slots]
    names += [f"bigram={a}>{b}" for a in slots for b in slots]
    names += [f"share={s}" for s in strategies] + [f"logcount={s}" for s in strategies]
    names += [f"turns<={b}" for b in POSITION_BUCKETS] + [f"turns>{POSITION_BUCKETS[-1]}"]
    names += ["log_supporter_turns", "log_history", "continues_run", "run_length"]
    names += ["log_user_words", "short_user_turn", "user_asks", "last_supporter_asked"]
    return names


class SequenceBlock:
    """The sequence features of many turns, standardised with the training turns' mean and scale.

    The strategy head of :class:`~mesa.eval.classifier.SupervisedClassifier` reads them next to
    its other features; the mean and scale travel in the model file (plain arrays, no pickle).
    """

    def __init__(self, strategies: Sequence[str], mean: np.ndarray, scale: np.ndarray) -> None:
        self.strategies = list(strategies)
        self.mean = mean
        self.scale = scale

    @staticmethod
    def raw(strategies: Sequence[str], items: Sequence[tuple[str, Sequence[Message]]]) -> np.ndarray:
        import numpy as np

        rows = [sequence_features(strategies, text, history) for text, history in items]
        return np.asarray(rows, dtype=np.float32).reshape(len(items), len(sequence_feature_names(strategies)))

    @classmethod
    def fit(
        cls, strategies: Sequence[str], items: Sequence[tuple[str, Sequence[Message]]], *, weight: float = 1.0
    ) -> SequenceBlock:
        """Mean and scale from the training turns; ``weight`` multiplies the standardised block.

        Multiplying a block by ``w`` is penalising its coefficients ``w**2`` times less in the
        logistic regression: these few dozen columns want a much weaker penalty than the
        ~1,900 embedding columns next to them (docs/evaluation.md, "ESConv valid").
        """
        raw = cls.raw(strategies, items)
        scale = raw.std(axis=0)
        scale[scale < 1e-6] = 1.0  # a constant column (a strategy never seen) stays at zero
        return cls(strategies, raw.mean(axis=0), scale / weight)

    def transform(self, items: Sequence[tuple[str, Sequence[Message]]]) -> np.ndarray:
        return (self.raw(self.strategies, items) - self.mean) / self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`from_arrays` needs, to be stored next to the model's arrays."""
        return {"strategy_sequence.mean": self.mean, "strategy_sequence.scale": self.scale}

    @classmethod
    def from_arrays(cls, strategies: Sequence[str], data: Any) -> SequenceBlock:
        return cls(strategies, data["strategy_sequence.mean"], data["strategy_sequence.scale"])


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over ``n_classes`` class indices (a class absent from both counts as 0, as scikit-learn does)."""
    import numpy as np

    scores = []
    for k in range(n_classes):
        true_k, pred_k = truth == k, predicted == k
        hits = float(np.sum(true_k & pred_k))
        denominator = float(np.sum(true_k) + np.sum(pred_k))
        scores.append(2 * hits / denominator if denominator else 0.0)
    return float(np.mean(scores))


#: How much accuracy counts next to macro-F1 when the decision offsets are chosen (see :func:`decision_offsets`).
#: Grouped 4-fold CV of the ESConv training (class weights balanced^0.35) on train dialogues, accuracy /
#: macro-F1: 0: 31.9 / 28.8; 0.5: 32.9 / 28.4; 1: 33.2 / 27.9. 0.5 is the farthest above both published
#: baselines (31.34 / 27.70).
ACCURACY_WEIGHT = 0.5


def decision_offsets(
    log_proba: np.ndarray,
    truth: np.ndarray,
    *,
    rounds: int = 3,
    step: float = 0.1,
    accuracy_weight: float | None = None,
) -> np.ndarray:
    """Per-class offsets to the logits that raise macro-F1 + ``accuracy_weight`` x accuracy on held-out predictions.

    ``log_proba`` are out-of-fold log probabilities (one column per class), ``truth`` the class
    indices; coordinate ascent over a grid of -6..6 steps per class. Class weights trade accuracy
    for macro-F1 through the whole fit; these few numbers make the trade at the end, chosen on
    turns the model did not see, so the weights can stay mild. ``accuracy_weight`` (default
    :data:`ACCURACY_WEIGHT`) sets how much accuracy counts (docs/evaluation.md, "ESConv valid").
    """
    import numpy as np

    grid = np.round(np.arange(-6, 7) * step, 6)  # -0.6 .. 0.6 by default
    n_classes = log_proba.shape[1]
    weight = ACCURACY_WEIGHT if accuracy_weight is None else accuracy_weight

    def score(offsets: np.ndarray) -> float:
        predicted = (log_proba + offsets).argmax(axis=1)
        return macro_f1(truth, predicted, n_classes) + weight * float(np.mean(predicted == truth))

    offsets = np.zeros(n_classes)
    best = score(offsets)
    for _ in range(rounds):
        for k in range(n_classes):
            for value in grid:
                trial = offsets.copy()
                trial[k] = value
                if (candidate := score(trial)) > best:
                    best, offsets = candidate, trial
    return offsets


def out_of_fold_offsets(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    classes: Sequence[str],
    fit: Callable[[np.ndarray, np.ndarray], Any],
    *,
    folds: int = 4,
    seed: int = 0,
    steps: Any = None,
    accuracy_weight: float | None = None,
) -> np.ndarray:
    """Decision offsets (:func:`decision_offsets`) from out-of-fold predictions over grouped folds.

    ``fit(x, y)`` returns a fitted model with ``classes_`` and ``predict_proba``; each fold's
    model never sees the dialogues (``groups``) it predicts. ``steps.update(1)`` per fit.
    ``accuracy_weight``: see :func:`decision_offsets`.
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(sorted(set(groups))).tolist()
    fold_of = {group: i % max(2, folds) for i, group in enumerate(order)}
    fold = np.array([fold_of[g] for g in groups])
    log_proba = np.full((len(y), len(classes)), -30.0)  # a class a fold never saw gets ~zero probability
    for k in sorted(set(fold.tolist())):
        model = fit(x[fold != k], y[fold != k])
        if steps is not None:
            steps.update(1)
        columns = [list(classes).index(str(c)) for c in model.classes_]
        log_proba[np.ix_(fold == k, columns)] = np.log(np.maximum(model.predict_proba(x[fold == k]), 1e-12))
    truth = np.array([list(classes).index(str(label)) for label in y])
    return decision_offsets(log_proba, truth, accuracy_weight=accuracy_weight)
