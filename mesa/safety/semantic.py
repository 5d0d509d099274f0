"""The semantic layer: an embedding classifier over a curated bank of risk and non-risk exemplars.

Rules catch the words; this layer catches the meaning when the words are new ("I gave my dog to my
neighbour, she'll take better care of him after this weekend"). Each window of the message (a sentence
or a few) is embedded with all-MiniLM-L6-v2 (:mod:`mesa.safety.minilm`, numpy, no network) and compared
with the exemplars of ``data/exemplars.json``: per category and kind of risk (means and access,
preparation and farewell, passive ideation and euphemism, self-harm in its own words, harm with means or
a threat, abuse) and hard negatives (idioms, past recovery, third parties, professional talk, games,
fiction about others, everyday sadness, therapy talk).

Deciders, each per window, the higher level wins:

- a **trained classifier** (``data/classifier.npz``: a risk head, and a category head, softmax, over the window's
  features; the risk head is linear or an MLP, one head or an ensemble whose probabilities are averaged, and the
  features the mean-pooled embedding or that with max-pooled or first-token ones, as the file says; a file with
  ``ngram_weights`` also adds to each member's logit a linear reading of the window's hashed character n-grams,
  :func:`char_ngrams`; numpy at inference: a few small matrix products and a sigmoid), trained by
  ``bench/train_safety_classifier.py`` on the messages of ``tests/safety_batches/train_*.jsonl``, the tuning batch,
  the bank and a seeded sample of MESC train client turns. When the classifier names an adapter, the encoder is
  MiniLM with the low-rank adapter ``data/adapter.npz`` merged into its weights at load (fine-tuned with the heads;
  see :mod:`mesa.safety.minilm`); heads and encoder that do not belong together raise ``AdapterMismatchError``.
  Probability >= ``elevated`` gives ``elevated``; >= ``ask`` gives ``low`` (no crisis on its own, but the LLM
  judgement is worth asking and may confirm it);
- the **nearest-exemplar rule**, when the classifier was calibrated with it (``nearest_rule`` in its file) or no
  classifier is loaded (``SemanticLayer(classifier=None)``): a window whose nearest risk exemplar is close
  (``risk_threshold``) and clearly closer than its nearest safe exemplar (``margin``) is ``elevated``; somewhat close
  (``ask_threshold``) is ``low``. Thresholds in the bank's ``calibration`` (``bench/safety_bench.py --calibrate``).
  Either way the nearest risk exemplar is named in the evidence.

A message's verdict is its riskiest window, so one buried sentence in a long ramble still counts.

Two readers (opt-in, ``SafetyPolicy(semantic="large")``): :class:`SecondOpinionLayer` runs this layer on every turn
and, on the turns it flags, a second layer whose heads read all-mpnet-base-v2's frozen embeddings
(``data/classifier-all-mpnet-base-v2.npz``, :mod:`mesa.safety.mpnet`); the mean of the two scores decides.

Size policy: a message is cut into windows of up to :data:`WINDOW_WORDS` words. Messages with more than
:data:`MAX_WINDOWS` windows are read in part by this layer: the windows with the most risk vocabulary,
plus the first and the last (the rule layer still reads every character).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from mesa.errors import ClassifierFileError
from mesa.safety.storage import cache_root
from mesa.safety.textfold import fold

BASE_NAME = "all-MiniLM-L6-v2"  # as mesa.safety.minilm names it (not imported here: that module needs the extra)
LARGE_NAME = "all-mpnet-base-v2"  # the opt-in larger reader's encoder (mesa.safety.mpnet.MODEL_NAME)

__all__ = ["SecondOpinionLayer", "SemanticLayer", "SemanticSignal", "load_semantic_layer", "save_classifier"]

log = logging.getLogger("mesa.safety")

WINDOW_WORDS = 24
"""Longest window (words) embedded at once; sentences are packed into windows up to this size."""
MAX_WINDOWS = 32
"""Most windows embedded for one message (long messages: the riskiest-looking ones, see the module doc)."""

_SENTENCE = re.compile(r"[^.!?;\n]+[.!?;\n]*")
_CLAUSE = re.compile(r"[^,]+,?")
_RISK_VOCABULARY = re.compile(
    r"\b(?:die|dying|dead|death|kill|suicid\w*|end|life|live|alive|gone|goodbye|bye|last|pills?|tablets|dose|rope|gun|"
    r"knife|blade|razor|jump|bridge|cut|burn|hurt|harm|blood|bleed|starv\w*|burden|sleep|wake|forever|anymore|plan|"
    r"tonight|note|letter|will|sorry|pain|hit|beat|threat\w*|scared|afraid|lethal|enough|weapon)\b"
)


@dataclass(frozen=True)
class SemanticSignal:
    """The layer's verdict on one message: level, category, and the window and exemplar behind it."""

    level: str
    category: str
    kind: str
    score: float
    margin: float
    window: str
    exemplar: str

    def as_evidence(self) -> str:
        return (
            f"semantic:{self.category}/{self.kind} {self.level} (similarity {self.score:.2f}, margin {self.margin:+.2f}): "
            f"\"{self.window[:100]}\" ~ \"{self.exemplar[:80]}\""
        )


