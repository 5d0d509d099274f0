"""A second strategy learner: gradient-boosted trees, kept as plain arrays and read with NumPy.

The strategy head of the small supervised model is a logistic regression: one weight per
feature and class. Trees see what it cannot (a strategy that follows another only when the
user's message is short, say). On ESConv TRAIN dialogues (grouped 4-fold CV,
``bench/esconv_strategy_cv.py``) averaging the two heads' log probabilities, 0.7 / 0.3, raised
macro-F1 from 28.4 to 28.8-29.3 with accuracy unchanged (docs/evaluation.md, "ESConv valid").

The trees read a small PCA of the MiniLM embedding columns and the raw strategy-sequence
features. They are trained with scikit-learn's ``HistGradientBoostingClassifier`` and stored
as arrays (node features, thresholds, children, leaf values; no pickle), so that predicting
needs NumPy only; :meth:`TreeEnsemble.proba` gives what scikit-learn's ``predict_proba`` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mesa.errors import ClassifierFileError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BOOSTING", "TreeEnsemble"]

#: The booster's settings, chosen by grouped CV on ESConv TRAIN (bench/esconv_strategy_cv.py): 150 rounds,
#: learning rate 0.08, 15 leaves, 32 PCA components of the embedding columns, balanced class weights.
BOOSTING: dict[str, Any] = {"rounds": 150, "learning_rate": 0.08, "leaves": 15, "components": 32, "weight_power": 1.0}

_ARRAYS = ("components", "center", "feature", "threshold", "left", "right", "leaf", "value", "missing_left",
           "roots", "baseline")


class TreeEnsemble:
    """A PCA of some columns, then boosted trees: one tree per class and round, summed, softmaxed.

    ``roots[r, k]`` is the node where the tree of round ``r`` and class ``k`` starts; nodes of all
    trees share the arrays ``feature``, ``threshold``, ``left``, ``right``, ``leaf``, ``value``.
    """

    def __init__(self, classes: Sequence[str], arrays: dict[str, np.ndarray], pca_columns: int) -> None:
        self.classes = list(classes)
        self.arrays = arrays
        self.pca_columns = pca_columns  # the first columns of the input go through the PCA, the rest as they are

    # ------------------------------------------------------------------ training

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        pca_columns: int,
        *,
        sample_weight: np.ndarray | None = None,
        seed: int = 0,
        settings: dict[str, Any] | None = None,
    ) -> TreeEnsemble:
        """Fit the PCA on ``x[:, :pca_columns]`` and the trees on its components beside ``x[:, pca_columns:]``."""
        import numpy as np
        from sklearn.decomposition import PCA
        from sklearn.ensemble import HistGradientBoostingClassifier

        s = {**BOOSTING, **(settings or {})}
        pca = PCA(n_components=min(s["components"], pca_columns, len(x)), random_state=seed).fit(x[:, :pca_columns])
        reduced = np.hstack([pca.transform(x[:, :pca_columns]), x[:, pca_columns:]])
        model = HistGradientBoostingClassifier(
            max_iter=s["rounds"],
            learning_rate=s["learning_rate"],
            max_leaf_nodes=s["leaves"],
            l2_regularization=1.0,
            early_stopping=False,  # the same rounds on 9k turns (CV) and 12k (the full training)
            random_state=seed,
        )
        model.fit(reduced, y, sample_weight=sample_weight)
        arrays = _tree_arrays(model)
        arrays["components"] = pca.components_.astype(np.float64)
        arrays["center"] = pca.mean_.astype(np.float64)
        return cls([str(c) for c in model.classes_], arrays, pca_columns)

    # ------------------------------------------------------------------ predicting

    def reduce(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        a = self.arrays
        head = (np.asarray(x[:, : self.pca_columns], dtype=np.float64) - a["center"]) @ a["components"].T
        return np.hstack([head, np.asarray(x[:, self.pca_columns :], dtype=np.float64)])

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The summed leaf values per class (scikit-learn's raw predictions) of each row of ``x``."""
        import numpy as np

        a = self.arrays
        data = self.reduce(x)
        roots = a["roots"]  # (rounds, classes)
        nodes = np.broadcast_to(roots.reshape(1, -1), (len(data), roots.size)).copy()
        rows = np.arange(len(data))[:, None]
        while not a["leaf"][nodes].all():  # every step moves each unfinished row one level down its tree
            value = data[rows, a["feature"][nodes]]
            left = (value <= a["threshold"][nodes]) | (np.isnan(value) & a["missing_left"][nodes])
            step = np.where(left, a["left"][nodes], a["right"][nodes])
            nodes = np.where(a["leaf"][nodes], nodes, step)
        leaves = a["value"][nodes].reshape(len(data), *roots.shape)
        return leaves.sum(axis=1) + a["baseline"]

    def proba(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        raw = self.raw(x)
        if raw.shape[1] == 1:  # two classes: one tree per round, a logistic link
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        raw = raw - raw.max(axis=1, keepdims=True)
        exp = np.exp(raw)
        return exp / exp.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ files

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{name}": self.arrays[name] for name in _ARRAYS}

    @classmethod
    def from_arrays(cls, classes: Sequence[str], pca_columns: int, data: Any, prefix: str) -> TreeEnsemble:
        try:
            arrays = {name: data[f"{prefix}.{name}"] for name in _ARRAYS}
        except KeyError as exc:
            raise ClassifierFileError(f"the strategy booster lacks its array {exc}") from exc
        n_nodes = len(arrays["value"])
        if arrays["roots"].size and (arrays["roots"].max() >= n_nodes or max(arrays["left"].max(), 0) >= n_nodes):
            raise ClassifierFileError("the strategy booster's trees point outside their nodes")
        return cls(classes, arrays, pca_columns)


def _tree_arrays(model: Any) -> dict[str, np.ndarray]:
    """The fitted trees of a ``HistGradientBoostingClassifier`` as flat arrays (node indices made global)."""
    import numpy as np

    predictors = getattr(model, "_predictors", None)
    if predictors is None:  # scikit-learn moved its internals: say so rather than store something wrong
        raise ClassifierFileError("this scikit-learn keeps its boosted trees elsewhere; mesa cannot store them")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "leaf", "value",
                                                            "missing_left")}
    roots = np.zeros((len(predictors), len(predictors[0]) if predictors else 0), dtype=np.int64)
    offset = 0
    for r, per_class in enumerate(predictors):
        for k, tree in enumerate(per_class):
            nodes = tree.nodes
            if nodes["is_categorical"].any():
                raise ClassifierFileError("categorical splits cannot be stored")
            roots[r, k] = offset
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            offset += len(nodes)
    arrays = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    arrays["roots"] = roots
    arrays["baseline"] = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    return arrays
