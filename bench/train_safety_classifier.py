"""Train the safety layer's classifier: risk and category heads over MiniLM window embeddings, numpy at inference.

Writes ``mesa/safety/data/classifier.npz`` (the heads and thresholds, plain arrays). With ``--rank 8`` it also
fine-tunes a low-rank adapter of MiniLM's attention query/value (``--ffn``: its feed-forward layers too) and writes
``mesa/safety/data/adapter.npz``; at load the layer merges ``W + B @ A * scale`` into the numpy MiniLM weights once
(:mod:`mesa.safety.minilm`), so a turn costs what it cost with the frozen encoder; the adapter records a digest of the
base weights it was trained on, so a different base model fails loudly instead of drifting.

Data (never ``tests/safety_batches/valid.jsonl``, which stays for validation):

- every ``tests/safety_batches/train_*.jsonl`` (risk, hard negatives, near-miss contrast pairs, buried variants)
  and ``tune.jsonl``;
- the exemplar bank ``mesa/safety/data/exemplars.json`` (risk per category, safe kinds);
- a seeded sample of MESC **train** client turns as real non-crisis talk (``split == train``, ``Speaker == Client``;
  the val split is the false-alarm test of ``bench/safety_bench.py``).

Model: a message is cut into the windows the layer reads (:func:`mesa.safety.semantic.windows`); each window is
embedded by MiniLM (mean-pooled, L2-normalised, exactly as at inference; ``--pool`` adds max-pooled or first-token
features); a risk head scores each window and the message's score is the maximum over its windows (so a risk
message's label belongs to its riskiest window and a buried sentence counts), trained with class-weighted binary
cross-entropy on that maximum; a category head (softmax over suicide, self-harm, harm to others, abuse) reads the
riskiest window of each risk message. The risk head is linear, or an MLP (``--hidden``, ``--layers``), or an ensemble
of such heads trained from different seeds whose probabilities are averaged (``--seeds``). ``--rank 0`` (the default)
trains the heads alone on the frozen encoder, on window features computed once and kept with ``--cache``;
``--rank 8 --top 2`` fine-tunes a LoRA adapter with them (the shipped classifier).

Choosing between variants: **leave one writing round out** (``--holdout-round all``). The training files come from
separate writing rounds by different writers (round 1: ``train_risk``, ``train_negatives*``, ``train_buried``,
``tune`` and the exemplar bank; round 3: ``train_v3_*``; round 4: ``train_v4_*``; round 5: ``train_v5_*``; round 6:
``train_v6_*``), and a writer's phrasings repeat,
so grouped cross-validation flatters a model on people it never read. For each round: train on the other rounds and
the MESC sample, choose the thresholds on their grouped out-of-fold scores (``--inner-folds``) as below, then score
the held-out round's own messages at those thresholds (per kind and kind of implicit risk, hard negatives escalated);
it also prints the recall at the threshold that keeps that round's hard negatives at 5 % ("ranking only": variants
land at different false-alarm rates, which makes recall alone an unfair comparison). The rounds are then added up
(hits and messages summed), at the exported hard-negative limit and at each of ``--compare-limits``; ``--summary-json``
keeps those counts and ``--reference-json`` applies the selection rule (:data:`SELECTION_RULE`: implicit +2 points or
more, explicit -1 point at most, hard negatives +0.5 point at most) against a reference run.

Thresholds of the shipped model come from grouped 5-fold cross-validation over everything (a buried variant, and
the two halves of a contrast pair, sit in the fold of their source): the out-of-fold scores OR'd with the rules give
the lowest ``elevated`` threshold with hard negatives <= 4 % and the MESC train sample <= 1 % escalated (margin under
the issue's 5 % for unseen data); the ``ask`` threshold (LLM judgement asked) the lowest with <= 5 % of the MESC sample
asking.

The shipped classifier: ``--rounds 1,3,4,5,6,7,8,9,10 --rank 8 --top 2 --hidden 256 --epochs 4 --ngrams 4096
--hard-negative-limit 0.045 --threads 1`` (MiniLM with a rank-8 adapter on the query/value of its top two layers, one
256-unit MLP risk head adding a linear reading of the window's hashed character n-grams to its logit; thresholds at
hard negatives <= 4.5 % out of fold), trained on rounds 1 and 3 to 10; then ``bench/safety_bench.py
--rebuild-bank``. The configuration was chosen on the five held-out rounds under :data:`SELECTION_RULE` (fixed
before the run, in the commit that let the LoRA path read the n-grams) over the previous classifier (``--hidden 256
--seeds 3 --ngrams 4096 --hard-negative-limit 0.045 --batch 64``, three frozen heads); the adapter without the n-grams
did not pass. Adding rounds 7 and 8 then passed the same rule against it (pre-registered in commit df34bde). Earlier
rounds tried a 64-unit head, two-layer heads, five seeds, 512 units, mean+max and first-token features, one window
per sentence, per-kind loss weights, buried variants and the nearest-exemplar rule (docs/safety-classifier.md, "How it was
trained", has the figures).

Reproducible: seeded (torch, numpy, the MESC sample, the folds); run it under ``nice`` with ``--threads 1`` on a busy
machine (two torch threads on two cores shared with other work ran several times slower). On this 2-core machine, with
the window features and rule verdicts cached (``--cache``; a run embeds only new windows: round 6's 870 took 6 s at
load average 1), a leave-one-round-out of five rounds took 2.5 minutes for the previous configuration, 3 with the
n-grams, 5 for five seeds or 512 units (load average 2-4, another training beside it); the shipped command (five
rounds, 5-fold CV, final fit, export) took about 5 minutes. With ``--rank 8`` the same protocol trains one adapter per
inner fold and held-out round (20 for five rounds, 4 to 6 minutes each here): split the rounds between two processes
(``--holdout-round 1,3,4`` and ``--holdout-round 5,6``, each with ``--summary-json``; 48 and 38 minutes beside a third
training) and add them up with ``--combine a.json,b.json --reference-json ref.json``, which trains nothing.
``--rank 8 --holdout-round N --screen`` screens one round instead (ranking only, one adapter). ``--encoder DIR``
trains the heads on another sentence encoder's frozen features under the same protocol (``--rank 0``) and exports
``classifier-<folder name>.npz`` (the opt-in pair's second reader: ``--encoder /path/to/all-mpnet-base-v2``).
``--oof-json`` keeps every training message's out-of-fold score; two readers' files (the same rounds, so the same
folds) go to ``--pair FIRST.json,SECOND.json``, which chooses the pair's threshold as every classifier's is chosen and
writes ``second-opinion.json`` (:class:`mesa.safety.semantic.SecondOpinionLayer`; docs/safety-classifier.md, "Two
readers"). ``--recalibrate FIRST.json`` chooses the default reader's ``elevated`` threshold again from its stored
scores and rewrites only that in ``classifier.npz``; with ``--rules-now`` (beside it or ``--pair``) the rules sit
beside the scores as the rule layer is now, not as the scores' run recorded them (the rule layer changes more often
than the readers). Needs torch (CPU build), scipy (the n-gram rows) and the ``safety`` extra; the default reader's inference
needs numpy only. Usage::

    nice python bench/train_safety_classifier.py /work/shared/data/mesc/mesc_train_val.csv --rounds 1,3,4,5,6 --hidden 256 --seeds 3 --ngrams 4096 --hard-negative-limit 0.045 --batch 64 --threads 1 --holdout-round all --cache /tmp/win.npz
    nice python bench/train_safety_classifier.py data.csv --hidden 256 --seeds 3 --batch 64 --threads 1 --holdout-round all --no-cv --dry-run --compare-limits 0.045,0.05 --summary-json ref.json  # reference
    nice python bench/train_safety_classifier.py data.csv --hidden 512 --seeds 3 --batch 64 --threads 1 --holdout-round all --no-cv --dry-run --reference-json ref.json  # a candidate, judged
    nice python bench/train_safety_classifier.py data.csv --rank 8 --top 2 --hidden 256 --epochs 4 --holdout-round 4 --screen --no-cv --dry-run --cache /tmp/lower.npz  # LoRA screen
    nice python bench/train_safety_classifier.py data.csv --rounds 1,3,4,5,6 --rank 8 --top 2 --hidden 256 --epochs 4 --hard-negative-limit 0.045 --threads 1 --holdout-round 1,3,4 --no-cv --dry-run --cache /tmp/lower.npz --summary-json a.json  # LoRA, full protocol (and 5,6 into b.json)
    python bench/train_safety_classifier.py data.csv --hard-negative-limit 0.045 --combine a.json,b.json --reference-json ref.json  # the verdict
    python bench/train_safety_classifier.py data.csv --recalibrate first.json --rules-now --hard-negative-limit 0.045  # a threshold beside today's rules
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import random
import re
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
from mesa.safety.semantic import BASE_NAME, _choose, char_ngrams, save_classifier, windows

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


def training_rows(batches: Path, mesc_csv: Path, mesc_fit: int, rounds: tuple[str, ...] | None = None) -> list[dict]:
    """Every message as ``{text, risk, category, kind, group, fit}`` (group: the CV fold unit; ``fit``: trained on,
    else only scored for calibration: everyday MESC talk is easy, the first ``mesc_fit`` of the sample suffice);
    ``rounds``: only these writing rounds' files (the bank counts as round 1), all when ``None``."""
    own = own_messages(batches, rounds)
    sources = [r["text"] for r in own if r.get("augment") != "buried"]
    rows: list[dict] = []
    for r in own:
        risk = r["expect"] == "escalate"
        rows.append({"text": r["text"], "risk": risk, "kind": r["kind"], "group": _group(r, sources),
                     "category": CATEGORY_OF.get(r["category"], r["category"]) if risk else "none",
                     "round": r["round"], "risk_kind": risk_kind(r) if risk else "none"})
    unknown = {r["category"] for r in rows if r["risk"] and r["category"] not in CATEGORIES}
    if unknown:
        raise SystemExit(f"risk categories the heads do not know (add them to CATEGORY_OF): {sorted(unknown)}")
    bank = json.loads((DATA / "exemplars.json").read_text(encoding="utf-8")) if rounds is None or "1" in rounds else {"risk": {}, "safe": {}}
    for category, kinds in bank["risk"].items():
        for texts in kinds.values():
            rows += [{"text": t, "risk": True, "category": category, "kind": "bank", "group": t, "round": "1",
                      "risk_kind": "bank"} for t in texts]
    for texts in bank["safe"].values():
        rows += [{"text": t, "risk": False, "category": "none", "kind": "bank_safe", "group": t, "round": "1",
                  "risk_kind": "none"} for t in texts]
    for n, t in enumerate(mesc_sample(mesc_csv)):
        rows.append({"text": t, "risk": False, "category": "none", "kind": "mesc", "group": t, "fit": n < mesc_fit,
                     "round": "mesc", "risk_kind": "none"})
    return rows


