"""Train the safety layer's linear classifier over MiniLM embeddings and write ``mesa/safety/data/classifier.npz``.

Data (never ``tests/safety_batches/valid.jsonl``, which stays for validation):

- ``tests/safety_batches/train_*.jsonl`` (risk and hard negatives written for this classifier) and ``tune.jsonl``;
- the exemplar bank ``mesa/safety/data/exemplars.json`` (risk per category, safe kinds);
- a seeded sample of MESC **train** client turns as real non-crisis talk (``split == train``, ``Speaker == Client``;
  the val split is the false-alarm test of ``bench/safety_bench.py``).

Model: each message is cut into the same windows the layer reads (:func:`mesa.safety.semantic.windows`); a window is
embedded (mean-pooled, L2-normalised MiniLM); a logistic regression says risk vs safe, a second one (multinomial)
says which risk category. A risk message's label belongs to its riskiest window, not to the filler around it, so
training runs twice: first on every window, then with each risk message represented by its highest-scoring window.

Calibration: the decision thresholds are chosen on out-of-fold scores (5 folds, grouped so a buried variant sits
in the fold of its source message), together with what escalates anyway: the rules and the bank's nearest-exemplar
rule (the layer keeps it: on these batches it and the classifier catch different messages): the lowest ``elevated``
threshold with hard negatives <= 5 % and the MESC train sample <= 1 % escalated (the issue's goals; a linear model
over frozen MiniLM does not separate the adversarial hard negatives well enough for a stricter limit); the ``ask`` threshold (LLM judgement asked) the lowest with <= 5 % of the MESC
sample asking.

Needs the ``safety`` extra and scikit-learn (in the ``eval`` extra): ``pip install "mesa-esc[safety,eval]"``;
inference needs numpy only. Usage::

    python bench/train_safety_classifier.py /work/shared/data/mesc/mesc_train_val.csv
    python bench/train_safety_classifier.py data.csv --dry-run      # figures only, weights not written
    python bench/train_safety_classifier.py data.csv --cache /tmp/emb.npz   # reuse the window embeddings
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from mesa.safety import SafetyPolicy
from mesa.safety.measure import load_batch
from mesa.safety.semantic import _choose, save_classifier, windows

SEED = 20261129
CATEGORIES = ["suicide", "self_harm", "harm_to_others", "abuse"]
MESC_SAMPLE = 3000
TARGET = ROOT / "mesa" / "safety" / "data" / "classifier.npz"


def training_rows(batches: Path, mesc_csv: Path) -> list[dict]:
    """Every training message as ``{text, risk, category, kind, group}`` (group: the CV fold unit)."""
    rows: list[dict] = []
    own = [r for f in sorted(batches.glob("train_*.jsonl")) for r in load_batch(f)] + load_batch(batches / "tune.jsonl")
    sources = [r["text"] for r in own if r.get("augment") != "buried"]
    for r in own:
        group = r["text"]
        if r.get("augment") == "buried":  # same fold as the message it was made from
            group = next((s for s in sources if s in r["text"]), r["text"])
        risk = r["expect"] == "escalate"
        rows.append({"text": r["text"], "risk": risk, "category": r["category"] if risk else "none", "kind": r["kind"], "group": group})
    bank = json.loads((ROOT / "mesa" / "safety" / "data" / "exemplars.json").read_text(encoding="utf-8"))
    for category, kinds in bank["risk"].items():
        for texts in kinds.values():
            rows += [{"text": t, "risk": True, "category": category, "kind": "bank", "group": t} for t in texts]
    for texts in bank["safe"].values():
        rows += [{"text": t, "risk": False, "category": "none", "kind": "bank_safe", "group": t} for t in texts]
    for t in mesc_sample(mesc_csv):
        rows.append({"text": t, "risk": False, "category": "none", "kind": "mesc", "group": t})
    return rows


def mesc_sample(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        turns = [r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == "train" and r["Speaker"] == "Client"]
    turns = sorted({t for t in turns if t})
    return random.Random(SEED).sample(turns, min(MESC_SAMPLE, len(turns)))


def embed_windows(encoder, rows: list[dict]) -> list[np.ndarray]:
    """Per message, the embeddings of the windows the layer reads (at least one)."""
    out = []
    for i, row in enumerate(rows):
        parts = _choose(windows(row["text"])) or [row["text"]]
        out.append(encoder.encode(parts))
        if i % 500 == 0:
            print(f"  embedded {i}/{len(rows)}", file=sys.stderr, flush=True)
    return out


def cached_embeddings(path: Path | None, rows: list[dict], make_encoder) -> list[np.ndarray]:
    """The window embeddings, reused from ``path`` when it holds the same messages (no pickle: one flat array)."""
    digest = hashlib.sha256("\n\x00".join(r["text"] for r in rows).encode("utf-8")).hexdigest()[:16]
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as data:
            if str(data["digest"]) == digest:
                return np.split(data["flat"], np.cumsum(data["counts"])[:-1])
    embeds = embed_windows(make_encoder(), rows)
    if path is not None:
        np.savez(path, flat=np.vstack(embeds), counts=np.array([len(e) for e in embeds]), digest=np.array(digest))
    return embeds


def fit(rows: list[dict], embeds: list[np.ndarray], index: list[int]):
    """Risk head (windows; risk messages by their riskiest window after a first pass) and category head."""
    from sklearn.linear_model import LogisticRegression

    def stack(pick_risky):
        xs, ys, cats = [], [], []
        for i in index:
            e = embeds[i]
            if rows[i]["risk"]:
                e = pick_risky(e)
            xs.append(e)
            ys += [rows[i]["risk"]] * len(e)
            cats += [rows[i]["category"]] * len(e)
        return np.vstack(xs), np.array(ys), np.array(cats)

    x, y, _ = stack(lambda e: e)
    risk = LogisticRegression(C=16.0, class_weight="balanced", max_iter=2000).fit(x, y)
    x, y, cats = stack(lambda e: e[[int(np.argmax(e @ risk.coef_[0]))]])
    risk = LogisticRegression(C=16.0, class_weight="balanced", max_iter=2000).fit(x, y)
    category = LogisticRegression(C=16.0, class_weight="balanced", max_iter=2000).fit(x[y], cats[y])
    return risk, category


def message_scores(risk, embeds: list[np.ndarray], index: list[int]) -> np.ndarray:
    w, b = risk.coef_[0], risk.intercept_[0]
    return np.array([float(1 / (1 + np.exp(-(embeds[i] @ w + b).max()))) for i in index])


def out_of_fold(rows: list[dict], embeds: list[np.ndarray], folds: int = 5) -> np.ndarray:
    groups = sorted({r["group"] for r in rows})
    random.Random(SEED).shuffle(groups)
    fold_of = {g: n % folds for n, g in enumerate(groups)}
    scores = np.zeros(len(rows))
    for k in range(folds):
        train = [i for i, r in enumerate(rows) if fold_of[r["group"]] != k]
        test = [i for i, r in enumerate(rows) if fold_of[r["group"]] == k]
        risk, _ = fit(rows, embeds, train)
        scores[test] = message_scores(risk, embeds, test)
        print(f"  fold {k + 1}/{folds} done", file=sys.stderr, flush=True)
    return scores


def rate(hit: np.ndarray, mask: np.ndarray) -> float:
    return float(hit[mask].mean()) if mask.any() else float("nan")


def calibrate(rows: list[dict], scores: np.ndarray, rules: np.ndarray) -> tuple[float, float]:
    risky = np.array([r["risk"] for r in rows])
    own_neg = np.array([not r["risk"] and r["kind"] in ("hard_negative",) for r in rows])
    mesc = np.array([r["kind"] == "mesc" for r in rows])
    elevated = ask = None
    for t in np.arange(0.05, 0.996, 0.005):
        hit = rules | (scores >= t)
        if elevated is None and rate(hit, own_neg) <= 0.05 and rate(hit, mesc) <= 0.01:
            elevated = float(round(t, 3))
        if ask is None and rate(scores >= t, mesc) <= 0.05:
            ask = float(round(t, 3))
    elevated = elevated if elevated is not None else 0.99
    ask = min(ask if ask is not None else elevated, elevated)
    print(f"\ncalibrated: elevated >= {elevated:.3f}, ask the LLM >= {ask:.3f}")
    report(rows, scores, rules, elevated, risky)
    return elevated, ask


def report(rows: list[dict], scores: np.ndarray, rules: np.ndarray, t: float, risky: np.ndarray) -> None:
    hit = rules | (scores >= t)
    print("  figures (classifier OR the base shown; the data was trained on in the other folds only):")
    own = np.array([r["kind"] in ("explicit", "implicit", "hard_negative") for r in rows])
    for kind in ("explicit", "implicit", "hard_negative"):
        mask = np.array([r["kind"] == kind for r in rows])
        label = "escalated" if kind == "hard_negative" else "recall"
        print(f"  own batches {kind:<14} {label} {100 * rate(hit, mask):5.1f} %  (n={mask.sum()}; base alone {100 * rate(rules, mask):5.1f} %)")
        for category in sorted({r["category"] for r in rows if r["kind"] == kind and r["risk"]}):
            sub = mask & np.array([r["category"] == category for r in rows])
            print(f"      {category:<16} {100 * rate(hit, sub):5.1f} %  (n={sub.sum()})")
    for kind in ("bank", "bank_safe", "mesc"):
        mask = np.array([r["kind"] == kind for r in rows])
        print(f"  {kind:<24} escalated {100 * rate(hit, mask):5.2f} %  (n={mask.sum()})")
    print(f"  all own risk messages recall {100 * rate(hit, own & risky):.1f} %")


def nearest_rule_hits(rows: list[dict]) -> np.ndarray:
    """Where the nearest-exemplar rule (kept beside the classifier) escalates; bank rows are its own exemplars, so False."""
    from mesa.safety.semantic import SemanticLayer

    layer = SemanticLayer(classifier=None)
    return np.array([r["kind"] not in ("bank", "bank_safe") and layer.assess(r["text"]).level == "elevated" for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mesc_csv", type=Path, help="MESC mesc_train_val.csv (its train split gives real non-crisis turns)")
    ap.add_argument("--batches", type=Path, default=ROOT / "tests" / "safety_batches")
    ap.add_argument("--cache", type=Path, default=None, help="keep the window embeddings in this npz between runs")
    ap.add_argument("--dry-run", action="store_true", help="print the figures, do not write the weights")
    args = ap.parse_args(argv)
    np.random.seed(SEED)
    start = time.perf_counter()
    rows = training_rows(args.batches, args.mesc_csv)
    print(f"{len(rows)} training messages ({sum(r['risk'] for r in rows)} risk)")
    policy = SafetyPolicy(semantic=False)
    rules = np.array([policy.assess_rules(r["text"]).crisis for r in rows])
    from mesa.safety.minilm import MiniLM

    embeds = cached_embeddings(args.cache, rows, MiniLM)
    scores = out_of_fold(rows, embeds)
    near = nearest_rule_hits(rows)
    print("\nthe rules and the nearest-exemplar rule alone (no classifier):")
    report(rows, np.zeros(len(rows)), rules | near, 1.0, np.array([r["risk"] for r in rows]))
    elevated, ask = calibrate(rows, scores, rules | near)
    risk, category = fit(rows, embeds, list(range(len(rows))))
    if not args.dry_run:
        how = (f"bench/train_safety_classifier.py (seed {SEED}): {len(rows)} messages, thresholds from 5-fold "
               f"out-of-fold scores OR'd with the rules and the nearest-exemplar rule: hard negatives <= 5 %, "
               f"MESC train sample <= 1 %")
        save_classifier(TARGET, risk.coef_[0], float(risk.intercept_[0]), category.coef_, category.intercept_,
                        list(category.classes_), elevated, ask, how)
        print(f"wrote {TARGET}")
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