def _bank_text() -> str:
    return resources.files("mesa.safety").joinpath("data", "exemplars.json").read_text(encoding="utf-8")


def windows(text: str, packed: bool = True) -> list[str]:
    """The message cut into windows of whole sentences, each at most :data:`WINDOW_WORDS` words.

    ``packed``: short sentences share a window up to that size (else each sentence is a window of its own)."""
    out: list[str] = []
    current: list[str] = []
    for sentence in _pieces(fold(text)):
        words = sentence.split()
        while len(words) > WINDOW_WORDS:  # a run-on sentence: cut it into pieces
            if current:
                out.append(" ".join(current))
                current = []
            out.append(" ".join(words[:WINDOW_WORDS]))
            words = words[WINDOW_WORDS:]
        if (len(current) + len(words) > WINDOW_WORDS or not packed) and current:
            out.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        out.append(" ".join(current))
    return out


def _pieces(text: str) -> list[str]:
    """Sentences; a sentence longer than a window is cut at its commas first (run-on rambles bury the risk)."""
    out: list[str] = []
    for sentence in _SENTENCE.findall(text):
        out.extend(_CLAUSE.findall(sentence) if len(sentence.split()) > WINDOW_WORDS else [sentence])
    return out


def _choose(parts: list[str]) -> list[str]:
    """At most :data:`MAX_WINDOWS` windows: the first, the last, then the ones with the most risk words."""
    if len(parts) <= MAX_WINDOWS:
        return parts
    scores = [(len(_RISK_VOCABULARY.findall(p.lower())), -i) for i, p in enumerate(parts)]
    ranked = sorted(range(1, len(parts) - 1), key=lambda i: scores[i], reverse=True)
    keep = sorted({0, len(parts) - 1, *ranked[: MAX_WINDOWS - 2]})
    return [parts[i] for i in keep]


