"""Train the safety layer's classifier: a LoRA adapter on MiniLM plus risk and category heads, numpy at inference.

Writes ``mesa/safety/data/adapter.npz`` (the low-rank adaptation of MiniLM's attention query/value, and with
``--ffn`` its feed-forward layers) and ``mesa/safety/data/classifier.npz`` (the heads and thresholds). At load the
layer merges ``W + B @ A * scale`` into the numpy MiniLM weights once (:mod:`mesa.safety.minilm`), so a turn costs
what it cost with the frozen encoder and needs numpy only; the adapter records a digest of the base weights it was
trained on, so a different base model fails loudly instead of drifting.

Data (never ``tests/safety_batches/valid.jsonl``, which stays for validation):

- every ``tests/safety_batches/train_*.jsonl`` (risk, hard negatives, near-miss contrast pairs, buried variants)
  and ``tune.jsonl``;
- the exemplar bank ``mesa/safety/data/exemplars.json`` (risk per category, safe kinds);
- a seeded sample of MESC **train** client turns as real non-crisis talk (``split == train``, ``Speaker == Client``;
  the val split is the false-alarm test of ``bench/safety_bench.py``).

Model: a message is cut into the windows the layer reads (:func:`mesa.safety.semantic.windows`); each window is
embedded by MiniLM (mean-pooled, L2-normalised, exactly as at inference); a linear risk head scores each window and
the message's score is the maximum over its windows (so a risk message's label belongs to its riskiest window and
a buried sentence counts), trained with class-weighted binary cross-entropy on that maximum; a category head
(softmax over suicide, self-harm, harm to others, abuse) reads the riskiest window of each risk message.
``--rank 0`` trains the heads alone on the frozen encoder (the baseline the adapter must beat).

Model choice and thresholds come from grouped 5-fold cross-validation (a buried variant, and the two halves of a
contrast pair, sit in the fold of their source): the out-of-fold scores OR'd with the rules give the thresholds:
the lowest ``elevated`` threshold with hard negatives <= 4 % and the MESC train sample <= 1 % escalated (margin
under the issue's 5 % for unseen data); the ``ask`` threshold (LLM judgement asked) the lowest with <= 5 % of the
MESC sample asking.

The shipped classifier: ``--rank 0 --top 0 --hidden 64 --nearest`` (frozen MiniLM, an MLP risk head of 64 ReLU
units, the nearest-exemplar rule beside it; no adapter). Compared on the first grouped fold of the 5,507 messages
available then, the adapter (``--rank 8 --top 2``, 2 epochs) did not beat the frozen encoder, and the MLP head did
beat a linear one; the full 5-fold CV on 6,812 messages gave the thresholds (docs/safety.md, "Measured").

Reproducible: seeded (torch, numpy, the MESC sample, the folds), two torch threads; run it under ``nice``. On this
2-core machine shared with other work (load average 10): the MiniLM pass over every window took about 5 minutes
(kept with ``--cache`` for the next run, which then embeds only new windows); with it cached, the shipped
configuration's 5-fold CV and final fit took about 18 minutes (two configurations running side by side). One LoRA
epoch (top 2 layers) took about 6 minutes, so a 5-fold LoRA CV does not fit a 10-minute budget here.
Needs torch (CPU build) and the ``safety`` extra; inference needs numpy only. Usage::

    nice python bench/train_safety_classifier.py /work/shared/data/mesc/mesc_train_val.csv --rank 0 --top 0 --hidden 64 --nearest --cache /tmp/win.npz
    nice python bench/train_safety_classifier.py data.csv --dry-run          # CV figures only, nothing written
    nice python bench/train_safety_classifier.py data.csv --rank 8 --top 2 --epochs 2 --folds-run 1 --dry-run  # LoRA
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
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
from mesa.safety.minilm import MAX_TOKENS, adapter_base_digest, default_model_dir, save_adapter
from mesa.safety.semantic import _choose, save_classifier, windows

SEED = 20261129
CATEGORIES = ["suicide", "self_harm", "harm_to_others", "abuse"]
CATEGORY_OF = {
    # the v3 batches name the kind of implicit risk as their category; the layer reports the risk category
    "means": "suicide", "preparation": "suicide", "passive": "suicide", "evasion": "suicide",
    "self_harm_own_words": "self_harm", "others_means": "harm_to_others",
}
MESC_SAMPLE = 3000
DATA = ROOT / "mesa" / "safety" / "data"
LORA_SCALE = 2.0
"""alpha / rank of the adapter (alpha = 2 * rank); the same factor is written into adapter.npz for the merge."""
HARD_NEGATIVE_LIMIT = 0.04
MESC_LIMIT = 0.01
ASK_LIMIT = 0.05


# -- data ------------------------------------------------------------------------------------------------------


def training_rows(batches: Path, mesc_csv: Path, mesc_fit: int) -> list[dict]:
    """Every message as ``{text, risk, category, kind, group, fit}`` (group: the CV fold unit; ``fit``: trained on,
    else only scored for calibration: everyday MESC talk is easy, the first ``mesc_fit`` of the sample suffice)."""
    own = [r for f in sorted(batches.glob("train_*.jsonl")) for r in load_batch(f)] + load_batch(batches / "tune.jsonl")
    sources = [r["text"] for r in own if r.get("augment") != "buried"]
    rows: list[dict] = []
    for r in own:
        risk = r["expect"] == "escalate"
        rows.append({"text": r["text"], "risk": risk, "kind": r["kind"], "group": _group(r, sources),
                     "category": CATEGORY_OF.get(r["category"], r["category"]) if risk else "none"})
    unknown = {r["category"] for r in rows if r["risk"] and r["category"] not in CATEGORIES}
    if unknown:
        raise SystemExit(f"risk categories the heads do not know (add them to CATEGORY_OF): {sorted(unknown)}")
    bank = json.loads((DATA / "exemplars.json").read_text(encoding="utf-8"))
    for category, kinds in bank["risk"].items():
        for texts in kinds.values():
            rows += [{"text": t, "risk": True, "category": category, "kind": "bank", "group": t} for t in texts]
    for texts in bank["safe"].values():
        rows += [{"text": t, "risk": False, "category": "none", "kind": "bank_safe", "group": t} for t in texts]
    for n, t in enumerate(mesc_sample(mesc_csv)):
        rows.append({"text": t, "risk": False, "category": "none", "kind": "mesc", "group": t, "fit": n < mesc_fit})
    return rows


def _group(row: dict, sources: list[str]) -> str:
    """The CV unit: a contrast pair's id (``train_v3_contrast.jsonl`` keeps it in ``subkind``), a buried variant's
    source message, else the message itself."""
    if str(row.get("subkind", "")).startswith("pair_"):
        return f"pair:{row['subkind']}"
    if row.get("augment") == "buried":
        return next((s for s in sources if s in row["text"]), row["text"])
    return row["text"]


def mesc_sample(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        turns = [r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == "train" and r["Speaker"] == "Client"]
    turns = sorted({t for t in turns if t})
    return random.Random(SEED).sample(turns, min(MESC_SAMPLE, len(turns)))


def tokenised_windows(rows: list[dict]) -> list[list[list[int]]]:
    """Per message, the token ids of the windows the layer reads (at least one window)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    out = []
    for row in rows:
        parts = _choose(windows(row["text"])) or [row["text"]]
        out.append([e.ids for e in tokenizer.encode_batch(parts)])
    return out