def own_messages(batches: Path, rounds: tuple[str, ...] | None = None) -> list[dict]:
    """The messages written for the classifier (every ``train_*.jsonl`` and ``tune.jsonl`` of ``rounds``, all rounds
    when ``None``), each with its round; never one whose text is also in ``valid.jsonl`` (a writer may happen to write
    the same words: round 6 did once), so the validation batch stays unseen."""
    files = [f for f in [*sorted(batches.glob("train_*.jsonl")), batches / "tune.jsonl"] if rounds is None or round_of(f) in rounds]
    valid = {_plain(r["text"]) for r in load_batch(batches / "valid.jsonl")}
    own = [r | {"round": round_of(f)} for f in files for r in load_batch(f)]
    kept = [r for r in own if _plain(r["text"]) not in valid]
    if len(kept) < len(own):
        print(f"  left out {len(own) - len(kept)} training message(s) that valid.jsonl also holds", file=sys.stderr)
    return kept


def round_of(path: Path) -> str:
    """The writing round a batch file belongs to (each round: other writers): ``train_vN_*`` is round N (3 and up), the
    rest (``train_risk``, ``train_negatives*``, ``train_buried``, ``tune``) 1. The exemplar bank was drawn from the
    round-1 tuning batch, so it counts as round 1; the MESC sample belongs to no round and is never held out."""
    numbered = re.match(r"train_v(\d+)_", path.name)
    return numbered.group(1) if numbered else "1"


ROUND1_KINDS = {"means_access": "means", "preparation_farewell": "preparation", "passive_euphemism": "passive",
                "own_words": "self_harm_own_words", "means_threat": "others_means", "evasion": "evasion",
                "being_harmed": "abuse_implicit"}


def risk_kind(row: dict) -> str:
    """The kind of risk a message shows, in the round-3 names (means, preparation, passive, self_harm_own_words,
    others_means, evasion), ``explicit`` for explicit risk, else ``implicit_<category>`` (round 1 names it otherwise)."""
    if row["kind"] == "explicit":
        return "explicit"
    if row["category"] in CATEGORY_OF:
        return row["category"]
    return ROUND1_KINDS.get(str(row.get("subkind", "")), f"implicit_{row['category']}")


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


def tokenised_windows(rows: list[dict], packed: bool = True) -> list[list[list[int]]]:
    """Per message, the token ids of the windows the layer reads (at least one window)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    out = []
    for row in rows:
        parts = _choose(windows(row["text"], packed)) or [row["text"]]
        out.append([e.ids for e in tokenizer.encode_batch(parts)])
    return out


def window_texts(rows: list[dict], packed: bool = True) -> list[list[str]]:
    """Per message, the windows' texts, in the order of :func:`tokenised_windows`."""
    return [_choose(windows(row["text"], packed)) or [row["text"]] for row in rows]


def ngram_features(rows: list[dict], texts_of: list[list[str]], buckets: int):
    """Every window's hashed character n-grams (:func:`mesa.safety.semantic.char_ngrams`, a sparse matrix, message
    after message) and the idf used. The idf is counted on the MESC sample's windows only: that sample belongs to no
    writing round, so no held-out round's text shapes the features it is scored with."""
    from scipy import sparse

    mesc = [t for r, ts in zip(rows, texts_of, strict=True) if r["kind"] == "mesc" for t in ts]
    seen = (char_ngrams(mesc, np.ones(buckets, dtype=np.float32)) > 0).sum(0)
    idf = (np.log((1 + len(mesc)) / (1 + seen)) + 1.0).astype(np.float32)  # smoothed, as scikit-learn's
    flat = [t for ts in texts_of for t in ts]
    blocks = [sparse.csr_matrix(char_ngrams(flat[i : i + 2000], idf)) for i in range(0, len(flat), 2000)]
    return sparse.vstack(blocks).tocsr(), idf


def folds_of(rows: list[dict], folds: int) -> np.ndarray:
    groups = sorted({r["group"] for r in rows})
    random.Random(SEED).shuffle(groups)
    fold_of = {g: n % folds for n, g in enumerate(groups)}
    return np.array([fold_of[r["group"]] for r in rows])


# -- the model (torch, training only) ------------------------------------------------------------------------------


def build_model(rank: int, ffn: bool, top: int, hidden: int = 0, ngrams: int = 0):
    """MiniLM in torch, the same computation as :class:`mesa.safety.minilm.MiniLM`, with LoRA on its top layers (and,
    with ``ngrams`` buckets, the heads' linear reading of the windows' character n-grams, as :func:`build_heads`).

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
            if ngrams:
                self.ngram = nn.Linear(ngrams, 1, bias=False)
                nn.init.zeros_(self.ngram.weight)

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


def load_vectors(path: Path | None) -> dict:
    """A feature cache's vectors by key (an npz of ``keys`` and ``vectors``; empty when there is none yet)."""
    if path is None or not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {str(k): v for k, v in zip(data["keys"], data["vectors"], strict=True)}


def save_vectors(path: Path, vectors: dict) -> None:
    keys = sorted(vectors)
    np.savez(path, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]))


class PooledCache:
    """The frozen encoder's last layer per distinct window, pooled three ways (mean, max, first token; each L2-normalised,
    float16), computed once and kept in an npz between runs: every head variant reads these features."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.vectors = path, load_vectors(path)

    def fill(self, windows_of) -> None:
        import torch

        model = build_model(0, False, 0)
        todo = {LowerCache.key(w): w for ws in windows_of for w in ws}
        todo = sorted((w for k, w in todo.items() if k not in self.vectors), key=len)
        print(f"  encoder: {len(todo)} new windows to run", file=sys.stderr, flush=True)
        with torch.no_grad():
            for start in range(0, len(todo), 64):
                chosen = todo[start : start + 64]
                ids, mask = padded(chosen)
                pooled = pool_states(model.lower(ids, mask), mask).half().numpy()
                self.vectors.update({LowerCache.key(w): v for w, v in zip(chosen, pooled, strict=True)})
                if start % 6400 == 0 and start:
                    print(f"    {start} windows", file=sys.stderr, flush=True)
        if self.path is not None and todo:
            save_vectors(self.path, self.vectors)

    def features(self, windows_of, pool: str) -> tuple[np.ndarray, list[int]]:
        """Every window's features, message after message, and the count of windows per message."""
        parts = POOLS[pool]
        flat = np.stack([self.vectors[LowerCache.key(w)] for ws in windows_of for w in ws]).astype(np.float32)
        flat = np.concatenate([flat[:, 384 * p : 384 * (p + 1)] for p in parts], axis=1)
        return flat, [len(ws) for ws in windows_of]