class SemanticLayer:
    """``SemanticLayer().assess(text)`` → :class:`SemanticSignal` (or ``None`` for an empty message)."""

    def __init__(
        self,
        encoder: Any = None,
        bank: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        classifier: str | Path | None = "packaged",
    ) -> None:
        import numpy as np

        self._np = np
        self.classifier = load_classifier(classifier) if classifier is not None else None
        self.encoder = encoder or _encoder_for(classifier, self.classifier)
        _check_encoder(self.encoder, self.classifier)
        raw = _bank_text() if bank is None else json.dumps(bank, sort_keys=True)
        self.bank = json.loads(raw)
        self.version = self.bank.get("version", "custom")
        calibration = self.bank.get("calibration", {})
        self.risk_threshold = float(calibration.get("risk_threshold", 0.62))
        self.margin = float(calibration.get("margin", 0.04))
        self.ask_threshold = float(calibration.get("ask_threshold", 0.5))
        self.labels: list[tuple[str, str, str]] = []  # (category, kind, text); safe rows have category "none"
        for category, kinds in self.bank["risk"].items():
            for kind, texts in kinds.items():
                self.labels += [(category, kind, t) for t in texts]
        self.n_risk = len(self.labels)
        for kind, texts in self.bank["safe"].items():
            self.labels += [("none", kind, t) for t in texts]
        self.matrix = self._bank_embeddings(raw, cache_dir)
        self._assess_cached = lru_cache(maxsize=64)(self._assess)

    def _bank_embeddings(self, raw: str, cache_dir: str | Path | None) -> Any:
        """The exemplars' embeddings: shipped with the package for the built-in bank, else computed once and
        cached (npz, no pickle) under the mesa cache folder, keyed by the bank's digest."""
        digest = bank_digest(raw, getattr(self.encoder, "identity", BASE_NAME))
        packaged = resources.files("mesa.safety").joinpath("data", "exemplars.npz")
        folder = Path(cache_dir) if cache_dir is not None else cache_root()
        cached = folder / f"safety-bank-{digest}.npz"
        for source in (packaged, cached):
            matrix = self._load_matrix(source, digest)
            if matrix is not None:
                return matrix
        matrix = self.encoder.encode([fold(t) for _, _, t in self.labels])
        save_bank_embeddings(cached, matrix, digest)
        return matrix

    def _load_matrix(self, source: Any, digest: str) -> Any:
        try:
            with source.open("rb") as handle, self._np.load(handle, allow_pickle=False) as data:
                if str(data["digest"]) != digest:
                    return None
                matrix = data["embeddings"]
        except (OSError, KeyError, ValueError):
            return None
        return matrix if matrix.shape == (len(self.labels), getattr(self.encoder, "dim", 384)) else None

    def similarities(self, texts: list[str]) -> Any:
        """Cosine similarity of each text to each exemplar: ``(len(texts), n_exemplars)``."""
        return self.encoder.encode(texts) @ self.matrix.T

    def assess(self, text: str) -> SemanticSignal | None:
        """The strongest signal over the message's windows (cached for the last few messages: every layer of
        a turn, and a retried turn, ask about the same text)."""
        return self._assess_cached(text)

    def _assess(self, text: str) -> SemanticSignal | None:
        c = self.classifier
        parts = _choose(windows(text, packed=c is None or c["packed"]))
        if not parts:
            return None
        if c is None or c["pools"] == ("mean",):
            vectors = features = self.encoder.encode(parts)
        else:  # the classifier reads more than the mean; the bank is compared with the mean (its first 384 values)
            features = self.encoder.encode_pooled(parts, c["pools"])
            vectors = features[:, :384]
        sims = vectors @ self.matrix.T
        ngrams = None if c is None or c["ngram_weights"] is None else char_ngrams(parts, c["ngram_idf"])
        probabilities = [None] * len(parts) if c is None else risk_probabilities(c, features, ngrams)
        best: SemanticSignal | None = None
        for vector, feature, row, part, p in zip(vectors, features, sims, parts, probabilities, strict=True):
            signal = self._window_signal(vector, row, part) if c is None else self._classified_signal(feature, p, row, part)
            if best is None or (_LEVEL_RANK[signal.level], signal.score) > (_LEVEL_RANK[best.level], best.score):
                best = signal
        return best

    def _classified_signal(self, features: Any, probability: float, row: Any, window: str) -> SemanticSignal:
        """The trained classifier's verdict on one window, or the nearest-exemplar rule's when that is higher (the
        two catch different messages; the thresholds were calibrated on both together)."""
        np = self._np
        c = self.classifier
        probability = float(probability)
        level = "elevated" if probability >= c["elevated"] else "low" if probability >= c["ask"] else "none"
        if c["nearest_rule"]:  # the bank is compared with the mean-pooled embedding, the features' first 384 values
            nearest = self._window_signal(features[:384], row, window)
            if _LEVEL_RANK[nearest.level] > _LEVEL_RANK[level]:
                return nearest
        if level == "none":
            return SemanticSignal("none", "none", "classifier", probability, probability - c["elevated"], window, "")
        category = c["categories"][int(np.argmax(c["category_weights"] @ features + c["category_bias"]))]
        _, kind, exemplar = self.labels[int(np.argmax(row[: self.n_risk]))]  # the nearest risk exemplar, as evidence
        return SemanticSignal(level, category, f"classifier~{kind}", probability, probability - c["elevated"], window, exemplar)

    def _window_signal(self, vector: Any, row: Any, window: str) -> SemanticSignal:
        """The nearest-exemplar rule (used when no classifier is loaded: ``classifier=None``)."""
        np = self._np
        risk_index = int(np.argmax(row[: self.n_risk]))
        risk = float(row[risk_index])
        safe_index = self.n_risk + int(np.argmax(row[self.n_risk :]))
        margin = risk - float(row[safe_index])
        if risk >= self.risk_threshold and margin >= self.margin:
            level = "elevated"
        elif risk >= self.ask_threshold:
            level = "low"
        else:
            level = "none"
        category, kind, exemplar = self.labels[risk_index]
        if level == "none":
            category = "none"
        return SemanticSignal(level, category, kind, risk, margin, window, exemplar)