def folds_of(rows: list[dict], folds: int) -> np.ndarray:
    groups = sorted({r["group"] for r in rows})
    random.Random(SEED).shuffle(groups)
    fold_of = {g: n % folds for n, g in enumerate(groups)}
    return np.array([fold_of[r["group"]] for r in rows])


# -- the model (torch, training only) ------------------------------------------------------------------------------


def build_model(rank: int, ffn: bool, top: int, hidden: int = 0):
    """MiniLM in torch, the same computation as :class:`mesa.safety.minilm.MiniLM`, with LoRA on its top layers.

    ``lower`` runs the frozen layers (its output is computed once per window and cached), ``upper`` the ``top``
    adapted ones, the pooling and nothing else: on a 2-core CPU a full backward pass per step would not fit the
    time budget."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    base = {k: v.float() for k, v in load_file(str(default_model_dir() / "model.safetensors")).items()}
    targets = lora_targets(ffn, top) if rank else []

    class LoRA(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            out_dim, in_dim = base[name + ".weight"].shape
            self.A = nn.Parameter(torch.randn(rank, in_dim) / math.sqrt(in_dim))
            self.B = nn.Parameter(torch.zeros(out_dim, rank))  # zero: training starts from the base model exactly

        def forward(self, x):
            return (x @ self.A.T) @ self.B.T * LORA_SCALE

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lora = nn.ModuleDict({n.replace(".", "_"): LoRA(n) for n in targets})
            if hidden:  # a small MLP risk head (numpy at inference: two products and a ReLU)
                self.risk = nn.Sequential(nn.Linear(384, hidden), nn.ReLU(), nn.Linear(hidden, 1))
            else:
                self.risk = nn.Linear(384, 1)
                nn.init.zeros_(self.risk.weight)
            self.category = nn.Linear(384, len(CATEGORIES))
            nn.init.zeros_(self.category.weight)

        def dense(self, x, name):
            y = x @ base[name + ".weight"].T + base[name + ".bias"]
            key = name.replace(".", "_")
            return y + self.lora[key](x) if key in self.lora else y

        def embed(self, ids, mask):
            return self.upper(self.lower(ids, mask), mask)

        def lower(self, ids, mask):
            x = base["embeddings.word_embeddings.weight"][ids] + base["embeddings.position_embeddings.weight"][: ids.shape[1]]
            x = _ln(x + base["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]
            for i in range(6 - top):
                x = self.layer(x, bias, f"encoder.layer.{i}")
            return x

        def upper(self, x, mask):
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]
            for i in range(6 - top, 6):
                x = self.layer(x, bias, f"encoder.layer.{i}")
            pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=1, eps=1e-12)

        def layer(self, x, bias, p):
            b, n, _ = x.shape
            split = lambda t: t.view(b, n, 12, 32).transpose(1, 2)
            q, k, v = (split(self.dense(x, f"{p}.attention.self.{w}")) for w in ("query", "key", "value"))
            attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(32) + bias, dim=-1)
            context = (attn @ v).transpose(1, 2).reshape(b, n, 384)
            x = _ln(self.dense(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            inner = torch.nn.functional.gelu(self.dense(x, f"{p}.intermediate.dense"))
            return _ln(self.dense(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")

    def _ln(x, name):
        return torch.nn.functional.layer_norm(x, (384,), base[name + ".weight"], base[name + ".bias"], eps=1e-12)

    return Encoder()


def lora_targets(ffn: bool, top: int) -> list[str]:
    names = ["attention.self.query", "attention.self.value"] + (["intermediate.dense", "output.dense"] if ffn else [])
    return [f"encoder.layer.{i}.{n}" for i in range(6 - top, 6) for n in names]


def padded(token_lists: list[list[int]]):
    import torch

    length = max(len(t) for t in token_lists)
    ids = torch.zeros((len(token_lists), length), dtype=torch.long)
    mask = torch.zeros((len(token_lists), length))
    for row, tokens in enumerate(token_lists):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1.0
    return ids, mask


def padded_states(states: list):
    """Cached lower-layer states (one ``(tokens, 384)`` tensor per window) padded into a batch, with the mask."""
    import torch

    length = max(len(s) for s in states)
    x = torch.zeros((len(states), length, 384))
    mask = torch.zeros((len(states), length))
    for row, state in enumerate(states):
        x[row, : len(state)] = state.float()
        mask[row, : len(state)] = 1.0
    return x, mask


class LowerCache:
    """The frozen layers' output per distinct window (float16), computed once; kept in an npz between runs."""

    def __init__(self, path: Path | None, top: int) -> None:
        self.path, self.top, self.states, self.pooled = path, top, {}, {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as data:
                if int(data["top"]) == top:
                    import torch

                    flat = torch.from_numpy(data["flat"])
                    for key, start, length in zip(data["keys"], data["starts"], data["lengths"], strict=True):
                        self.states[str(key)] = flat[start : start + length]

    @staticmethod
    def key(tokens: list[int]) -> str:
        return hashlib.sha1(np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()

    def fill(self, model, windows_of) -> None:
        import torch

        todo = {self.key(w): w for ws in windows_of for w in ws}
        todo = [w for k, w in todo.items() if k not in self.states]
        todo.sort(key=len)
        print(f"  lower layers: {len(todo)} new windows to run", file=sys.stderr, flush=True)
        with torch.no_grad():
            for start in range(0, len(todo), 64):
                chosen = todo[start : start + 64]
                ids, mask = padded(chosen)
                states = model.lower(ids, mask).half()
                for row, tokens in enumerate(chosen):
                    self.states[self.key(tokens)] = states[row, : len(tokens)].clone()
        if self.path is not None and todo:
            self.save()

    def save(self) -> None:
        keys = sorted(self.states)
        lengths = np.array([len(self.states[k]) for k in keys])
        flat = np.concatenate([self.states[k].numpy() for k in keys])
        np.savez(self.path, keys=np.array(keys), lengths=lengths, starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
                 flat=flat, top=np.array(self.top))

    def get(self, window_lists: list[list[int]]) -> list:
        return [self.states[self.key(w)] for w in window_lists]


def window_embeddings(model, cache: LowerCache, windows_of: list[list[list[int]]], batch: int = 64):
    """Every window's embedding, message after message (no gradient), as one tensor and the count per message."""
    import torch

    flat = [w for ws in windows_of for w in ws]
    if not model.lora:  # the frozen encoder: every window's embedding computed once, for every fold
        missing = [w for w in flat if cache.key(w) not in cache.pooled]
        if missing:
            embeddings, _ = _upper_pass(model, cache, missing, batch)
            cache.pooled.update({cache.key(w): e for w, e in zip(missing, embeddings, strict=True)})
        return torch.stack([cache.pooled[cache.key(w)] for w in flat]), [len(ws) for ws in windows_of]
    return _upper_pass(model, cache, flat, batch)[0], [len(ws) for ws in windows_of]


def _upper_pass(model, cache: LowerCache, flat: list[list[int]], batch: int):
    import torch

    order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
    out = torch.zeros((len(flat), 384))
    with torch.no_grad():
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            out[chosen] = model.upper(*padded_states(cache.get([flat[i] for i in chosen])))
    return out, None


def message_loss(model, embeddings, counts, labels, categories, pos_weight):
    """Class-weighted BCE on each message's riskiest window + category cross-entropy on risk messages' riskiest window."""
    import torch

    logits = model.risk(embeddings).squeeze(1)
    index, padding = _window_index(counts)
    per_message = logits[index].masked_fill(padding, float("-inf"))  # (messages, most windows)
    best, riskiest = per_message.max(dim=1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(best, labels, pos_weight=pos_weight)
    risky = labels > 0.5
    if risky.any():
        chosen = index[torch.arange(len(counts)), riskiest][risky]
        loss = loss + 0.5 * torch.nn.functional.cross_entropy(model.category(embeddings[chosen]), categories[risky])
    return loss


def _window_index(counts: list[int]):
    """For messages with ``counts`` windows laid end to end: a (messages, most windows) index and its padding mask."""
    import torch

    counts_t = torch.tensor(counts)
    starts = torch.cumsum(counts_t, 0) - counts_t
    offsets = torch.arange(int(counts_t.max()))
    padding = offsets[None, :] >= counts_t[:, None]
    index = (starts[:, None] + offsets[None, :]).masked_fill(padding, 0)
    return index, padding


def train(rows: list[dict], windows_of, cache: LowerCache, index: list[int], args) -> object:
    import torch

    torch.manual_seed(SEED)
    model = build_model(args.rank, args.ffn, args.top, args.hidden)
    labels = torch.tensor([float(rows[i]["risk"]) for i in index])
    categories = torch.tensor([CATEGORIES.index(rows[i]["category"]) if rows[i]["risk"] else 0 for i in index])
    pos_weight = (labels < 0.5).sum() / labels.sum().clamp(min=1.0)
    heads = [*model.risk.parameters(), *model.category.parameters()]
    groups = [{"params": heads, "lr": args.head_lr, "weight_decay": 0.0}]
    if args.rank:
        groups.append({"params": list(model.lora.parameters()), "lr": args.lora_lr, "weight_decay": 0.01})
    optimiser = torch.optim.AdamW(groups)
    frozen = None if args.rank else window_embeddings(model, cache, [windows_of[i] for i in index])
    epochs = args.epochs if args.rank else args.epochs * 4  # heads alone are cheap: give them more passes
    rng = random.Random(SEED)
    steps = epochs * math.ceil(len(index) / args.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        order = list(range(len(index)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), args.batch):
            chosen = order[start : start + args.batch]
            if frozen is None:
                token_lists = [w for j in chosen for w in windows_of[index[j]]]
                embeddings = model.upper(*padded_states(cache.get(token_lists)))
                counts = [len(windows_of[index[j]]) for j in chosen]
            else:
                embeddings, counts = _frozen_rows(frozen, chosen)
            loss = message_loss(model, embeddings, counts, labels[chosen], categories[chosen], pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            total += float(loss.detach()) * len(chosen)
        if args.rank or epoch == epochs - 1:
            print(f"    epoch {epoch + 1}/{epochs} loss {total / len(index):.4f}", file=sys.stderr, flush=True)
    return model


def _frozen_rows(frozen, chosen: list[int]):
    import torch

    flat, counts = frozen
    starts = np.concatenate([[0], np.cumsum(counts)])
    picked = [torch.arange(starts[j], starts[j + 1]) for j in chosen]
    return flat[torch.cat(picked)], [counts[j] for j in chosen]


def message_scores(model, cache: LowerCache, windows_of, index: list[int]) -> np.ndarray:
    """Each message's probability of risk: the maximum over its windows (as the layer computes it)."""
    import torch

    flat, counts = window_embeddings(model, cache, [windows_of[i] for i in index])
    with torch.no_grad():
        probabilities = torch.sigmoid(model.risk(flat).squeeze(1)).numpy()
    return np.array([p.max() for p in np.split(probabilities, np.cumsum(counts)[:-1])])


def out_of_fold(rows: list[dict], windows_of, cache: LowerCache, args) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores, and which rows have one (``--folds-run`` runs the first folds only, to save time)."""
    fold = folds_of(rows, args.folds)
    scores = np.zeros(len(rows))
    for k in range(args.folds_run or args.folds):
        started = time.perf_counter()
        train_index = [i for i in range(len(rows)) if fold[i] != k and rows[i].get("fit", True)]
        test_index = [i for i in range(len(rows)) if fold[i] == k]
        model = train(rows, windows_of, cache, train_index, args)
        scores[test_index] = message_scores(model, cache, windows_of, test_index)
        print(f"  fold {k + 1}/{args.folds} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return scores, fold < (args.folds_run or args.folds)


def nearest_rule_hits(rows: list[dict], windows_of, cache: LowerCache) -> np.ndarray:
    """Where the bank's nearest-exemplar rule escalates (frozen encoder only: it reads base MiniLM embeddings, and
    its thresholds were calibrated on them); bank rows are its own exemplars, so False."""
    from mesa.safety.semantic import SemanticLayer

    layer = SemanticLayer(encoder=_NoEncoder(), classifier=None)  # the packaged base-model bank embeddings
    flat, counts = window_embeddings(build_model(0, False, cache.top), cache, windows_of)
    sims = flat.numpy() @ layer.matrix.T
    risk = sims[:, : layer.n_risk].max(1)
    hit = (risk >= layer.risk_threshold) & (risk - sims[:, layer.n_risk :].max(1) >= layer.margin)
    per_message = np.array([h.any() for h in np.split(hit, np.cumsum(counts)[:-1])])
    return per_message & np.array([r["kind"] not in ("bank", "bank_safe") for r in rows])


class _NoEncoder:
    identity = "all-MiniLM-L6-v2"

    def encode(self, texts):
        raise RuntimeError("the packaged base-model bank embeddings are missing: run bench/safety_bench.py --rebuild-bank")


# -- calibration and figures -----------------------------------------------------------------------------------


def rate(hit: np.ndarray, mask: np.ndarray) -> float:
    return float(hit[mask].mean()) if mask.any() else float("nan")


def calibrate(rows: list[dict], scores: np.ndarray, rules: np.ndarray) -> tuple[float, float]:
    own_negative = np.array([r["kind"] == "hard_negative" for r in rows])
    mesc = np.array([r["kind"] == "mesc" for r in rows])
    elevated = ask = None
    # every score seen is a candidate (a fixed grid stops short when the limit needs a threshold above 0.999)
    for t in np.unique(np.concatenate([np.arange(0.05, 1.0, 0.001), scores[scores >= 0.05]])):
        hit = rules | (scores >= t)
        if elevated is None and rate(hit, own_negative) <= HARD_NEGATIVE_LIMIT and rate(hit, mesc) <= MESC_LIMIT:
            elevated = float(t)
        if ask is None and rate(scores >= t, mesc) <= ASK_LIMIT:
            ask = float(t)
    elevated = elevated if elevated is not None else 1.0
    ask = min(ask if ask is not None else elevated, elevated)
    print(f"\ncalibrated: elevated >= {elevated:.6f}, ask the LLM >= {ask:.6f}")
    report(rows, scores, rules, elevated)
    return elevated, ask


def report(rows: list[dict], scores: np.ndarray, rules: np.ndarray, t: float) -> None:
    hit = rules | (scores >= t)
    risky = np.array([r["risk"] for r in rows])
    print("  out-of-fold figures (classifier OR the rules; each message scored by a model that never saw its group):")
    own = np.array([r["kind"] in ("explicit", "implicit", "hard_negative") for r in rows])
    for kind in ("explicit", "implicit", "hard_negative"):
        mask = np.array([r["kind"] == kind for r in rows])
        label = "escalated" if kind == "hard_negative" else "recall"
        print(f"  own batches {kind:<14} {label} {100 * rate(hit, mask):5.1f} %  (n={mask.sum()}; rules alone {100 * rate(rules, mask):5.1f} %)")
        for category in sorted({r["category"] for r in rows if r["kind"] == kind and r["risk"]}):
            sub = mask & np.array([r["category"] == category for r in rows])
            print(f"      {category:<16} {100 * rate(hit, sub):5.1f} %  (n={sub.sum()})")
    for kind in ("bank", "bank_safe", "mesc"):
        mask = np.array([r["kind"] == kind for r in rows])
        print(f"  {kind:<24} escalated {100 * rate(hit, mask):5.2f} %  (n={mask.sum()})")
    print(f"  all own risk messages recall {100 * rate(hit, own & risky):.1f} %")


# -- export ----------------------------------------------------------------------------------------------------


def export(model, args, elevated: float, ask: float, n_rows: int) -> None:
    from safetensors.numpy import load_file

    how = (f"bench/train_safety_classifier.py (seed {SEED}, rank {args.rank}, top {args.top}, ffn {args.ffn}, "
           f"hidden {args.hidden}, nearest rule {args.nearest}, {args.epochs} epochs): "
           f"{n_rows} messages, thresholds from {args.folds}-fold grouped out-of-fold scores OR'd with the rules: "
           f"hard negatives <= {HARD_NEGATIVE_LIMIT:.0%}, MESC train sample <= {MESC_LIMIT:.0%}, ask <= {ASK_LIMIT:.0%}")
    adapter_digest = ""
    if args.rank:
        base = load_file(str(default_model_dir() / "model.safetensors"))
        targets = lora_targets(args.ffn, args.top)
        lora = {name: (model.lora[name.replace(".", "_")].A.detach().numpy(), model.lora[name.replace(".", "_")].B.detach().numpy())
                for name in targets}
        adapter_digest = save_adapter(args.out / "adapter.npz", lora, scale=LORA_SCALE, base_digest=adapter_base_digest(base, targets), how=how)
        print(f"wrote {args.out / 'adapter.npz'}")
    output, hidden = (model.risk[2], model.risk[0]) if args.hidden else (model.risk, None)
    save_classifier(args.out / "classifier.npz", output.weight.detach().numpy()[0], float(output.bias.detach()[0]),
                    model.category.weight.detach().numpy(), model.category.bias.detach().numpy(), CATEGORIES,
                    elevated, ask, how, adapter=adapter_digest, nearest_rule=args.nearest,
                    hidden=None if hidden is None else (hidden.weight.detach().numpy(), hidden.bias.detach().numpy()))
    print(f"wrote {args.out / 'classifier.npz'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mesc_csv", type=Path, help="MESC mesc_train_val.csv (its train split gives real non-crisis turns)")
    ap.add_argument("--batches", type=Path, default=ROOT / "tests" / "safety_batches")
    ap.add_argument("--rank", type=int, default=8, help="LoRA rank (0: the frozen encoder, heads only)")
    ap.add_argument("--ffn", action="store_true", help="also adapt the feed-forward layers (else query/value only)")
    ap.add_argument("--top", type=int, default=2, help="adapt the top N of the 6 layers (the others are frozen, cached)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the frozen layers' output in this npz between runs")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=0, help="an MLP risk head with this many hidden units (0: linear)")
    ap.add_argument("--batch", type=int, default=32, help="messages per step")
    ap.add_argument("--lora-lr", type=float, default=1e-3)
    ap.add_argument("--head-lr", type=float, default=1e-2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--nearest", action="store_true", help="keep the nearest-exemplar rule beside it (--rank 0 only)")
    ap.add_argument("--folds-run", type=int, default=0, help="run only the first N folds (figures on their rows)")
    ap.add_argument("--mesc-fit", type=int, default=1000, help="MESC sample turns trained on (all are scored)")
    ap.add_argument("--out", type=Path, default=DATA, help="folder for classifier.npz (and adapter.npz)")
    ap.add_argument("--dry-run", action="store_true", help="print the CV figures, write nothing")
    ap.add_argument("--no-cv", action="store_true", help="skip CV (thresholds from --elevated/--ask)")
    ap.add_argument("--elevated", type=float, default=0.5)
    ap.add_argument("--ask", type=float, default=0.3)
    args = ap.parse_args(argv)
    if args.nearest and args.rank:
        ap.error("--nearest reads base-model embeddings: only with --rank 0")
    import torch

    torch.set_num_threads(2)
    random.seed(SEED)
    np.random.seed(SEED)
    start = time.perf_counter()
    rows = training_rows(args.batches, args.mesc_csv, args.mesc_fit)
    print(f"{len(rows)} training messages ({sum(r['risk'] for r in rows)} risk); rank {args.rank}, ffn {args.ffn}")
    windows_of = tokenised_windows(rows)
    cache = LowerCache(args.cache, args.top)
    cache.fill(build_model(0, False, args.top), windows_of)
    policy = SafetyPolicy(semantic=False)
    rules = np.array([policy.assess_rules(r["text"]).crisis for r in rows])
    elevated, ask = args.elevated, args.ask
    if not args.no_cv:
        scores, scored = out_of_fold(rows, windows_of, cache, args)
        if args.nearest:
            rules = rules | nearest_rule_hits(rows, windows_of, cache)
        held_out = [r for r, s in zip(rows, scored, strict=True) if s]
        print(f"\nthe rules alone ({time.perf_counter() - start:.0f} s so far; {len(held_out)} held-out messages):")
        report(held_out, np.zeros(len(held_out)), rules[scored], 1.0)
        elevated, ask = calibrate(held_out, scores[scored], rules[scored])
    if not args.dry_run:
        model = train(rows, windows_of, cache, [i for i, r in enumerate(rows) if r.get("fit", True)], args)
        export(model, args, elevated, ask, len(rows))
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
