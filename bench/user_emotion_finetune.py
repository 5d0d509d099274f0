"""Screening: does fine-tuning MiniLM for the user's emotion beat the frozen encoder? MESC TRAIN only (grouped folds).

The split is ``bench/user_emotion_filter_cv.py``'s (4 folds of dialogues, seed 1): the encoder is fine-tuned on the
user turns of every fold but K and read on fold K. Val is never read. Two ways the fine-tuned encoder is plugged in,
each scored on fold K against the same computation with the frozen encoder:

* ``oof``: its own softmax head's probabilities replace the per-turn head's reading of the current turn in today's
  default combination (TF-IDF filter over the earlier turns, tau 0.5) x turn reading x TF-IDF reading^0.5 x training
  label shares^-0.25, the ``prior`` mode of user_emotion_filter_cv.py);
* ``holdout``: its adapter merged into numpy MiniLM (``mesa.safety.minilm.MiniLM(adapter=...)``) becomes the embedder
  of the real training (``SupervisedClassifier.train`` on the other folds, the same settings as ``holdout filter K``),
  scored live (predicted history) on fold K.

Usage (after ``user_emotion_filter_cv.py DATA features`` and ``oof 0.002`` and ``oof-tfidf 1.0``, which write the
scratch files in /tmp that the ``oof`` comparison reads)::

    nice python bench/user_emotion_finetune.py DATA/mesc train 0 [EPOCHS [RANK [TOP [FFN]]]]   # LoRA, fold 0 held out
    nice python bench/user_emotion_finetune.py DATA/mesc oof 0          # the combination, fine-tuned vs frozen head
    MESA_CACHE_DIR=<cache> nice python bench/user_emotion_finetune.py DATA/mesc holdout 0   # the real training

Defaults: 2 epochs (fixed before any fold-K figure was seen), LoRA rank 8 on query/value of the top 2 layers,
class-weighted cross-entropy, AdamW (LoRA 1e-3, head 1e-2), batches of 32. The frozen lower layers run once per
text (cached); each epoch runs only the top layers. Torch threads: 1 (the machine is shared). Seeded.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train_safety_classifier import LORA_SCALE, build_model, lora_targets, padded
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
    import torch

    length = max(len(s) for s in states)
    x = torch.zeros((len(states), length, 384))
    mask = torch.zeros((len(states), length))
    for row, state in enumerate(states):
        x[row, : len(state)] = state.float()
        mask[row, : len(state)] = 1.0
    return model.upper(x, mask)


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


def train(data: str, k: int, epochs: int = 2, rank: int = 8, top: int = 2, ffn: bool = False) -> None:
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    texts, labels, fold, turn = turn_rows(data)
    # one training example per user turn of the training folds (a turn repeats across windows)
    first = {}
    for i, t in enumerate(turn):
        if fold[i] != k and labels[i]:
            first.setdefault(t, i)
    fit = np.array(sorted(first.values()))
    held = np.flatnonzero(fold == k)
    unique = sorted({texts[i] for i in np.concatenate([fit, held])})
    slot = {text: j for j, text in enumerate(unique)}
    tokens = tokenised(unique)
    model = build_model(rank, ffn, top)
    states = lower_states(model, tokens)
    log("texts", len(unique), "fit turns", len(fit), "held rows", len(held), "lower layers cached")
    y = torch.tensor([NAMES.index(label) for label in labels[fit]])
    counts = np.bincount(y.numpy(), minlength=len(NAMES))
    weight = torch.tensor(len(y) / (len(NAMES) * np.maximum(counts, 1)), dtype=torch.float32)
    head = torch.nn.Linear(384, len(NAMES))
    # unit-length embeddings: a scaled head (cosine-classifier style) reaches confident logits quickly
    scaled = lambda emb: head(emb * 20.0)
    optimiser = torch.optim.AdamW(
        [{"params": model.lora.parameters(), "lr": 1e-3}, {"params": head.parameters(), "lr": 1e-2}], weight_decay=0.01
    )
    rng = np.random.default_rng(SEED)
    lengths = [len(tokens[slot[texts[i]]]) for i in fit]
    steps = epochs * math.ceil(len(fit) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[1e-3, 1e-2], total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        started = time.time()
        total = 0.0
        for chosen in batches(np.arange(len(fit)), lengths, rng):
            emb = upper_batch(model, [states[slot[texts[fit[j]]]] for j in chosen])
            loss = torch.nn.functional.cross_entropy(scaled(emb), y[chosen], weight=weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss) * len(chosen)
        log(f"epoch {epoch + 1}: {time.time() - started:.0f} s, train loss {total / len(fit):.3f}")
    p_held = predict(model, scaled, [states[slot[texts[i]]] for i in held])
    proba = np.zeros((len(texts), len(NAMES)))
    proba[held] = p_held
    np.save(proba_path(k), proba)
    log("fold", k, "per-turn wF1 of the fine-tuned head (rows of fold k):", round(100 * wf1(labels[held], p_held), 1))
    write_adapter(model, rank, ffn, top, k)


def write_adapter(model, rank: int, ffn: bool, top: int, k: int) -> None:
    from safetensors.numpy import load_file

    base = load_file(str(default_model_dir() / "model.safetensors"))
    targets = lora_targets(ffn, top)
    lora = {n: (model.lora[n.replace(".", "_")].A.detach().numpy(), model.lora[n.replace(".", "_")].B.detach().numpy())
            for n in targets}
    digest = save_adapter(adapter_path(k), lora, LORA_SCALE, adapter_base_digest(base, targets),
                          f"user emotion, MESC train folds != {k}, rank {rank}, top {top}, ffn {ffn}")
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
    for name, pt in (("frozen head (oof 0.002)", np.load(f"{SCRATCH}-oof-0.002.npy")), ("fine-tuned", np.load(proba_path(k)))):
        alone = wf1(y[m], pt[last_row][m])
        combined = wf1(y[m], before * pt[last_row][m] * np.sqrt(px[last_row][m]) * prior**-0.25)
        print(f"fold {k} {name}: turn alone {100 * alone:.1f}, default combination {100 * combined:.1f}", flush=True)
    # both readings of the turn together (the fine-tuned head does not see the label history the frozen head reads)
    both = np.load(f"{SCRATCH}-oof-0.002.npy")[last_row][m] * np.load(proba_path(k))[last_row][m]
    print(f"fold {k} frozen x fine-tuned: {100 * wf1(y[m], before * both * np.sqrt(px[last_row][m]) * prior**-0.25):.1f}")


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
        extra = sys.argv[4:]
        train(data, fold_k, *(int(v) for v in extra[:3]), *(v == "ffn" for v in extra[3:4]))
    elif mode == "oof":
        compare_oof(fold_k)
    elif mode == "holdout":
        holdout(data, fold_k)