class SecondOpinionLayer:
    """Two readers: ``first`` reads every turn; on the turns it flags (its score at ``gate`` or above) ``second`` reads
    the turn too, and the turn escalates when the mean of their two scores reaches ``elevated``, else it stays ``low``
    (the LLM judgement is asked). Below the gate the first reader's verdict stands, so most turns cost what the first
    reader costs. The packaged pair (``SafetyPolicy(semantic="large")``): the default reader, then the larger reader
    (all-mpnet-base-v2); its thresholds were chosen on training data (docs/safety-classifier.md, "Two readers")."""

    def __init__(self, first: Any, second: Any, gate: float, elevated: float) -> None:
        self.first, self.second, self.gate, self.elevated = first, second, float(gate), float(elevated)

    def assess(self, text: str) -> SemanticSignal | None:
        signal = self.first.assess(text)
        if signal is None or signal.score < self.gate:
            return signal
        other = self.second.assess(text)
        if other is None:
            return signal
        mean = (signal.score + other.score) / 2
        level = "elevated" if mean >= self.elevated else "low"
        category = signal.category if signal.category != "none" else other.category
        return SemanticSignal(level, category, f"pair~{signal.kind}", mean, mean - self.elevated, signal.window, signal.exemplar)


NGRAM_SIZES = (3, 4, 5)
"""Lengths of the character n-grams the classifier may read beside the embedding (``ngram_weights`` in its file)."""


