"""Screening: does fine-tuning MiniLM for the user's emotion beat the frozen encoder? MESC TRAIN only (grouped folds).

The split is ``bench/user_emotion_filter_cv.py``'s (4 folds of dialogues, seed 1): the encoder is fine-tuned on the
user turns of every fold but K and read on fold K. Val is never read. Two ways the fine-tuned encoder is plugged in,
each scored on fold K against the same computation with the frozen encoder:

* ``oof``: its own softmax head's probabilities replace the per-turn head's reading of the current turn in today's
  default combination (TF-IDF filter over the earlier turns, tau 0.5 x turn reading x TF-IDF reading^0.5 x training
  label shares^-0.25, the ``prior`` mode of user_emotion_filter_cv.py);
* ``holdout``: its adapter merged into numpy MiniLM (``mesa.safety.minilm.MiniLM(adapter=...)``) becomes the embedder
  of the real training (``SupervisedClassifier.train`` on the other folds, the same settings as ``holdout filter K``),
  scored live (predicted history) on fold K.

Usage (after ``user_emotion_filter_cv.py DATA features`` and ``oof 0.002`` and ``oof-tfidf 1.0``, which write the
scratch files in /tmp that the ``oof`` comparison reads)::

    nice python bench/user_emotion_finetune.py DATA/mesc tune 0 3 epochs=3 lr=0.002   # settings, read on fold 3
    nice python bench/user_emotion_finetune.py DATA/mesc train 0 [key=value ...]  # LoRA on folds 1-3, fold 0 held out
    nice python bench/user_emotion_finetune.py DATA/mesc oof 0          # the combination, fine-tuned vs frozen head
    MESA_CACHE_DIR=<cache> nice python bench/user_emotion_finetune.py DATA/mesc holdout 0   # the real training

Defaults (chosen with ``tune 0 3``: fitted on folds 1-2, read on fold 3, never on a scored fold): LoRA rank 8
(scale 2) on query, value and both FFN matrices of the top 2 layers, 3 epochs, one-cycle AdamW (LoRA and head
2e-3), class-weighted cross-entropy, batches of 32. The frozen lower layers run once per text (cached); each epoch
runs only the top layers. Torch threads: 1 (the machine is shared). Seeded. The ``tune`` mode's frozen reference
reads the message embedding from the ``features`` scratch file (columns 0:384). Figures: docs/evaluation.md ("Fine-tuning the encoder").
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_safety_classifier import LORA_SCALE, build_model, lora_targets, padded, padded_states
from user_emotion_filter_cv import (
    FOLDS,
    NAMES,
    SCRATCH,
    fold_of,
    fold_transitions,
    load,
    predictive,
    scored_examples,
    user_turns,
    wf1,
)

from mesa.eval import load_mesc
from mesa.safety.minilm import MAX_TOKENS, adapter_base_digest, default_model_dir, save_adapter

SEED = 20261130
BATCH = 32
t0 = time.time()


def log(*args):
    print(f"[{time.time() - t0:6.0f}s]", *args, flush=True)


def adapter_path(k: int) -> Path:
    return Path(f"{SCRATCH}-ft{k}-adapter.npz")


def proba_path(k: int) -> str:
    return f"{SCRATCH}-ft{k}-proba.npy"


def turn_rows(data: str):
    """The feature rows' texts, gold labels and folds (rows in the order of the ``features`` scratch file)."""
    items, gold, dialogue, _ = user_turns(load_mesc(data, "train"))
    keys = list(items)
    folds = fold_of(np.array([dialogue[k] for k in keys]))
    texts = [items[k][0] for k in keys]
    labels = np.array([gold[k] or "" for k in keys])
    fold = np.array([folds[dialogue[k]] for k in keys])
    turn = [(dialogue[k], k[1]) for k in keys]  # one user turn appears in several rows (different windows)
    return texts, labels, fold, turn


