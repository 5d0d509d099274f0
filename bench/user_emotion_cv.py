"""User emotion on held-out MESC TRAIN dialogues (grouped 4-fold CV; val is never read).

How the user-emotion head's live input was chosen (docs/evaluation.md). Every variant sees the same
features of the turn (MiniLM embeddings + strategy history, no user labels); they differ in what
they know of the previous user turn:

    python bench/user_emotion_cv.py DATA/mesc cv          # bare (nothing) and stack (its distribution)
    python bench/user_emotion_cv.py DATA/mesc labels      # out-of-fold predicted labels in the history
    python bench/user_emotion_cv.py DATA/mesc cv2 0.5,1   # stack with class-weight powers (after cv)

Embeddings come from the mesa cache ($MESA_CACHE_DIR); one BLAS thread. Scratch files in /tmp.
"""

import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

threadpool_limits(1)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

warnings.simplefilter("ignore", ConvergenceWarning)
from mesa.eval import load_mesc
from mesa.eval.classifier import _Featurizer
from mesa.eval.embeddings import default_embedder
from mesa.taxonomy import MESC

t0 = time.time()
DATA = sys.argv[1]
tr = load_mesc(DATA, "train")
names = MESC.names("user_emotion")
fz = _Featurizer(MESC, default_embedder())


def bare(h):
    return [m.model_copy(update={"emotion": None}) if m.role == "user" else m for m in h]


def prev_item(e):
    # the previous user message before e.text, with the history before it
    h = e.history
    for i in range(len(h) - 1, -1, -1):
        if h[i].role == "user":
            return (h[i].text, bare(h[:i]))
    return None


def build(ex):
    X = fz([(e.text, bare(e.history)) for e in ex])
    prev = [prev_item(e) for e in ex]
    idx = [i for i, p in enumerate(prev) if p]
    P = fz([prev[i] for i in idx])
    return X, P, np.array(idx)


X, P, pidx = build(tr)
print("featurized train", X.shape, P.shape, round(time.time() - t0), flush=True)
y = np.array([e.user_emotion for e in tr])
g = np.array([e.dialogue_id for e in tr])
mu = X.mean(0)
sd = np.maximum(X.std(0), 1e-6)
Z = (X - mu) / sd
ZP = (P - mu) / sd
dl = sorted(set(g))
rng = np.random.default_rng(1)
perm = rng.permutation(dl)
fold_of = {d: i % 4 for i, d in enumerate(perm)}
fold = np.array([fold_of[d] for d in g])


def w(labels, power):
    from collections import Counter

    c = Counter(labels.tolist())
    k = len(c)
    n = len(labels)
    return {a: (n / (k * c[a])) ** power for a in c}


def fit(Zt, yt, C=0.02, power=1.0, it=200):
    m = LogisticRegression(C=C, class_weight=w(yt, power), max_iter=it)
    m.fit(Zt, yt)
    return m


def proba(m, Zx):
    p = np.zeros((len(Zx), len(names)))
    pr = m.predict_proba(Zx)
    for j, c in enumerate(m.classes_):
        p[:, names.index(c)] = pr[:, j]
    return p


def stack(Zx, Pprev, idx, n):
    F = np.zeros((n, len(names) + 1))
    F[idx, : len(names)] = Pprev
    F[idx, len(names)] = 1
    return np.hstack([Zx, (F - 0.15) * 4])


mode = sys.argv[2] if len(sys.argv) > 2 else "cv"
if mode == "cv":
    res = {}
    oofP = np.zeros((len(pidx), len(names)))
    pfold = fold[pidx]
    for k in range(4):
        tk = fold != k
        m = fit(Z[tk], y[tk])
        f1 = f1_score(y[~tk], m.predict(Z[~tk]), average="weighted")
        res.setdefault("bare", []).append(f1)
        oofP[pfold == k] = proba(
            m, ZP[pfold == k]
        )  # previous turns of fold-k examples, predicted by model not trained on fold k
        print("fold", k, "bare", round(f1, 4), round(time.time() - t0), flush=True)
    # stacked: second level needs prev-proba on training folds too -> for train folds use oofP (out of fold wrt own fold), fine
    S = stack(Z, oofP, pidx, len(tr))
    for k in range(4):
        tk = fold != k
        m = fit(S[tk], y[tk])
        f1 = f1_score(y[~tk], m.predict(S[~tk]), average="weighted")
        res.setdefault("stack", []).append(f1)
        print("fold", k, "stack", round(f1, 4), round(time.time() - t0), flush=True)
    for k, v in res.items():
        print(k, "mean", round(np.mean(v) * 100, 1), "folds", [round(x * 100, 1) for x in v])
    np.save("/tmp/mesa-user-emotion-cv-oof.npy", oofP)
if mode == "cv2":
    oofP = np.load("/tmp/mesa-user-emotion-cv-oof.npy")
    S = stack(Z, oofP, pidx, len(tr))
    for power in [float(x) for x in sys.argv[3].split(",")]:
        r = []
        for k in range(4):
            tk = fold != k
            m = fit(S[tk], y[tk], power=power)
            r.append(f1_score(y[~tk], m.predict(S[~tk]), average="weighted"))
            print("power", power, "fold", k, round(r[-1], 4), round(time.time() - t0), flush=True)
        print("power", power, "mean", round(np.mean(r) * 100, 1), [round(x * 100, 1) for x in r], flush=True)
if mode == "labels":
    from mesa.eval.classifier import _NoBar, _out_of_fold_history

    live = _out_of_fold_history(tr, fz, folds=4, seed=0, max_iter=300, steps=_NoBar())
    XL = fz([(e.text, e.history) for e in live])
    ZL = (XL - XL.mean(0)) / np.maximum(XL.std(0), 1e-6)
    print("labels featurized", round(time.time() - t0), flush=True)
    r = []
    for k in range(4):
        tk = fold != k
        m = fit(ZL[tk], y[tk])
        r.append(f1_score(y[~tk], m.predict(ZL[~tk]), average="weighted"))
        print("labels fold", k, round(r[-1], 4), round(time.time() - t0), flush=True)
    print("labels mean", round(np.mean(r) * 100, 1), [round(x * 100, 1) for x in r], flush=True)