def char_ngrams(texts: list[str], idf: Any) -> Any:
    """Hashed character n-grams of each window: ``(len(texts), len(idf))`` float32 rows, L2-normalised.

    The window's (already folded) text is lower-cased with its spaces collapsed and a space at each end, so word
    starts and ends count; each n-gram of :data:`NGRAM_SIZES` (of its UTF-8 bytes: folded text is mostly ASCII) falls
    into one of ``len(idf)`` buckets by CRC-32 (stable across processes, unlike ``hash``); a bucket's weight is
    ``1 + log(count)`` times its ``idf``. The trainer calls this same function, so what it learnt from is what the
    layer computes."""
    import numpy as np

    buckets = len(idf)
    out = np.zeros((len(texts), buckets), dtype=np.float32)
    for row, text in enumerate(texts):
        padded = f" {' '.join(text.lower().split())} "
        data = padded.encode("utf-8")
        counts = Counter(zlib.crc32(data[i : i + n]) % buckets for n in NGRAM_SIZES for i in range(len(data) - n + 1))
        if counts:
            out[row, list(counts)] = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))
    out *= np.asarray(idf, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def risk_probabilities(classifier: dict[str, Any], features: Any, ngrams: Any = None) -> Any:
    """The risk head's probability for each row of ``features`` ``(n, d)``: each member's hidden ReLU layers, its
    logistic output, then the members' mean (an ensemble of one is a single head). A classifier with
    ``ngram_weights`` also adds, per member, a linear reading of the windows' character n-grams (``ngrams``, from
    :func:`char_ngrams`) to the logit."""
    import numpy as np

    x = features[None].astype(np.float32)  # (1, n, d): broadcast over the members
    for weights, bias in classifier["hidden"]:  # weights (members, out, in), bias (members, out)
        x = np.maximum(x @ weights.transpose(0, 2, 1) + bias[:, None, :], 0.0)
    logits = (x @ classifier["risk_weights"][:, :, None])[..., 0].astype(np.float64) + classifier["risk_bias"][:, None]
    if classifier.get("ngram_weights") is not None:
        if ngrams is None:
            raise ValueError("this classifier reads character n-grams: pass char_ngrams(windows, classifier['ngram_idf'])")
        logits = logits + (classifier["ngram_weights"] @ ngrams.T).astype(np.float64)  # (members, n)
    # the logistic function without overflow, in float64: thresholds near 1 need the resolution float32 lacks
    return (0.5 + 0.5 * np.tanh(0.5 * logits)).mean(0)


def _hidden_layers(data: Any) -> list[tuple[Any, Any]]:
    """The MLP's hidden layers ``[(weights (members, out, in), bias (members, out)), ...]`` (files of one head store
    them without the member axis; files older than the MLP have none)."""
    import numpy as np

    layers = []
    for name in ("hidden", *(f"hidden{n}" for n in range(2, 9))):
        if f"{name}_weights" not in data.files:
            break
        weights, bias = data[f"{name}_weights"].astype(np.float32), data[f"{name}_bias"].astype(np.float32)
        layers.append((weights if weights.ndim == 3 else weights[None], bias if bias.ndim == 2 else bias[None]))
    return layers


def load_classifier(source: str | Path) -> dict[str, Any]:
    """The classifier's weights (npz, no pickle): ``"packaged"`` or a path written by :func:`save_classifier`."""
    import numpy as np

    file = _classifier_file(source)
    with file.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        risk_weights = data["risk_weights"].astype(np.float32)
        return {
            "risk_weights": risk_weights if risk_weights.ndim == 2 else risk_weights[None],
            "risk_bias": np.atleast_1d(data["risk_bias"]).astype(np.float64),
            "category_weights": data["category_weights"].astype(np.float32),
            "category_bias": data["category_bias"].astype(np.float32),
            "categories": [str(c) for c in data["categories"]],
            "elevated": float(data["elevated"]),
            "ask": float(data["ask"]),
            "how": str(data["how"]),
            # absent from files older than the adapter: no adapter, and the nearest-exemplar rule beside the classifier
            "adapter": str(data["adapter"]) if "adapter" in data.files else "",
            "nearest_rule": bool(data["nearest_rule"]) if "nearest_rule" in data.files else True,
            # an MLP risk head: hidden ReLU layers before the logistic output (none: the head is linear)
            "hidden": _hidden_layers(data),
            # what a window's features are (absent: the mean-pooled embedding) and how windows are cut
            "pools": tuple(str(p) for p in data["pools"]) if "pools" in data.files else ("mean",),
            "packed": bool(data["packed"]) if "packed" in data.files else True,
            # a linear reading of the windows' character n-grams beside the MLP (absent: none)
            "ngram_weights": _member_rows(data["ngram_weights"]) if "ngram_weights" in data.files else None,
            "ngram_idf": data["ngram_idf"].astype(np.float32) if "ngram_idf" in data.files else None,
            # the encoder the heads read (absent: MiniLM, the only one before the larger reader)
            "encoder": str(data["encoder"]) if "encoder" in data.files else BASE_NAME,
        }


def _member_rows(weights: Any) -> Any:
    """Per-member weights ``(members, d)`` (a single head's file stores ``(d,)``)."""
    import numpy as np

    weights = weights.astype(np.float32)
    return weights if weights.ndim == 2 else weights[None]


def save_classifier(path: Path, risk_weights: Any, risk_bias: Any, category_weights: Any, category_bias: Any,
                    categories: list[str], elevated: float, ask: float, how: str, adapter: str = "",
                    nearest_rule: bool = True, hidden: tuple[Any, Any] | list[tuple[Any, Any]] | None = None,
                    pools: tuple[str, ...] = ("mean",), packed: bool = True, ngrams: tuple[Any, Any] | None = None,
                    encoder: str = BASE_NAME) -> None:
    """Write the classifier's weights and thresholds as an npz of plain arrays (readable with ``allow_pickle=False``).

    ``adapter``: the digest of the MiniLM adapter the heads were trained on ("" for the base model);
    ``nearest_rule``: whether the nearest-exemplar rule decides beside the classifier (thresholds calibrated so);
    ``hidden``: an MLP risk head's ReLU layers, ``(weights (h, d), bias (h,))`` or a list of them (``risk_weights``
    then has h); an ensemble has a leading member axis on every risk-head array (``risk_bias`` one per member);
    ``pools``: the window features the heads read (``mean``, ``max``, ``first``: :meth:`MiniLM.encode_pooled`);
    ``packed``: short sentences share a window (else one window per sentence);
    ``ngrams``: ``(weights (members, buckets), idf (buckets,))`` of a linear reading of the windows' character n-grams
    (:func:`char_ngrams`) added to each member's logit;
    ``encoder``: the sentence encoder whose embeddings the heads read (a name of :data:`ENCODERS`)."""
    import numpy as np

    layers = [] if hidden is None else [hidden] if isinstance(hidden, tuple) else list(hidden)
    names = ["hidden" if n == 1 else f"hidden{n}" for n in range(1, len(layers) + 1)]
    arrays = {f"{name}_{part}": np.asarray(array, dtype=np.float32)
              for name, layer in zip(names, layers, strict=True) for part, array in zip(("weights", "bias"), layer, strict=True)}
    if ngrams is not None:
        arrays |= {"ngram_weights": np.asarray(ngrams[0], dtype=np.float32), "ngram_idf": np.asarray(ngrams[1], dtype=np.float32)}

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        np.savez(
            handle,
            risk_weights=np.asarray(risk_weights, dtype=np.float32),
            risk_bias=np.asarray(risk_bias, dtype=np.float64),
            category_weights=np.asarray(category_weights, dtype=np.float32),
            category_bias=np.asarray(category_bias, dtype=np.float32),
            categories=np.array(categories, dtype=str),
            elevated=np.array(elevated),
            ask=np.array(ask),
            how=np.array(how),
            adapter=np.array(adapter),
            nearest_rule=np.array(nearest_rule),
            pools=np.array(pools, dtype=str),
            packed=np.array(packed),
            encoder=np.array(encoder),
            **arrays,
        )


_LEVEL_RANK = {"none": 0, "low": 1, "elevated": 2, "imminent": 3}


def bank_digest(raw: str, encoder: str = BASE_NAME) -> str:
    """What identifies a bank's embeddings: its text and the model (with its adapter, if any)."""
    return hashlib.sha256((encoder + "\n" + raw).encode("utf-8")).hexdigest()[:16]


PACKAGED_CLASSIFIERS = {"packaged": "classifier.npz", "packaged-large": f"classifier-{LARGE_NAME}.npz"}
"""The classifiers shipped in ``mesa/safety/data``: the default reader (MiniLM with its adapter) and the opt-in larger
reader (heads on all-mpnet-base-v2's frozen embeddings, ``mesa-esc[safety-large]``)."""

READERS = {"default": "packaged", "large": "packaged-large"}
"""What ``SafetyPolicy(semantic=...)`` may name (``True`` is ``"default"``), and the classifier each reads with."""

SECOND_OPINION = "second-opinion.json"
"""The packaged pair's thresholds (``gate``: the default reader's score from which the larger reader is asked;
``elevated``: the two scores' mean that escalates), written by ``bench/train_safety_classifier.py --pair``."""


def _classifier_file(source: str | Path) -> Any:
    if isinstance(source, str) and source in PACKAGED_CLASSIFIERS:
        return resources.files("mesa.safety").joinpath("data", PACKAGED_CLASSIFIERS[source])
    return Path(source)


def _minilm(source: str | Path | None, classifier: dict[str, Any] | None) -> Any:
    """MiniLM as the classifier was trained on it: with its adapter (shipped beside it as ``adapter.npz``) or the base."""
    from mesa.safety.minilm import MiniLM, packaged_adapter

    if classifier is None or not classifier["adapter"]:
        return MiniLM()
    return MiniLM(adapter=packaged_adapter() if source == "packaged" else Path(source).with_name("adapter.npz"))


def _mpnet(source: str | Path | None, classifier: dict[str, Any] | None) -> Any:
    """all-mpnet-base-v2, frozen (its weights from the ``safety-large`` extra)."""
    from mesa.safety.mpnet import MPNet

    return MPNet()


ENCODERS = {BASE_NAME: _minilm, LARGE_NAME: _mpnet}
"""The sentence encoders a classifier file may name (its ``encoder``), each with how to load it."""


def _encoder_for(source: str | Path | None, classifier: dict[str, Any] | None) -> Any:
    """The encoder the classifier was trained on (MiniLM when there are no heads)."""
    name = BASE_NAME if classifier is None else classifier["encoder"]
    if name not in ENCODERS:
        raise ClassifierFileError(f"the safety classifier reads {name!r} embeddings; mesa knows {sorted(ENCODERS)}")
    return ENCODERS[name](source, classifier)


def _check_encoder(encoder: Any, classifier: dict[str, Any] | None) -> None:
    """Heads trained on adapted embeddings are meaningless on other ones: refuse a MiniLM without that adapter."""
    from mesa.safety.minilm import AdapterMismatchError

    identity = getattr(encoder, "identity", None)
    if classifier is None or identity is None:
        return  # no heads, or a stand-in encoder (tests) that says nothing about itself
    wanted = f"{classifier['encoder']}+{classifier['adapter']}" if classifier["adapter"] else classifier["encoder"]
    if identity != wanted:
        raise AdapterMismatchError(f"the safety classifier was trained on {wanted} embeddings, the encoder gives {identity}")


def default_encoder() -> Any:
    """The encoder the packaged layer runs (MiniLM with the packaged adapter when the classifier names one)."""
    return _encoder_for("packaged", load_classifier("packaged"))


def save_bank_embeddings(path: Path, matrix: Any, digest: str) -> None:
    """Write the npz readable by its owner only (folder 0700, file 0600); a read-only cache is not an error."""
    import numpy as np

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, embeddings=matrix.astype(np.float32), digest=np.array(digest))
        os.replace(tmp, path)
    except OSError as exc:
        log.info("mesa.safety: could not cache the exemplar embeddings at %s: %s", path, exc)


def load_semantic_layer(reader: str = "default") -> Any:
    """The shared layer of a packaged reader (loaded once per process): ``"default"`` (MiniLM with its adapter, a
    :class:`SemanticLayer`) or ``"large"`` (the default reader with all-mpnet-base-v2's second opinion, a
    :class:`SecondOpinionLayer` whose first reader is the shared default one). Raises ``MissingExtraError`` without
    the reader's extra."""
    if reader not in READERS:
        raise ValueError(f"unknown safety reader {reader!r}: one of {sorted(READERS)}")
    return _load_reader(reader)


@cache
def _load_reader(reader: str) -> Any:
    from mesa.safety.minilm import _imports

    _imports()  # the install hint, before anything else is loaded
    if reader == "default":
        return SemanticLayer()
    from mesa.safety.mpnet import part_files

    part_files()  # the larger reader's install hint, before anything is read
    pair = json.loads(resources.files("mesa.safety").joinpath("data", SECOND_OPINION).read_text(encoding="utf-8"))
    return SecondOpinionLayer(_load_reader("default"), SemanticLayer(classifier=READERS[reader]), pair["gate"], pair["elevated"])