def tokenised(texts: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(min(MAX_TOKENS, 128))  # user turns are short; 128 word pieces keep batches small
    tokenizer.no_padding()  # tokenizer.json pads every text to a fixed length: the mask must see only real tokens
    return [e.ids for e in tokenizer.encode_batch(texts)]


def lower_states(model, tokens: list[list[int]]) -> list:
    """The frozen layers' output per text, computed once (float16 to halve the memory)."""
    import torch

    order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
    states: list = [None] * len(tokens)
    with torch.no_grad():
        for start in range(0, len(order), 64):
            chosen = order[start : start + 64]
            ids, mask = padded([tokens[i] for i in chosen])
            x = model.lower(ids, mask)
            for row, i in enumerate(chosen):
                states[i] = x[row, : len(tokens[i])].half()
    return states


def upper_batch(model, states: list):
    """The adapted upper layers over a batch of cached lower-layer states (padded as the safety trainer pads them)."""
    return model.upper(*padded_states(states))


def batches(order: np.ndarray, lengths: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (less padding): sort each shuffled block of 50 batches by length."""
    out = []
    block = BATCH * 50
    for start in range(0, len(order), block):
        part = order[start : start + block]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        out += [part[i : i + BATCH] for i in range(0, len(part), BATCH)]
    rng.shuffle(out)
    return out


def predict(model, head, states: list) -> np.ndarray:
    import torch

    order = sorted(range(len(states)), key=lambda i: len(states[i]))
    out = np.zeros((len(states), len(NAMES)))
    with torch.no_grad():
        for start in range(0, len(order), 64):
            chosen = order[start : start + 64]
            out[chosen] = torch.softmax(head(upper_batch(model, [states[i] for i in chosen])), dim=1).numpy()
    return out


def parse_settings(args: list[str]) -> dict:
    """``key=value`` words (epochs, rank, top, ffn, lr, head_lr) over the defaults."""
    settings = {"epochs": 3, "rank": 8, "top": 2, "ffn": 1, "lr": 2e-3, "head_lr": 2e-3}  # chosen on fold 3
    for word in args:
        key, value = word.split("=")
        settings[key] = type(settings[key])(float(value)) if key in settings else _unknown(key)
    return settings


def _unknown(key: str):
    raise SystemExit(f"unknown setting {key!r}")


def train(data: str, k: int, settings: dict, inner: int | None = None) -> None:
    """Fine-tune on every fold but ``k`` (and ``inner``): with ``inner``, only report the per-turn wF1 on that
    fold, with the frozen encoder's on the same split beside it (settings are chosen this way, never on ``k``)."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    texts, labels, fold, turn = turn_rows(data)
    scored = k if inner is None else inner
    fit = training_turns(labels, fold, turn, {k, scored})
    held = np.flatnonzero(fold == scored)
    unique = sorted({texts[i] for i in np.concatenate([fit, held])})
    slot = {text: j for j, text in enumerate(unique)}
    tokens = tokenised(unique)
    model = build_model(settings["rank"], bool(settings["ffn"]), settings["top"])
    states = lower_states(model, tokens)
    log("texts", len(unique), "fit turns", len(fit), "scored rows (fold", scored, ")", len(held), settings)
    head = fine_tune(model, [states[slot[texts[i]]] for i in fit], labels[fit], settings)
    p_held = predict(model, head, [states[slot[texts[i]]] for i in held])
    log("fold", scored, "per-turn wF1, fine-tuned head:", round(100 * wf1(labels[held], p_held), 1))
    if inner is not None:
        frozen = frozen_reading(fit, held, labels)
        log("fold", scored, "per-turn wF1, frozen MiniLM + logistic regression (C 0.02):", round(100 * frozen, 1))
        return
    proba = np.zeros((len(texts), len(NAMES)))
    proba[held] = p_held
    with os.fdopen(os.open(proba_path(k), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        np.save(handle, proba)  # private, as every file mesa writes
    write_adapter(model, settings["rank"], bool(settings["ffn"]), settings["top"], k)


def training_turns(labels: np.ndarray, fold: np.ndarray, turn: list, left_out: set[int]) -> np.ndarray:
    """One row per labelled user turn of the training folds (a turn repeats across windows: keep its first row)."""
    first: dict = {}
    for i, t in enumerate(turn):
        if fold[i] not in left_out and labels[i]:
            first.setdefault(t, i)
    return np.array(sorted(first.values()))


def fine_tune(model, states: list, labels: np.ndarray, settings: dict):
    """LoRA + a softmax head, class-weighted cross-entropy, one-cycle AdamW; returns the head (logits of an
    embedding)."""
    import torch

    y = torch.tensor([NAMES.index(label) for label in labels])
    counts = np.bincount(y.numpy(), minlength=len(NAMES))
    weight = torch.tensor(len(y) / (len(NAMES) * np.maximum(counts, 1)), dtype=torch.float32)
    linear = torch.nn.Linear(384, len(NAMES))

    def head(emb):  # unit-length embeddings: scaled (cosine-classifier style) to reach confident logits
        return linear(emb * 20.0)

    rates = [settings["lr"], settings["head_lr"]]
    optimiser = torch.optim.AdamW(
        [{"params": model.lora.parameters(), "lr": rates[0]}, {"params": linear.parameters(), "lr": rates[1]}],
        weight_decay=0.01,
    )
    steps = settings["epochs"] * math.ceil(len(y) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=rates, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(SEED)
    lengths = [len(s) for s in states]
    for epoch in range(settings["epochs"]):
        started, total = time.time(), 0.0
        for chosen in batches(np.arange(len(y)), lengths, rng):
            loss = torch.nn.functional.cross_entropy(
                head(upper_batch(model, [states[j] for j in chosen])), y[chosen], weight=weight
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(chosen)
        log(f"epoch {epoch + 1}: {time.time() - started:.0f} s, train loss {total / len(y):.3f}")
    return head


def frozen_reading(fit: np.ndarray, held: np.ndarray, labels: np.ndarray) -> float:
    """The reference on the same split: logistic regression on the frozen message embedding (features columns 0:384,
    as ``user_emotion_filter_cv.py oof 0.02 0:384``)."""
    from sklearn.linear_model import LogisticRegression

    x = load()["x"][:, :384]
    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)
    model = LogisticRegression(C=0.02, class_weight="balanced", max_iter=300).fit(z[fit], labels[fit])
    out = np.zeros((len(held), len(NAMES)))
    out[:, [NAMES.index(c) for c in model.classes_]] = model.predict_proba(z[held])
    return wf1(labels[held], out)


def write_adapter(model, rank: int, ffn: bool, top: int, k: int) -> None:
    from safetensors.numpy import load_file

    base = load_file(str(default_model_dir() / "model.safetensors"))
    targets = lora_targets(ffn, top)
    lora = {
        n: (model.lora[n.replace(".", "_")].A.detach().numpy(), model.lora[n.replace(".", "_")].B.detach().numpy())
        for n in targets
    }
    digest = save_adapter(
        adapter_path(k),
        lora,
        LORA_SCALE,
        adapter_base_digest(base, targets),
        f"user emotion, MESC train folds != {k}, rank {rank}, top {top}, ffn {ffn}",
    )
    log("adapter", adapter_path(k), digest)


def compare_oof(k: int) -> None:
    """Today's default combination on fold k, with the frozen per-turn head (oof 0.002) vs the fine-tuned head."""
    f = load()
    ph = px = np.load(f"{SCRATCH}-oof-1.0-tfidf.npy")
    folds, ex_fold, last_row, y = scored_examples(f)
    transition, start = fold_transitions(f, folds, k)
    m = ex_fold == k
    before = predictive(ph, f["seq"][m], transition, start, 0.5)
    prior = np.array([np.mean(y[~m] == n) for n in NAMES])
    if len(np.load(proba_path(k))) != len(f["gold"]):
        raise SystemExit("the features scratch file is from other data: rerun user_emotion_filter_cv.py features")
    for name, pt in (
        ("frozen head (oof 0.002)", np.load(f"{SCRATCH}-oof-0.002.npy")),
        ("fine-tuned", np.load(proba_path(k))),
    ):
        alone = wf1(y[m], pt[last_row][m])
        combined = wf1(y[m], before * pt[last_row][m] * np.sqrt(px[last_row][m]) * prior**-0.25)
        print(f"fold {k} {name}: turn alone {100 * alone:.1f}, default combination {100 * combined:.1f}", flush=True)
    # both readings of the turn together (the fine-tuned head does not see the label history the frozen head reads)
    both = np.load(f"{SCRATCH}-oof-0.002.npy")[last_row][m] * np.load(proba_path(k))[last_row][m]
    print(
        f"fold {k} frozen x fine-tuned: {100 * wf1(y[m], before * both * np.sqrt(px[last_row][m]) * prior**-0.25):.1f}"
    )


def holdout(data: str, k: int) -> None:
    """The real training with the adapted encoder as its embedder, scored live on fold k."""
    from mesa.eval import SupervisedClassifier
    from mesa.eval.embeddings import Embedder
    from mesa.eval.report import score_run
    from mesa.eval.runner import ClassifierPredictor, run_predictor
    from mesa.safety.minilm import MiniLM
    from mesa.taxonomy import MESC

    encoder = MiniLM(adapter=str(adapter_path(k)))
    embedder = Embedder(_Encoder(encoder), model_id=encoder.identity)  # cached under the adapter's digest
    examples = load_mesc(data, "train")
    folds = fold_of(np.array([e.dialogue_id for e in examples]))
    fit = [e for e in examples if folds[e.dialogue_id] != k]
    held = [e for e in examples if folds[e.dialogue_id] == k]
    clf = SupervisedClassifier.train(
        fit, MESC, embedder=embedder, c_grid=(0.0005, 0.002, 0.02), weight_powers=(1.0,), user_context="filter"
    )
    log("trained with", encoder.identity)
    row = score_run(run_predictor(ClassifierPredictor(clf), held, progress=False, history="predicted"), held, MESC)
    figures = {w: round(100 * row[w]["weighted_f1"], 1) for w in ("user_emotion", "strategy") if w in row}
    print("fine-tuned encoder, fold", k, "predicted history, weighted F1:", figures, flush=True)


class _Encoder:
    """numpy MiniLM behind the ``encode(texts, batch_size=..., ...)`` call :class:`Embedder` makes."""

    def __init__(self, minilm) -> None:
        self.minilm = minilm

    def encode(self, texts, batch_size=32, **_ignored):
        return self.minilm.encode(list(texts), batch_size=batch_size)


if __name__ == "__main__":
    data, mode, fold_k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    assert 0 <= fold_k < FOLDS
    if mode == "train":
        train(data, fold_k, parse_settings(sys.argv[4:]))
    elif mode == "tune":  # tune K V key=value...: fold K left out entirely, fit on the rest but V, read V
        train(data, fold_k, parse_settings(sys.argv[5:]), inner=int(sys.argv[4]))
    elif mode == "oof":
        compare_oof(fold_k)
    elif mode == "holdout":
        holdout(data, fold_k)