class SentenceEncoderCache:
    """Another sentence encoder's embedding of each window text (``--encoder DIR``: a sentence-transformers model
    folder, e.g. all-mpnet-base-v2), mean-pooled and L2-normalised by the model's own pooling, kept in an npz between
    runs. The heads trained on them export as ``classifier-<model folder name>.npz``."""

    def __init__(self, path: Path | None, model_dir: Path) -> None:
        self.path, self.model_dir, self.vectors = path, model_dir, load_vectors(path)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def fill(self, texts_of: list[list[str]]) -> None:
        todo = sorted({self.key(t): t for ts in texts_of for t in ts if self.key(t) not in self.vectors}.items())
        print(f"  encoder {self.model_dir.name}: {len(todo)} new windows to run", file=sys.stderr, flush=True)
        if not todo:
            return
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(self.model_dir), device="cpu")
        vectors = model.encode([t for _, t in todo], batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        self.vectors.update({k: v.astype(np.float16) for (k, _), v in zip(todo, vectors, strict=True)})
        if self.path is not None:
            save_vectors(self.path, self.vectors)

    def features(self, texts_of: list[list[str]], pool: str) -> tuple[np.ndarray, list[int]]:
        if pool != "mean":
            raise SystemExit("--encoder: only --pool mean")
        flat = np.stack([self.vectors[self.key(t)] for ts in texts_of for t in ts]).astype(np.float32)
        return flat, [len(ts) for ts in texts_of]


POOLS = {"mean": (0,), "meanmax": (0, 1), "meancls": (0, 2), "all": (0, 1, 2)}
"""Feature sets of a window: which of the pooled vectors (0 mean, 1 max, 2 first token) are concatenated."""


def pool_states(x, mask):
    """Mean, max and first-token pooling of the last hidden states (each L2-normalised), as the numpy encoder does."""
    import torch

    mean = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
    top = x.masked_fill(mask[:, :, None] < 0.5, float("-inf")).max(1).values
    unit = lambda v: torch.nn.functional.normalize(v, dim=1, eps=1e-12)
    return torch.cat([unit(mean), unit(top), unit(x[:, 0])], dim=1)


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


def message_loss(model, embeddings, counts, labels, categories, pos_weight, weights=None, ngrams=None):
    """Class-weighted BCE on each message's riskiest window + category cross-entropy on risk messages' riskiest window
    (``weights``: a weight per message, for kinds of risk that need more pull; ``ngrams``: the windows' character
    n-grams, read by the heads' linear ``ngram`` part)."""
    import torch

    logits = risk_logits(model, embeddings, ngrams)
    index, padding = _window_index(counts)
    per_message = logits[index].masked_fill(padding, float("-inf"))  # (messages, most windows)
    best, riskiest = per_message.max(dim=1)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(best, labels, weight=weights, pos_weight=pos_weight)
    risky = labels > 0.5
    if risky.any():
        chosen = index[torch.arange(len(counts)), riskiest][risky]
        loss = loss + 0.5 * torch.nn.functional.cross_entropy(model.category(embeddings[chosen]), categories[risky])
    return loss


def risk_logits(model, embeddings, ngrams=None):
    """Each window's risk logit: the risk head on the embedding, plus the linear n-gram part when the heads have one."""
    logits = model.risk(embeddings).squeeze(1)
    if ngrams is not None:
        logits = logits + model.ngram(ngrams).squeeze(1)
    return logits


def _window_index(counts: list[int]):
    """For messages with ``counts`` windows laid end to end: a (messages, most windows) index and its padding mask."""
    import torch

    counts_t = torch.tensor(counts)
    starts = torch.cumsum(counts_t, 0) - counts_t
    offsets = torch.arange(int(counts_t.max()))
    padding = offsets[None, :] >= counts_t[:, None]
    index = (starts[:, None] + offsets[None, :]).masked_fill(padding, 0)
    return index, padding


def train(rows: list[dict], windows_of, cache: LowerCache, index: list[int], args, ngrams=None) -> object:
    """The adapter and heads trained on the rows of ``index`` (``ngrams``: every window's n-gram rows, message after
    message, when the heads read them)."""
    import torch

    torch.manual_seed(SEED)
    model = build_model(args.rank, args.ffn, args.top, args.hidden, args.ngrams)
    labels = torch.tensor([float(rows[i]["risk"]) for i in index])
    categories = torch.tensor([CATEGORIES.index(rows[i]["category"]) if rows[i]["risk"] else 0 for i in index])
    pos_weight = (labels < 0.5).sum() / labels.sum().clamp(min=1.0)
    heads = [*model.risk.parameters(), *model.category.parameters()]
    groups = [{"params": heads, "lr": args.head_lr, "weight_decay": 0.0}]
    if args.ngrams:
        groups.append({"params": list(model.ngram.parameters()), "lr": args.head_lr, "weight_decay": args.ngram_decay})
    if args.rank:
        groups.append({"params": list(model.lora.parameters()), "lr": args.lora_lr, "weight_decay": 0.01})
    optimiser = torch.optim.AdamW(groups)
    frozen = None if args.rank else window_embeddings(model, cache, [windows_of[i] for i in index])
    epochs = args.epochs if args.rank else args.epochs * 4  # heads alone are cheap: give them more passes
    rng = random.Random(SEED)
    starts = window_starts([len(ws) for ws in windows_of])
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
            picked = None if ngrams is None else window_rows(starts, [index[j] for j in chosen])
            loss = message_loss(model, embeddings, counts, labels[chosen], categories[chosen], pos_weight,
                                ngrams=_dense_rows(ngrams, picked))
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


def message_scores(model, cache: LowerCache, windows_of, index: list[int], ngrams=None) -> np.ndarray:
    """Each message's probability of risk: the maximum over its windows (as the layer computes it)."""
    import torch

    flat, counts = window_embeddings(model, cache, [windows_of[i] for i in index])
    picked = None if ngrams is None else window_rows(window_starts([len(ws) for ws in windows_of]), index)
    with torch.no_grad():
        logits = risk_logits(model, flat, _dense_rows(ngrams, picked))
        probabilities = torch.sigmoid(logits.double()).numpy()
    return np.array([p.max() for p in np.split(probabilities, np.cumsum(counts)[:-1])])


def out_of_fold(rows: list[dict], windows_of, cache: LowerCache, args, ngrams=None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold scores, and which rows have one (``--folds-run`` runs the first folds only, to save time)."""
    fold = folds_of(rows, args.folds)
    scores = np.zeros(len(rows))
    for k in range(args.folds_run or args.folds):
        started = time.perf_counter()
        train_index = [i for i in range(len(rows)) if fold[i] != k and rows[i].get("fit", True)]
        test_index = [i for i in range(len(rows)) if fold[i] == k]
        model = train(rows, windows_of, cache, train_index, args, ngrams)
        scores[test_index] = message_scores(model, cache, windows_of, test_index, ngrams)
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


# -- heads on cached features (the frozen encoder: what ships) ------------------------------------------------------


def build_heads(dim: int, hidden: int, layers: int, ngrams: int = 0):
    """The risk head (linear, or an MLP of ``layers`` ReLU layers of ``hidden`` units), the category head, and with
    ``ngrams`` buckets a linear reading of the windows' character n-grams added to the risk logit (starts at zero)."""
    from torch import nn

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if hidden:
                blocks = [nn.Linear(dim, hidden), nn.ReLU()]
                for _ in range(layers - 1):
                    blocks += [nn.Linear(hidden, hidden), nn.ReLU()]
                self.risk = nn.Sequential(*blocks, nn.Linear(hidden, 1))
            else:
                self.risk = nn.Linear(dim, 1)
            self.category = nn.Linear(dim, len(CATEGORIES))
            nn.init.zeros_(self.category.weight)
            if ngrams:
                self.ngram = nn.Linear(ngrams, 1, bias=False)
                nn.init.zeros_(self.ngram.weight)

    return Heads()


def kind_weights(rows: list[dict], index: list[int], spec: str):
    """A loss weight per message: ``means=2,preparation=2`` weighs those kinds of risk (others 1)."""
    import torch

    wanted = {k: float(v) for k, v in (item.split("=") for item in spec.split(",") if item)}
    return torch.tensor([wanted.get(rows[i]["risk_kind"], 1.0) for i in index])


def fit_heads(rows: list[dict], features, index: list[int], args, seed: int):
    """One member: the heads trained on the rows of ``index`` (each message's riskiest window, as at inference)."""
    import torch

    torch.manual_seed(seed)
    flat, counts, ngrams = features
    model = build_heads(flat.shape[1], args.hidden, args.layers, args.ngrams)
    labels = torch.tensor([float(rows[i]["risk"]) for i in index])
    categories = torch.tensor([CATEGORIES.index(rows[i]["category"]) if rows[i]["risk"] else 0 for i in index])
    weights = kind_weights(rows, index, args.kind_weight)
    pos_weight = (labels < 0.5).sum() / labels.sum().clamp(min=1.0)
    heads = [p for name, p in model.named_parameters() if not name.startswith("ngram.")]
    groups = [{"params": heads, "weight_decay": args.weight_decay}]
    if args.ngrams:
        groups.append({"params": list(model.ngram.parameters()), "weight_decay": args.ngram_decay})
    optimiser = torch.optim.AdamW(groups, lr=args.head_lr)
    epochs = args.epochs * 4
    steps = epochs * math.ceil(len(index) / args.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.head_lr, total_steps=steps, pct_start=0.1)
    starts = window_starts(counts)
    flat_t = torch.from_numpy(flat)
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(len(index)))
        rng.shuffle(order)
        for start in range(0, len(order), args.batch):
            chosen = order[start : start + args.batch]
            picked = window_rows(starts, [index[j] for j in chosen])
            loss = message_loss(model, flat_t[picked], [counts[index[j]] for j in chosen], labels[chosen],
                                categories[chosen], pos_weight, weights[chosen], _dense_rows(ngrams, picked))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
    return model


def window_starts(counts: list[int]) -> np.ndarray:
    """Where each message's windows start among every window laid end to end (``counts`` windows per message)."""
    return np.concatenate([[0], np.cumsum(counts)])


def window_rows(starts: np.ndarray, messages) -> np.ndarray:
    """The positions of the windows of ``messages``, in their order (``starts``: :func:`window_starts`)."""
    return np.concatenate([np.arange(starts[m], starts[m + 1]) for m in messages])


def _dense_rows(ngrams, picked):
    """The picked windows' n-gram rows as a dense tensor (``None`` without n-grams)."""
    import torch

    return None if ngrams is None else torch.from_numpy(ngrams[picked].toarray())


def fit_members(rows: list[dict], features, index: list[int], args) -> list:
    """``--seeds`` members trained alike from different seeds (an ensemble: their probabilities are averaged)."""
    return [fit_heads(rows, features, index, args, SEED + n) for n in range(args.seeds)]


def member_scores(members: list, features, index: list[int]) -> np.ndarray:
    """Each message's probability of risk: per window the members' mean probability, then the riskiest window."""
    import torch

    flat, counts, ngrams = features
    picked = window_rows(window_starts(counts), index)
    with torch.no_grad():
        x, g = torch.from_numpy(flat[picked]), _dense_rows(ngrams, picked)
        # float64: a confident head's float32 probabilities round to 1.0, and thresholds near 1 lose their resolution
        probabilities = np.mean([torch.sigmoid(risk_logits(m, x, g).double()).numpy() for m in members], axis=0)
    return np.array([p.max() for p in np.split(probabilities, np.cumsum([counts[i] for i in index])[:-1])])


def grouped_oof(rows: list[dict], index: list[int], folds: int, fit_and_score) -> np.ndarray:
    """Grouped out-of-fold scores for the rows of ``index`` (fold unit: the group, as in :func:`folds_of`):
    ``fit_and_score(fit, scored)`` trains on the rows of ``fit`` and scores those of ``scored``."""
    fold = folds_of([rows[i] for i in index], folds)
    scores = np.zeros(len(index))
    for k in range(folds):
        fit = [i for i, f in zip(index, fold, strict=True) if f != k and rows[i].get("fit", True)]
        held = [n for n, f in enumerate(fold) if f == k]
        scores[held] = fit_and_score(fit, [index[n] for n in held])
    return scores


class FrozenHeads:
    """How the frozen encoder's heads are scored in the protocol: features computed once, ``--seeds`` members."""

    def __init__(self, rows: list[dict], features, args) -> None:
        self.rows, self.features, self.args = rows, features, args

    def out_of_fold(self, index: list[int], folds: int) -> np.ndarray:
        return grouped_oof(self.rows, index, folds, self.fit_and_score)

    def fit_and_score(self, fit: list[int], scored: list[int]) -> np.ndarray:
        return member_scores(fit_members(self.rows, self.features, fit, self.args), self.features, scored)


class AdaptedEncoder:
    """How the LoRA-adapted encoder and its head are scored in the protocol: one adapter trained per fit."""

    def __init__(self, rows: list[dict], windows_of, cache: LowerCache, args, ngrams=None) -> None:
        self.rows, self.windows_of, self.cache, self.args, self.ngrams = rows, windows_of, cache, args, ngrams

    def out_of_fold(self, index: list[int], folds: int) -> np.ndarray:
        return grouped_oof(self.rows, index, folds, self.fit_and_score)

    def fit_and_score(self, fit: list[int], scored: list[int]) -> np.ndarray:
        started = time.perf_counter()
        model = train(self.rows, self.windows_of, self.cache, fit, self.args, self.ngrams)
        print(f"  adapter trained on {len(fit)} messages ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        return message_scores(model, self.cache, self.windows_of, scored, self.ngrams)


def holdout_round(rows: list[dict], scorer, rules: np.ndarray, args, held: str) -> dict:
    """Leave one writing round out: train on the other rounds, choose the thresholds on their grouped out-of-fold
    scores (``--inner-folds``), then score the held-out round's own messages (never its synthetic variants).
    ``scorer`` trains and scores a model (:class:`FrozenHeads` or :class:`AdaptedEncoder`).

    The thresholds are chosen once per hard-negative limit of ``--limits`` (the same scores: a limit is a choice of
    threshold, not of model). Figures are counts ``(hits, n)`` so that rounds add up exactly (:func:`pooled`)."""
    train_index, test_index = holdout_split(rows, held)
    inner = scorer.out_of_fold(train_index, args.inner_folds)
    scores = scorer.fit_and_score([i for i in train_index if rows[i].get("fit", True)], test_index)
    test_rows = [rows[i] for i in test_index]
    figures = {"round": held, "rules": kind_counts(test_rows, rules[test_index]), "limits": {}}
    for limit in args.limits:
        elevated, _ = calibrate([rows[i] for i in train_index], inner, rules[train_index], quiet=True, limit=limit)
        hit = rules[test_index] | (scores >= elevated)
        figures["limits"][f"{limit:g}"] = {"elevated": elevated, "hit": kind_counts(test_rows, hit)}
        print(f"\nheld-out round {held} ({len(test_index)} messages; thresholds chosen without it, hard negatives <= "
              f"{limit:.1%}: elevated >= {elevated:.4f}):", flush=True)
        print_kind_rates(as_rates(figures["limits"][f"{limit:g}"]["hit"]), as_rates(figures["rules"]))
    matched = matched_recall(test_rows, scores, rules[test_index], MATCHED_NEGATIVES)
    if matched:
        figures["matched"] = matched
        print(f"  ranking only (threshold {matched['threshold']:.4f} set on this round so that <= {MATCHED_NEGATIVES:.0%} of its "
              f"hard negatives escalate): explicit {100 * _share(matched['explicit']):.1f} %, "
              f"implicit {100 * _share(matched['implicit']):.1f} %", flush=True)
    return figures


def held_out_rounds(rows: list[dict], spec: str) -> list[str]:
    """The rounds ``--holdout-round`` names: ``all`` (every writing round), one round, or a comma-separated list
    (two processes can share the rounds and :func:`combine_summaries` adds their summaries up)."""
    return sorted({r["round"] for r in rows} - {"mesc"}) if spec == "all" else spec.split(",")


def run_holdout(args, rows: list[dict], scorer, rules: np.ndarray) -> None:
    """The leave-one-round-out protocol over ``--holdout-round``, its summary and the selection verdict."""
    per_round = [holdout_round(rows, scorer, rules, args, name) for name in held_out_rounds(rows, args.holdout_round)]
    summarise(per_round, args, describe(args, 0))


def summarise(per_round: list[dict], args, config: str) -> None:
    summary = print_pooled(per_round, config)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    if args.reference_json:
        print_selection(json.loads(args.reference_json.read_text(encoding="utf-8")), summary, args.hard_negative_limit)


def combine_summaries(paths: list[Path], args) -> None:
    """Several runs' ``--summary-json`` over disjoint held-out rounds (the same configuration), added up as one run."""
    summaries = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if len({s["config"] for s in summaries}) != 1:
        raise SystemExit("--combine: the summaries come from different configurations")
    per_round = [f for s in summaries for f in s["per_round"]]
    rounds = [f["round"] for f in per_round]
    if len(set(rounds)) != len(rounds):
        raise SystemExit(f"--combine: a held-out round appears twice ({rounds})")
    summarise(sorted(per_round, key=lambda f: f["round"]), args, summaries[0]["config"])


MATCHED_NEGATIVES = 0.05
"""The held-out hard-negative rate at which variants' recall is also compared: the thresholds chosen without the round
land at different false-alarm rates, which makes recall alone an unfair comparison."""


def matched_recall(rows: list[dict], scores: np.ndarray, rules: np.ndarray, limit: float) -> dict | None:
    """Recall ``(hits, n)`` per kind at the lowest threshold holding this round's hard negatives at ``limit``."""
    negatives = np.array([r["kind"] == "hard_negative" for r in rows])
    if not negatives.any():
        return None
    for t in np.unique(np.concatenate([np.arange(0.05, 1.0, 0.001), scores[scores >= 0.05]])):
        hit = rules | (scores >= t)
        if rate(hit, negatives) <= limit:
            kinds = {k: _count(hit, np.array([r["kind"] == k for r in rows])) for k in ("explicit", "implicit")}
            return {"threshold": float(t), **kinds}
    return None


def pooled(per_round: list[dict], rounds: tuple[str, ...] | None = None) -> dict:
    """The held-out rounds added up: per hard-negative limit and kind, the hits and messages of every round in
    ``rounds`` (all by default) summed, and the ranking-only recall summed the same way."""
    chosen = [f for f in per_round if rounds is None or f["round"] in rounds]
    out: dict = {"rounds": [f["round"] for f in chosen], "limits": {}, "matched": {}}
    for figures in chosen:
        for limit, at in figures["limits"].items():
            totals = out["limits"].setdefault(limit, {})
            for key, (hits, n) in at["hit"].items():
                totals[key] = [a + b for a, b in zip(totals.get(key, [0, 0]), (hits, n), strict=True)]
        for key in ("explicit", "implicit"):
            if key in figures.get("matched", {}):
                out["matched"][key] = [a + b for a, b in zip(out["matched"].get(key, [0, 0]), figures["matched"][key], strict=True)]
    return out


SELECTION_RULE = {"implicit": 2.0, "explicit": -1.0, "hard_negative": 0.5}
"""Fixed before any round-6 candidate ran (docs/safety-classifier.md): summed over the held-out rounds, at the thresholds chosen
without each round, a candidate replaces the reference only if implicit recall rises by >= 2 points, explicit recall
falls by <= 1 point and hard negatives escalated rise by <= 0.5 point."""


def passes_selection(reference: dict, candidate: dict) -> tuple[bool, dict]:
    """Whether ``candidate`` beats ``reference`` under :data:`SELECTION_RULE`; both are ``{kind: (hits, n)}`` added up
    over the same held-out rounds. Returns the verdict and each kind's change in points."""
    # rounded: 52/100 - 50/100 is 1.9999999999999996 points in floating point
    change = {k: round(100 * (_share(candidate[k]) - _share(reference[k])), 9) for k in SELECTION_RULE}
    ok = (change["implicit"] >= SELECTION_RULE["implicit"] and change["explicit"] >= SELECTION_RULE["explicit"]
          and change["hard_negative"] <= SELECTION_RULE["hard_negative"])
    return ok, change


def print_pooled(per_round: list[dict], config: str) -> dict:
    """Print (and return) the held-out rounds added up: all of them, and rounds 1, 3, 4 (the earlier releases' note)."""
    summary = {"all": pooled(per_round), "1,3,4": pooled(per_round, ("1", "3", "4")), "per_round": per_round,
               "config": config}
    for name, figures in (("all held-out rounds", summary["all"]), ("rounds 1, 3, 4", summary["1,3,4"])):
        print(f"\nadded up over {name} ({', '.join(figures['rounds'])}):")
        for limit, totals in figures["limits"].items():
            print(f"  thresholds chosen without the round, hard negatives <= {float(limit):.1%}:")
            print_kind_rates(as_rates(totals))
        if figures["matched"]:
            print(f"  ranking only (each round's hard negatives at {MATCHED_NEGATIVES:.0%}): "
                  + ", ".join(f"{k} {100 * _share(v):.1f} %" for k, v in figures["matched"].items()))
    return summary


def print_selection(reference: dict, summary: dict, limit: float) -> None:
    """The selection rule's verdict against a reference run's summary, on the held-out rounds both ran: the reference
    at its own exported limit (its first), this run at ``limit``."""
    if reference["all"]["rounds"] != summary["all"]["rounds"]:
        print(f"\nselection: not comparable (held-out rounds {reference['all']['rounds']} vs {summary['all']['rounds']})")
        return
    if f"{limit:g}" not in summary["all"]["limits"]:
        raise SystemExit(f"selection: this run has no figures at hard negatives <= {limit:g} (it has "
                         f"{', '.join(summary['all']['limits'])}): pass the run's --hard-negative-limit")
    ok, change = passes_selection(next(iter(reference["all"]["limits"].values())), summary["all"]["limits"][f"{limit:g}"])
    print(f"\nselection against the reference ({reference['config'][:60]}...): "
          + ", ".join(f"{k} {v:+.1f} points" for k, v in change.items())
          + (": PASSES" if ok else ": does not pass") + f" (rule: {SELECTION_RULE})")


def _count(hit: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    return int(hit[mask].sum()), int(mask.sum())


def _share(counts) -> float:
    hits, n = counts
    return hits / n if n else float("nan")


def as_rates(counts: dict) -> dict:
    """``{key: (hits, n)}`` as ``{key: (rate, n)}`` (what :func:`print_kind_rates` shows)."""
    return {key: (_share(value), value[1]) for key, value in counts.items()}


def holdout_split(rows: list[dict], held: str) -> tuple[list[int], list[int]]:
    """Rows trained on and rows scored when round ``held`` is left out: nothing of that round is trained on (its
    synthetic buried variants neither, and they are not scored); the MESC sample (no round) is always trained on."""
    if held == "mesc":
        raise ValueError("the MESC sample belongs to no writing round")
    train_index = [i for i, r in enumerate(rows) if r["round"] != held]
    seen = {_plain(rows[i]["text"]) for i in train_index}  # a message two rounds both wrote is not new to the model
    test_index = [i for i, r in enumerate(rows) if r["round"] == held and not r.get("synthetic") and _plain(r["text"]) not in seen]
    return train_index, test_index


def _plain(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def kind_counts(rows: list[dict], hit: np.ndarray) -> dict:
    """Escalations and messages ``(hits, n)`` per kind (explicit, implicit, hard_negative) and kind of implicit risk."""
    out = {}
    keys = [r["kind"] for r in rows]
    sub = [f"  {r['risk_kind']}" if r["kind"] == "implicit" else None for r in rows]
    for key in [*dict.fromkeys(k for k in ("explicit", "implicit", "hard_negative") if k in keys),
                *sorted({k for k in sub if k})]:
        out[key] = _count(hit, np.array([k == key or s == key for k, s in zip(keys, sub, strict=True)]))
    return out


def kind_rates(rows: list[dict], hit: np.ndarray) -> dict:
    """Escalation rate and count per kind (explicit, implicit, hard_negative) and per kind of implicit risk."""
    return as_rates(kind_counts(rows, hit))


def print_kind_rates(figures: dict, rules: dict | None = None) -> None:
    for key, (value, n) in figures.items():
        alone = f"; rules alone {100 * rules[key][0]:5.1f} %" if rules else ""
        print(f"  {key:<24} {100 * value:5.1f} %  (n={n}{alone})")


def nearest_hits_from_features(rows: list[dict], features) -> np.ndarray:
    """Where the bank's nearest-exemplar rule escalates, from the cached mean-pooled window embeddings (what the rule
    reads at inference); bank rows are its own exemplars, so False."""
    from mesa.safety.semantic import SemanticLayer

    layer = SemanticLayer(encoder=_NoEncoder(), classifier=None)  # the packaged base-model bank embeddings
    flat, counts = features[:2]
    sims = flat[:, :384] @ layer.matrix.T
    risk = sims[:, : layer.n_risk].max(1)
    hit = (risk >= layer.risk_threshold) & (risk - sims[:, layer.n_risk :].max(1) >= layer.margin)
    per_message = np.array([h.any() for h in np.split(hit, np.cumsum(counts)[:-1])])
    return per_message & np.array([r["kind"] not in ("bank", "bank_safe") for r in rows])


def buried_variants(rows: list[dict], mesc_csv: Path, per_message: int, rounds: tuple[str, ...]) -> list[dict]:
    """Synthetic rambles: each risk message of ``rounds`` (and as many of their hard negatives, so length alone teaches
    nothing) set among 1-6 everyday MESC train client turns that are not in the calibration sample. A variant keeps
    its source's group and round (same fold; held out with it, never scored)."""
    sample = set(mesc_sample(mesc_csv))
    with mesc_csv.open(encoding="utf-8") as handle:
        turns = {r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == "train" and r["Speaker"] == "Client"}
    filler = sorted(t for t in turns - sample if 4 <= len(t.split()) <= 20)
    rng = random.Random(SEED + 1)
    own = [r for r in rows if r["round"] in rounds and not r.get("synthetic")]
    risky = [r for r in own if r["risk"]]
    negatives = [r for r in own if r["kind"] == "hard_negative"]
    chosen = risky + rng.sample(negatives, min(len(negatives), len(risky)))
    out = []
    for row in chosen:
        for _ in range(per_message):
            before, after = rng.sample(filler, rng.randint(0, 3)), rng.sample(filler, rng.randint(1, 3))
            out.append(row | {"text": " ".join([*before, row["text"], *after]), "synthetic": True})
    return out


def mined_mesc(mesc_csv: Path, count: int) -> list[dict]:
    """Hard everyday negatives: MESC train client turns outside the calibration sample that hold risk vocabulary
    ("die", "pills", "end", "hurt", "pain", ...: the words the layer ranks windows by), a seeded sample of ``count``.
    Chosen by words, not by a model, so no writing round decides which are added; trained on, never scored."""
    from mesa.safety.semantic import _RISK_VOCABULARY

    sample = set(mesc_sample(mesc_csv))
    with mesc_csv.open(encoding="utf-8") as handle:
        turns = {r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == "train" and r["Speaker"] == "Client"}
    hard = sorted(t for t in turns - sample if t and _RISK_VOCABULARY.search(t.lower()))
    chosen = random.Random(SEED + 2).sample(hard, min(count, len(hard)))
    return [{"text": t, "risk": False, "category": "none", "kind": "mesc_mined", "group": t, "round": "mesc",
             "risk_kind": "none", "synthetic": True} for t in chosen]


# -- calibration and figures -----------------------------------------------------------------------------------


def rate(hit: np.ndarray, mask: np.ndarray) -> float:
    return float(hit[mask].mean()) if mask.any() else float("nan")


def calibrate(rows: list[dict], scores: np.ndarray, rules: np.ndarray, quiet: bool = False,
              limit: float = HARD_NEGATIVE_LIMIT) -> tuple[float, float]:
    """The lowest ``elevated`` threshold keeping hard negatives <= ``limit`` and the MESC sample <= 1 % escalated (with
    the rules beside it), and the lowest ``ask`` threshold with <= 5 % of the MESC sample asking."""
    own_negative = np.array([r["kind"] == "hard_negative" for r in rows])
    mesc = np.array([r["kind"] == "mesc" for r in rows])
    elevated = ask = None
    # every score seen is a candidate (a fixed grid stops short when the limit needs a threshold above 0.999)
    for t in np.unique(np.concatenate([np.arange(0.05, 1.0, 0.001), scores[scores >= 0.05]])):
        hit = rules | (scores >= t)
        if elevated is None and rate(hit, own_negative) <= limit and rate(hit, mesc) <= MESC_LIMIT:
            elevated = float(t)
        if ask is None and rate(scores >= t, mesc) <= ASK_LIMIT:
            ask = float(t)
    elevated = elevated if elevated is not None else 1.0
    ask = min(ask if ask is not None else elevated, elevated)
    if not quiet:
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


POOL_NAMES = {"mean": ("mean",), "meanmax": ("mean", "max"), "meancls": ("mean", "first"), "all": ("mean", "max", "first")}


def describe(args, n_rows: int) -> str:
    return (f"bench/train_safety_classifier.py (seed {SEED}, rank {args.rank}, top {args.top}, ffn {args.ffn}, "
            f"hidden {args.hidden}x{args.layers}, seeds {args.seeds}, pool {args.pool}, windows {args.windows}, "
            f"kind weights '{args.kind_weight}', n-gram buckets {args.ngrams} (decay {args.ngram_decay}), "
            f"buried {args.bury}, mined MESC {args.mine_mesc}, nearest rule {args.nearest}, {args.epochs} epochs"
            f"{f', encoder {args.encoder.name}' if args.encoder else ''}): "
            f"{n_rows} messages, thresholds from {args.folds}-fold grouped out-of-fold scores OR'd with the rules: "
            f"hard negatives <= {args.hard_negative_limit:.1%}, MESC train sample <= {MESC_LIMIT:.0%}, ask <= {ASK_LIMIT:.0%}")


def export_heads(members: list, args, elevated: float, ask: float, n_rows: int) -> None:
    """The ensemble's heads as plain arrays, a leading member axis on each risk-head array; the category heads are
    linear, so their mean is the mean of their logits."""
    from torch import nn

    def stacked(get):
        return np.stack([get(m).detach().numpy() for m in members])

    linears = [n for n, layer in enumerate(members[0].risk) if isinstance(layer, nn.Linear)] if args.hidden else []
    hidden = [(stacked(lambda m, n=n: m.risk[n].weight), stacked(lambda m, n=n: m.risk[n].bias)) for n in linears[:-1]]
    output = (lambda m: m.risk[linears[-1]]) if args.hidden else (lambda m: m.risk)
    path = args.out / (f"classifier-{args.encoder.name}.npz" if args.encoder else "classifier.npz")
    save_classifier(path, stacked(lambda m: output(m).weight[0]), stacked(lambda m: output(m).bias[0]),
                    stacked(lambda m: m.category.weight).mean(0), stacked(lambda m: m.category.bias).mean(0), CATEGORIES,
                    elevated, ask, describe(args, n_rows), nearest_rule=args.nearest, hidden=hidden or None,
                    pools=POOL_NAMES[args.pool], packed=args.windows == "packed",
                    ngrams=(stacked(lambda m: m.ngram.weight[0]), args.ngram_idf) if args.ngrams else None,
                    encoder=args.encoder.name if args.encoder else BASE_NAME)
    print(f"wrote {path}")


def export(model, args, elevated: float, ask: float, n_rows: int) -> None:
    from safetensors.numpy import load_file

    how = describe(args, n_rows)
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
                    hidden=None if hidden is None else (hidden.weight.detach().numpy(), hidden.bias.detach().numpy()),
                    ngrams=(model.ngram.weight.detach().numpy(), args.ngram_idf) if args.ngrams else None)
    print(f"wrote {args.out / 'classifier.npz'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mesc_csv", type=Path, help="MESC mesc_train_val.csv (its train split gives real non-crisis turns)")
    ap.add_argument("--batches", type=Path, default=ROOT / "tests" / "safety_batches")
    ap.add_argument("--rounds", default="", help="train only on these writing rounds, e.g. 1,3,4,5,6 (default: every "
                    "train_*.jsonl; the shipped classifier was trained on rounds 1,3,4,5,6)")
    ap.add_argument("--rank", type=int, default=0, help="LoRA rank (0: the frozen encoder, heads only)")
    ap.add_argument("--ffn", action="store_true", help="also adapt the feed-forward layers (else query/value only)")
    ap.add_argument("--top", type=int, default=2, help="adapt the top N of the 6 layers (the others are frozen, cached)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the encoder's output per window in this npz between runs")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=0, help="an MLP risk head with this many hidden units (0: linear)")
    ap.add_argument("--layers", type=int, default=1, help="hidden layers of the MLP risk head (--rank 0)")
    ap.add_argument("--seeds", type=int, default=1, help="an ensemble of this many heads from different seeds (--rank 0)")
    ap.add_argument("--pool", choices=sorted(POOLS), default="mean", help="window features: mean, +max, +first token")
    ap.add_argument("--windows", choices=("packed", "sentence"), default="packed", help="pack short sentences or not")
    ap.add_argument("--kind-weight", default="", help="loss weight per kind of risk, e.g. preparation=2,means=2")
    ap.add_argument("--bury", type=int, default=0, help="buried variants per round-3/4 message (and as many negatives)")
    ap.add_argument("--mine-mesc", type=int, default=0, help="train on this many more MESC train turns with risk words")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--ngrams", type=int, default=0, help="also read hashed character n-grams (this many buckets) "
                    "linearly beside the embedding")
    ap.add_argument("--ngram-decay", type=float, default=0.01, help="weight decay of the n-gram part")
    ap.add_argument("--batch", type=int, default=32, help="messages per step")
    ap.add_argument("--lora-lr", type=float, default=1e-3)
    ap.add_argument("--head-lr", type=float, default=1e-2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner-folds", type=int, default=3, help="folds choosing a held-out round's thresholds")
    ap.add_argument("--holdout-round", default="", help="leave these writing rounds out, one at a time (all, one round "
                    "or a list such as 1,3,4): train on the others, thresholds from their out-of-fold scores, figures on "
                    "the held-out round")
    ap.add_argument("--screen", action="store_true", help="LoRA: one held-out round, ranking only (no inner folds)")
    ap.add_argument("--combine", default="", help="add up these --summary-json files of disjoint held-out rounds "
                    "(comma-separated) as one run, print the verdict against --reference-json, train nothing")
    ap.add_argument("--hard-negative-limit", type=float, default=HARD_NEGATIVE_LIMIT,
                    help="the exported elevated threshold keeps this share of hard negatives escalated (out of fold)")
    ap.add_argument("--compare-limits", default="0.05", help="held-out rounds: also report thresholds chosen at these "
                    "hard-negative limits (comma-separated; the same models, other thresholds)")
    ap.add_argument("--pair", default="", help="FIRST.json,SECOND.json: two readers' --oof-json files (FIRST may be "
                    "A.json+B.json, read by message, A first); choose the pair's threshold "
                    "(mesa.safety.semantic.SecondOpinionLayer) and write second-opinion.json to --out")
    ap.add_argument("--recalibrate", type=Path, default=None, help="the default reader's --oof-json file: choose its "
                    "elevated threshold again from those scores (no training) and write classifier.npz to --out")
    ap.add_argument("--rules-now", action="store_true", help="with --pair or --recalibrate: the rule layer's verdicts "
                    "as it is now on each training message, in place of those the --oof-json files recorded")
    ap.add_argument("--packaged-scores", type=Path, default=None, help="write the packaged default reader's own scores "
                    "on the --rounds messages here, in --oof-json's format (for rounds it never trained on), and stop")
    ap.add_argument("--oof-json", type=Path, default=None, help="write every training message's grouped out-of-fold "
                    "score here (with the CV; the same folds for every reader)")
    ap.add_argument("--summary-json", type=Path, default=None, help="write the held-out rounds' counts (added up) here")
    ap.add_argument("--reference-json", type=Path, default=None, help="a reference run's --summary-json: print whether "
                    "this run passes the selection rule against it (summed over the same held-out rounds)")
    ap.add_argument("--encoder", type=Path, default=None, help="heads on another sentence encoder's frozen features "
                    "(a sentence-transformers folder named after the model, --rank 0; exports classifier-<name>.npz)")
    ap.add_argument("--nearest", action="store_true", help="keep the nearest-exemplar rule beside it (--rank 0 only)")
    ap.add_argument("--folds-run", type=int, default=0, help="run only the first N folds (LoRA; figures on their rows)")
    ap.add_argument("--mesc-fit", type=int, default=1000, help="MESC sample turns trained on (all are scored)")
    ap.add_argument("--out", type=Path, default=DATA, help="folder for classifier.npz (and adapter.npz)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the machine is shared: 1 or 2)")
    ap.add_argument("--dry-run", action="store_true", help="print the CV figures, write nothing")
    ap.add_argument("--no-cv", action="store_true", help="skip CV (thresholds from --elevated/--ask)")
    ap.add_argument("--elevated", type=float, default=0.5)
    ap.add_argument("--ask", type=float, default=0.3)
    args = ap.parse_args(argv)
    if args.nearest and args.rank:
        ap.error("--nearest reads base-model embeddings: only with --rank 0")
    if args.rank and (args.seeds > 1 or args.pool != "mean" or args.windows != "packed"):
        ap.error("--seeds, --pool and --windows are for the frozen encoder (--rank 0)")
    if args.encoder and (args.rank or args.nearest):
        ap.error("--encoder reads another encoder's frozen features: with --rank 0, without --nearest")
    if args.screen and not (args.rank and args.holdout_round and "," not in args.holdout_round and args.holdout_round != "all"):
        ap.error("--screen needs --rank and one --holdout-round")
    if args.rules_now and not (args.pair or args.recalibrate):
        ap.error("--rules-now is for --pair and --recalibrate (a training run reads the rules as they are now anyway)")
    args.limits = [args.hard_negative_limit, *(float(x) for x in args.compare_limits.split(",") if x)]
    if args.combine:
        combine_summaries([Path(p) for p in args.combine.split(",")], args)
        return 0
    rules_by_key = current_rules_by_key(args) if args.rules_now else None
    if args.pair:
        first, second = args.pair.split(",")
        calibrate_pair([*(Path(p) for p in first.split("+")), Path(second)], args, rules_by_key)
        return 0
    if args.recalibrate:
        recalibrate_reader(args.recalibrate, args, rules_by_key)
        return 0
    start = time.perf_counter()
    rows = training_rows(args.batches, args.mesc_csv, args.mesc_fit, tuple(args.rounds.split(",")) if args.rounds else None)
    if args.packaged_scores:  # the packaged reader runs in numpy: no torch
        save_packaged_scores(args.packaged_scores, rows, rule_hits(rows, args.cache))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    random.seed(SEED)
    np.random.seed(SEED)
    if args.bury:
        rows += buried_variants(rows, args.mesc_csv, args.bury, ("3", "4"))
    if args.mine_mesc:
        rows += mined_mesc(args.mesc_csv, args.mine_mesc)
    print(f"{len(rows)} training messages ({sum(r['risk'] for r in rows)} risk); {describe(args, len(rows))}")
    windows_of = tokenised_windows(rows, packed=args.windows == "packed")
    rules = rule_hits(rows, args.cache)
    run = run_frozen if args.rank == 0 else run_lora
    run(args, rows, windows_of, rules)
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0


def save_out_of_fold(path: Path | None, rows: list[dict], scores: np.ndarray, rules: np.ndarray) -> None:
    """Keep each training message's grouped out-of-fold score (``--oof-json``): runs of different readers use the same
    folds, so their scores can be combined and calibrated together afterwards."""
    if path is None:
        return
    keys = [hashlib.sha1(r["text"].encode("utf-8")).hexdigest() for r in rows]
    path.write_text(json.dumps({"keys": keys, "scores": [float(x) for x in scores], "rules": [bool(x) for x in rules],
                                "kinds": [r["kind"] for r in rows], "synthetic": [bool(r.get("synthetic")) for r in rows]}),
                    encoding="utf-8")


def save_packaged_scores(path: Path, rows: list[dict], rules: np.ndarray) -> None:
    """``--packaged-scores OUT.json``: the packaged default reader's own score for each message, as the product reads
    it, in ``--oof-json``'s format. Honest only on rounds it never trained on (pass those with ``--rounds``)."""
    from mesa.safety.semantic import load_semantic_layer

    reader = load_semantic_layer()
    scores = []
    for row in rows:
        signal = reader.assess(row["text"])
        scores.append(0.0 if signal is None else float(signal.score))
    save_out_of_fold(path, rows, np.array(scores), rules)
    print(f"wrote the packaged reader's scores on {len(rows)} messages to {path}")


def calibrate_pair(paths: list[Path], args, rules_by_key: dict[str, bool] | None = None) -> None:
    """``--pair FIRST.json,SECOND.json``: the two readers' out-of-fold scores (``--oof-json`` runs) combined as
    :class:`mesa.safety.semantic.SecondOpinionLayer` combines them at inference (below the first reader's packaged
    ``ask`` threshold its score alone, never escalating; above, the mean of the two), and the pair's ``elevated``
    threshold chosen as every classifier's; written to ``second-opinion.json`` beside the classifiers.

    FIRST may be several files joined by ``+`` (``oof.json+packaged.json``): read by message, the earlier file's score
    first. So the packaged first reader's own scores (``--packaged-scores``) can stand for rounds it never trained on
    beside its out-of-fold scores on the rounds it did. Every message SECOND scored needs a first-reader score.

    ``rules_by_key`` (``--rules-now``): the rule layer's verdicts as it is now, in place of those the files recorded."""
    from mesa.safety.semantic import SECOND_OPINION, load_classifier

    first_paths, second_path = paths[:-1], paths[-1]
    second = json.loads(second_path.read_text(encoding="utf-8"))
    first_by_key: dict[str, float] = {}
    for path in first_paths:
        scored = json.loads(path.read_text(encoding="utf-8"))
        for key, score in zip(scored["keys"], scored["scores"], strict=True):
            first_by_key.setdefault(key, score)
    missing = sum(key not in first_by_key for key in second["keys"])
    if missing:
        raise SystemExit(f"--pair: {missing} message(s) the second reader scored have no first-reader score (add a "
                         "--packaged-scores file for the rounds the first reader's --oof-json run left out)")
    first = dict(second, scores=[first_by_key[key] for key in second["keys"]])
    gate = load_classifier("packaged")["ask"]
    a, b = np.array(first["scores"]), np.array(second["scores"])
    real = ~np.array(first["synthetic"])
    rows = [{"kind": k} for k, keep in zip(first["kinds"], real, strict=True) if keep]
    rules = stored_or_current_rules(second, rules_by_key)[real]
    paired = np.where(a >= gate, (a + b) / 2, 0.0)[real]
    elevated, _ = calibrate(rows, paired, rules, quiet=True, limit=args.hard_negative_limit)
    for name, scores, threshold in (("first reader alone", a[real], calibrate(rows, a[real], rules, quiet=True, limit=args.hard_negative_limit)[0]),
                                    ("the pair", paired, elevated)):
        hit = rules | (scores >= threshold)
        print(f"{name} (threshold {threshold:.6f}), out of fold: " + ", ".join(
            f"{k} {100 * rate(hit, np.array([r['kind'] == k for r in rows])):.1f} %" for k in ("explicit", "implicit", "hard_negative", "mesc")))
    print(f"the pair: gate {gate:.6f} (the first reader's ask), elevated {elevated:.6f}")
    if not args.dry_run:
        path = args.out / SECOND_OPINION
        rules_note = ", the rules as they are now" if rules_by_key is not None else ""
        how = (f"bench/train_safety_classifier.py --pair {'+'.join(p.name for p in first_paths)},{second_path.name} "
               f"(hard negatives <= {args.hard_negative_limit:.1%}, MESC sample <= {MESC_LIMIT:.0%}{rules_note})")
        path.write_text(json.dumps({"gate": gate, "elevated": elevated, "how": how}, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")


def stored_or_current_rules(scored: dict, rules_by_key: dict[str, bool] | None) -> np.ndarray:
    """The rule verdicts an ``--oof-json`` file recorded, or with ``rules_by_key`` the rule layer's as it is now."""
    if rules_by_key is None:
        return np.array(scored["rules"])
    missing = sum(key not in rules_by_key for key in scored["keys"])
    if missing:
        raise SystemExit(f"--rules-now: {missing} scored message(s) are not among the training messages of --batches")
    return np.array([rules_by_key[key] for key in scored["keys"]])


def current_rules_by_key(args) -> dict[str, bool]:
    """``--rules-now``: the rule layer's verdict, as it is now, on every training message (all rounds), by text digest.
    Thresholds chosen from stored out-of-fold scores then sit beside the rules that will run with them."""
    rows = training_rows(args.batches, args.mesc_csv, args.mesc_fit)
    hits = rule_hits(rows, args.cache)
    return {hashlib.sha1(r["text"].encode("utf-8")).hexdigest(): bool(hit) for r, hit in zip(rows, hits, strict=True)}


def recalibrate_reader(path: Path, args, rules_by_key: dict[str, bool] | None = None) -> None:
    """``--recalibrate OOF.json``: choose the default reader's ``elevated`` threshold again from its stored out-of-fold
    scores (no training), as every classifier's is chosen, and write the packaged ``classifier.npz`` to ``--out`` with
    only ``elevated`` (and the record in ``how``) changed. ``ask`` reads the scores alone, so it stays."""
    scored = json.loads(path.read_text(encoding="utf-8"))
    real = ~np.array(scored["synthetic"])
    rows = [{"kind": k} for k, keep in zip(scored["kinds"], real, strict=True) if keep]
    scores, rules = np.array(scored["scores"])[real], stored_or_current_rules(scored, rules_by_key)[real]
    with (DATA / "classifier.npz").open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    before = float(arrays["elevated"])
    elevated, _ = calibrate(rows, scores, rules, quiet=True, limit=args.hard_negative_limit)
    for name, threshold in (("as packaged", before), ("chosen again", elevated)):
        hit = rules | (scores >= threshold)
        print(f"{name} (elevated {threshold:.6f}), out of fold: " + ", ".join(
            f"{k} {100 * rate(hit, np.array([r['kind'] == k for r in rows])):.1f} %" for k in ("explicit", "implicit", "hard_negative", "mesc")))
    if not args.dry_run:
        rules_note = "the rules as they are now" if rules_by_key is not None else "the rules it recorded"
        arrays["elevated"] = np.array(elevated)
        arrays["how"] = np.array(f"{arrays['how']}; elevated chosen again by --recalibrate {path.name} with {rules_note} "
                                 f"(hard negatives <= {args.hard_negative_limit:.1%}, MESC sample <= {MESC_LIMIT:.0%})")
        args.out.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = args.out / "classifier.npz"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        print(f"wrote {target}")


def rule_hits(rows: list[dict], cache: Path | None) -> np.ndarray:
    """Whether the rule layer escalates each message; kept beside ``--cache`` (keyed by the text and a digest of the
    rule files, so changed rules are run again)."""
    policy = SafetyPolicy(semantic=False)
    rules_digest = hashlib.sha1(b"".join((ROOT / "mesa" / "safety" / f).read_bytes() for f in ("rules.py", "patterns.py", "textfold.py")))
    known: dict[str, bool] = {}
    path = None if cache is None else cache.with_suffix(f".rules-{rules_digest.hexdigest()[:12]}.json")
    if path is not None and path.exists():
        known = json.loads(path.read_text(encoding="utf-8"))
    hits = []
    for row in rows:
        key = hashlib.sha1(row["text"].encode("utf-8")).hexdigest()
        if key not in known:
            known[key] = policy.assess_rules(row["text"]).crisis
        hits.append(known[key])
    if path is not None:
        path.write_text(json.dumps(known), encoding="utf-8")
    return np.array(hits)


def run_frozen(args, rows: list[dict], windows_of, rules: np.ndarray) -> None:
    """Heads on the frozen encoder's cached features: leave-one-round-out and grouped CV figures, then the export."""
    if args.encoder:
        texts_of = window_texts(rows, packed=args.windows == "packed")
        cache = SentenceEncoderCache(args.cache, args.encoder)
        cache.fill(texts_of)
        features = (*cache.features(texts_of, args.pool), None)
    else:
        cache = PooledCache(args.cache)
        cache.fill(windows_of)
        features = (*cache.features(windows_of, args.pool), None)
    if args.ngrams:
        ngrams, args.ngram_idf = ngram_features(rows, window_texts(rows, packed=args.windows == "packed"), args.ngrams)
        features = (*features[:2], ngrams)
    if args.nearest:
        rules = rules | nearest_hits_from_features(rows, features)
    if args.holdout_round:
        run_holdout(args, rows, FrozenHeads(rows, features, args), rules)
    elevated, ask = args.elevated, args.ask
    if not args.no_cv:
        scores = FrozenHeads(rows, features, args).out_of_fold(list(range(len(rows))), args.folds)
        real = np.array([not r.get("synthetic") for r in rows])  # buried variants train, they are not measured
        shown = [r for r, keep in zip(rows, real, strict=True) if keep]
        print(f"\ngrouped {args.folds}-fold CV, the rules alone ({len(shown)} messages):")
        report(shown, np.zeros(len(shown)), rules[real], 1.0)
        elevated, ask = calibrate(shown, scores[real], rules[real], limit=args.hard_negative_limit)
        save_out_of_fold(args.oof_json, rows, scores, rules)
        print("  by kind of implicit risk:")
        print_kind_rates(kind_rates(shown, rules[real] | (scores[real] >= elevated)))
    if not args.dry_run:
        members = fit_members(rows, features, [i for i, r in enumerate(rows) if r.get("fit", True)], args)
        export_heads(members, args, elevated, ask, len(rows))


def screen_lora_round(rows: list[dict], windows_of, cache: LowerCache, rules: np.ndarray, args, held: str, ngrams=None) -> None:
    """A LoRA screen on one held-out round (a full leave-one-round-out with inner folds does not fit this CPU): the
    adapter and head trained on the other rounds, the round's own messages scored, and the recall at the threshold
    holding its hard negatives at 5 % printed (ranking only: compare with the frozen run's figure for that round)."""
    train_index, test_index = holdout_split(rows, held)
    model = train(rows, windows_of, cache, [i for i in train_index if rows[i].get("fit", True)], args, ngrams)
    scores = message_scores(model, cache, windows_of, test_index, ngrams)
    test_rows = [rows[i] for i in test_index]
    matched = matched_recall(test_rows, scores, rules[test_index], MATCHED_NEGATIVES)
    print(f"\nLoRA screen, held-out round {held} ({len(test_index)} messages), ranking only (hard negatives <= "
          f"{MATCHED_NEGATIVES:.0%} of the round): " + ", ".join(f"{k} {100 * _share(matched[k]):.1f} % ({matched[k][0]}/{matched[k][1]})"
                                                               for k in ("explicit", "implicit")))


def run_lora(args, rows: list[dict], windows_of, rules: np.ndarray) -> None:
    """The encoder fine-tuned with a low-rank adapter (supported, not shipped): grouped CV figures, then the export."""
    cache = LowerCache(args.cache, args.top)
    cache.fill(build_model(0, False, args.top), windows_of)
    ngrams = None
    if args.ngrams:
        ngrams, args.ngram_idf = ngram_features(rows, window_texts(rows), args.ngrams)
    if args.screen:
        screen_lora_round(rows, windows_of, cache, rules, args, args.holdout_round, ngrams)
        return
    if args.holdout_round:
        run_holdout(args, rows, AdaptedEncoder(rows, windows_of, cache, args, ngrams), rules)
    elevated, ask = args.elevated, args.ask
    if not args.no_cv:
        scores, scored = out_of_fold(rows, windows_of, cache, args, ngrams)
        held_out = [r for r, s in zip(rows, scored, strict=True) if s]
        print(f"\nthe rules alone ({len(held_out)} held-out messages):")
        report(held_out, np.zeros(len(held_out)), rules[scored], 1.0)
        elevated, ask = calibrate(held_out, scores[scored], rules[scored], limit=args.hard_negative_limit)
        save_out_of_fold(args.oof_json, rows, scores, rules)
    if not args.dry_run:
        model = train(rows, windows_of, cache, [i for i, r in enumerate(rows) if r.get("fit", True)], args, ngrams)
        export(model, args, elevated, ask, len(rows))


if __name__ == "__main__":
    raise SystemExit(main())
