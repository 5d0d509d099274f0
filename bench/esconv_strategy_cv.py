"""Grouped cross-validation of strategy models on ESConv TRAIN dialogues (never valid).

Usage::

    MESA_CACHE_DIR=<cache with the embeddings> nice python bench/esconv_strategy_cv.py DATA_DIR [SETTING ...]

``DATA_DIR`` holds ``train.jsonl``. Each example is a supporter turn predicted from the
dialogue before it (earlier supporter turns with their gold strategies: the usual protocol).
The train dialogues are split into ``--folds`` groups; each setting is fitted on all groups but
one and scored on that one. Prints accuracy and macro-F1 per fold and their means, so settings
are compared on the same folds in one run. Settings (default: all):

- ``base``: the current model's features (embeddings + label history), logistic regression;
- ``base+seq``: plus :func:`mesa.eval.strategy_features.sequence_features`;
- ``seq``: the sequence features alone;
- ``hgb``: gradient boosting on the sequence features and a PCA of the embeddings (slow: not in the
  default list; a run on the sequence features alone was stopped after 15 minutes on the loaded CPU);
- ``mix``: a quick screen of the head + booster mixture: out-of-fold probabilities of the logistic
  head (C 0.0001, balanced^0.75, sequence block x10) and of the boosted trees
  (:class:`mesa.eval.boosting.TreeEnsemble`), their log probabilities averaged with each booster weight,
  offsets chosen on the other folds' out-of-fold predictions (``--booster`` / ``--accuracy-weight``: one
  value each instead of the grid);
- ``shipped``: what ``mesa train --corpus esconv`` builds (``SupervisedClassifier.train`` with
  :data:`mesa.eval.cli.ESCONV_STRATEGY`), trained on the other folds, its decision offsets tuned
  on out-of-fold predictions within those folds only (``--booster W``, ``--accuracy-weight A``,
  ``--weight-power P`` change one setting).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _load(data: Path):
    from mesa.eval.datasets import load_esconv

    return load_esconv(data, "train")


def _base_features(examples):
    from mesa.eval.classifier import _Featurizer
    from mesa.eval.embeddings import default_embedder
    from mesa.taxonomy import get_taxonomy

    featurize = _Featurizer(get_taxonomy("esconv"), default_embedder())
    return featurize([(e.text, e.history) for e in examples])


def _sequence_features(examples):
    from mesa.eval.strategy_features import sequence_features
    from mesa.taxonomy import get_taxonomy

    strategies = get_taxonomy("esconv").names("strategy")
    return np.array([sequence_features(strategies, e.text, e.history) for e in examples], dtype=np.float32)


def _folds(examples, k: int, seed: int) -> np.ndarray:
    dialogues = sorted({e.dialogue_id for e in examples})
    order = np.random.default_rng(seed).permutation(dialogues).tolist()
    fold_of = {d: i % k for i, d in enumerate(order)}
    return np.array([fold_of[e.dialogue_id] for e in examples])


def _weights(y: np.ndarray, power: float) -> np.ndarray:
    classes, counts = np.unique(y, return_counts=True)
    per_class = {c: (len(y) / (len(classes) * n)) ** power for c, n in zip(classes, counts, strict=True)}
    return np.array([per_class[v] for v in y])


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = train.mean(axis=0), train.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return (train - mean) / scale, (test - mean) / scale


def _logistic(c: float, power: float, seq_weight: float = 1.0, seq_dims: int = 0):
    """Logistic regression on standardised features; the last ``seq_dims`` columns multiplied by ``seq_weight``.

    Multiplying a block by w is the same as penalising its coefficients w^2 times less: the
    sequence features want a weaker penalty than the 1,900 embedding columns.
    """
    from sklearn.linear_model import LogisticRegression

    def fit_predict(x_train, y_train, x_test):
        x_train, x_test = _standardise(x_train, x_test)
        if seq_dims:
            x_train[:, -seq_dims:] *= seq_weight
            x_test[:, -seq_dims:] *= seq_weight
        model = LogisticRegression(C=c, max_iter=300)
        model.fit(x_train, y_train, sample_weight=_weights(y_train, power))
        return model.predict(x_test)

    return fit_predict


def _boosting(power: float, iterations: int, rate: float, leaves: int, pca: int):
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier

    def fit_predict(x_train, y_train, x_test):
        if pca:
            emb, seq = x_train[:, :EMB_DIMS], x_train[:, EMB_DIMS:]
            reducer = PCA(n_components=pca, random_state=0).fit(emb)
            x_train = np.hstack([reducer.transform(emb), seq])
            x_test = np.hstack([reducer.transform(x_test[:, :EMB_DIMS]), x_test[:, EMB_DIMS:]])
        model = HistGradientBoostingClassifier(
            max_iter=iterations, learning_rate=rate, max_leaf_nodes=leaves, l2_regularization=1.0, random_state=0
        )
        model.fit(x_train, y_train, sample_weight=_weights(y_train, power))
        return model.predict(x_test)

    return fit_predict


EMB_DIMS = 0  # set in main: the embedding columns of the base features


def _score(name: str, fit_predict, x: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    accs, f1s = [], []
    started = time.process_time()
    for k in sorted(set(fold.tolist())):
        predicted = fit_predict(x[fold != k], y[fold != k], x[fold == k])
        accs.append(100 * accuracy_score(y[fold == k], predicted))
        f1s.append(100 * f1_score(y[fold == k], predicted, average="macro", zero_division=0))
    line = (
        f"{name:42s} acc {np.mean(accs):5.1f} ({' / '.join(f'{a:.1f}' for a in accs)})  "
        f"mF1 {np.mean(f1s):5.1f} ({' / '.join(f'{f:.1f}' for f in f1s)})  cpu {time.process_time() - started:.0f} s"
    )
    print(line, flush=True)
    return {"name": name, "acc": float(np.mean(accs)), "macro_f1": float(np.mean(f1s))}


def _settings(base: np.ndarray, seq: np.ndarray) -> dict:
    both = np.hstack([base, seq])
    emb_and_seq = np.hstack([base[:, :EMB_DIMS], seq])
    return {
        "base": [(f"base LR C={c} w^{p}", _logistic(c, p), base) for c, p in [(0.0001, 1.0), (0.0001, 0.5)]],
        "base+seq": [
            (f"base+seq LR C={c} w^{p} seq x{s}", _logistic(c, p, s, seq.shape[1]), both)
            for c, p, s in [
                (0.0001, 1.0, 1.0),
                (0.0001, 1.0, 10.0),
                (0.0001, 0.75, 10.0),
                (0.0001, 0.5, 10.0),
                (0.0001, 0.35, 10.0),
            ]
        ],
        "seq": [(f"seq LR C={c} w^{p}", _logistic(c, p), seq) for c, p in [(0.01, 1.0), (0.01, 0.5)]],
        "hgb": [
            (f"hgb pca{pc} it{it} lr{lr} leaves{lv} w^{p}", _boosting(p, it, lr, lv, pc), emb_and_seq)
            for pc, it, lr, lv, p in [(32, 200, 0.05, 15, 1.0), (32, 200, 0.05, 15, 0.5)]
        ],
    }


def _mixtures(
    base: np.ndarray, seq: np.ndarray, y: np.ndarray, fold: np.ndarray, boosters, accuracy_weights, groups: np.ndarray
) -> None:
    """Out-of-fold probabilities of the head and of the trees, then each mixture with cross-fitted offsets."""
    from sklearn.linear_model import LogisticRegression

    from mesa.eval.boosting import TreeEnsemble
    from mesa.eval.strategy_features import decision_offsets, macro_f1

    classes = sorted(set(y.tolist()))
    truth = np.array([classes.index(v) for v in y])
    head, trees = np.zeros((len(y), len(classes))), np.zeros((len(y), len(classes)))
    started = time.process_time()
    for k in sorted(set(fold.tolist())):
        train, test = fold != k, fold == k
        (b_train, b_test), (s_train, s_test) = _standardise(base[train], base[test]), _standardise(seq[train], seq[test])
        model = LogisticRegression(C=0.0001, max_iter=300)
        model.fit(np.hstack([b_train, 10 * s_train]), y[train], sample_weight=_weights(y[train], 0.75))
        head[test] = model.predict_proba(np.hstack([b_test, 10 * s_test]))
        raw = np.hstack([base[:, :EMB_DIMS], seq])
        booster = TreeEnsemble.fit(raw[train], y[train], EMB_DIMS, sample_weight=_weights(y[train], 1.0))
        trees[test] = booster.proba(raw[test])
        print(f"  fold {k}: out-of-fold probabilities, cpu {time.process_time() - started:.0f} s", flush=True)
    for weight in boosters:
        mixed = (1 - weight) * np.log(np.maximum(head, 1e-12)) + weight * np.log(np.maximum(trees, 1e-12))
        for accuracy_weight in accuracy_weights:
            accs, f1s = [], []
            predicted = np.zeros(len(y), dtype=int)
            for k in sorted(set(fold.tolist())):
                test = fold == k
                offsets = decision_offsets(mixed[~test], truth[~test], accuracy_weight=accuracy_weight)
                predicted[test] = (mixed[test] + offsets).argmax(axis=1)
                accs.append(100 * float(np.mean(predicted[test] == truth[test])))
                f1s.append(100 * macro_f1(truth[test], predicted[test], len(classes)))
            print(
                f"mix booster {weight} offsets acc x{accuracy_weight}: acc {np.mean(accs):5.1f} "
                f"({' / '.join(f'{a:.1f}' for a in accs)})  mF1 {np.mean(f1s):5.1f} ({' / '.join(f'{f:.1f}' for f in f1s)})",
                flush=True,
            )
            _valid_sized_draws(truth, predicted, groups, len(classes))


def _valid_sized_draws(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray, n_classes: int) -> None:
    """How these out-of-fold predictions read on 500 random sets of 195 train dialogues (valid's size)."""
    from mesa.eval.strategy_features import macro_f1

    ids = sorted(set(groups.tolist()))
    rng = np.random.default_rng(0)
    accs, f1s = [], []
    for _ in range(500):
        chosen = np.isin(groups, rng.choice(ids, size=195, replace=False))
        accs.append(100 * float(np.mean(predicted[chosen] == truth[chosen])))
        f1s.append(100 * macro_f1(truth[chosen], predicted[chosen], n_classes))
    print(
        f"    on 195-dialogue sets: acc 95 % in {np.percentile(accs, 2.5):.1f}-{np.percentile(accs, 97.5):.1f} "
        f"({np.mean(np.array(accs) <= 31.34):.0%} at or below MISC's 31.34), mF1 95 % in "
        f"{np.percentile(f1s, 2.5):.1f}-{np.percentile(f1s, 97.5):.1f} "
        f"({np.mean(np.array(f1s) <= 27.70):.0%} at or below EmoDynamiX's 27.70)",
        flush=True,
    )


def _shipped(examples, fold: np.ndarray, weight_power: float | None = None, overrides: dict | None = None) -> None:
    """The shipped training, run per fold: fitted on the other folds, scored on this one."""
    from sklearn.metrics import accuracy_score, f1_score

    from mesa.eval.classifier import SupervisedClassifier
    from mesa.eval.cli import ESCONV_STRATEGY
    from mesa.eval.embeddings import default_embedder

    settings = dict(ESCONV_STRATEGY)
    if weight_power is not None:
        settings["strategy_weight_powers"] = (weight_power,)
    settings.update(overrides or {})
    accs, f1s = [], []
    started = time.process_time()
    for k in sorted(set(fold.tolist())):
        train = [e for e, f in zip(examples, fold, strict=True) if f != k]
        test = [e for e, f in zip(examples, fold, strict=True) if f == k]
        clf = SupervisedClassifier.train(
            train, "esconv", embedder=default_embedder(), tasks=["strategy"], holdout=0, **settings
        )
        dists = clf.predict_distributions("strategy", [(e.text, e.history) for e in test])
        predicted = [max(d, key=d.__getitem__) for d in dists]
        truth = [e.strategy for e in test]
        accs.append(100 * accuracy_score(truth, predicted))
        f1s.append(100 * f1_score(truth, predicted, average="macro", zero_division=0))
        print(f"  fold {k}: acc {accs[-1]:.1f} mF1 {f1s[-1]:.1f}", flush=True)
    print(
        f"{'shipped ' + str(settings):42s} acc {np.mean(accs):5.1f} ({' / '.join(f'{a:.1f}' for a in accs)})  "
        f"mF1 {np.mean(f1s):5.1f} ({' / '.join(f'{f:.1f}' for f in f1s)})  cpu {time.process_time() - started:.0f} s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    global EMB_DIMS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with ESConv train.jsonl")
    parser.add_argument("settings", nargs="*", default=["base", "base+seq", "seq"])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weight-power", type=float, default=None, help="shipped: class-weight power instead")
    parser.add_argument(
        "--accuracy-weight",
        type=float,
        default=None,
        help="shipped: weight of accuracy next to macro-F1 in the offsets",
    )
    parser.add_argument("--booster", type=float, default=None, help="shipped: the strategy booster's weight (0: none)")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    examples = [e for e in _load(args.data) if e.strategy]
    y = np.array([e.strategy for e in examples])
    fold = _folds(examples, args.folds, args.seed)
    overrides: dict = {}
    if args.accuracy_weight is not None:
        overrides["strategy_accuracy_weight"] = args.accuracy_weight
    if args.booster is not None:
        overrides["strategy_booster"] = args.booster
    if args.settings == ["shipped"]:  # no feature matrices needed: the training makes its own
        _shipped(examples, fold, args.weight_power, overrides)
        return 0
    base = _base_features(examples)
    EMB_DIMS = base.shape[1] - _label_dims()
    seq = _sequence_features(examples)
    print(
        f"{len(examples)} examples, {len({e.dialogue_id for e in examples})} dialogues, "
        f"base {base.shape[1]} + sequence {seq.shape[1]} features, {args.folds} grouped folds",
        flush=True,
    )
    if args.settings == ["mix"]:
        boosters = [args.booster] if args.booster is not None else [0.0, 0.3, 0.5]
        accuracy_weights = [args.accuracy_weight] if args.accuracy_weight is not None else [0.5, 0.25, 0.0]
        with threadpool_limits(limits=1):
            groups = np.array([e.dialogue_id for e in examples])
            _mixtures(base, seq, y, fold, boosters, accuracy_weights, groups)
        return 0
    table = _settings(base, seq)
    with threadpool_limits(limits=1, user_api="blas"):
        for setting in args.settings:
            for name, fit_predict, x in table[setting]:
                _score(name, fit_predict, x, y, fold)
    return 0


def _label_dims() -> int:
    from mesa.eval.classifier import _label_vector
    from mesa.taxonomy import get_taxonomy

    return len(_label_vector(get_taxonomy("esconv"), "x", []))


if __name__ == "__main__":
    sys.exit(main())
