"""Stored models: `mesa train` writes where `SupportAgent(classifier="auto")` looks; wrong labels are refused."""

from __future__ import annotations

import copy
import stat
import warnings

import pytest
from _eval_fixtures import HashEmbedder, synthetic_examples

from mesa.eval import SupervisedClassifier
from mesa.eval.store import ClassifierMismatchError, classifier_path, find_classifier, resolve_classifier
from mesa.taxonomy import MESC, Taxonomy


@pytest.fixture(scope="module")
def toy_model():
    return SupervisedClassifier.train(
        synthetic_examples(6), MESC, embedder=HashEmbedder(), c_grid=(1.0,), weight_powers=(0.0,)
    )


def test_no_stored_model_means_no_classifier():
    assert find_classifier("mesc") is None
    assert resolve_classifier("auto", "mesc") is None
    assert resolve_classifier(None, "mesc") is None


def test_stored_model_is_private_and_found(toy_model, tmp_path):
    path = toy_model.save(classifier_path("mesc"))
    assert path.parent.name == "models" and path.name == "mesc.npz"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    found = find_classifier(MESC)
    assert isinstance(found, SupervisedClassifier) and found.heads.keys() == toy_model.heads.keys()
    assert resolve_classifier("auto", "mesc") is not None
    assert find_classifier("esconv") is None  # another taxonomy, another file


def test_a_model_for_other_labels_is_refused(toy_model, tmp_path):
    # A model trained on MESC labels, stored where the ESConv model belongs.
    toy_model.save(classifier_path("esconv"))
    with pytest.raises(ClassifierMismatchError, match="esconv"):
        find_classifier("esconv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_classifier("auto", "esconv") is None  # the agent still works, without it
    assert any("not using" in str(w.message) for w in caught)


def test_a_same_named_taxonomy_with_other_labels_is_refused(toy_model, tmp_path):
    other = Taxonomy.custom("mesc", user_emotions=["calm", "upset"], strategies=["Ask", "Tell"])
    toy_model.save(tmp_path / "m.npz")
    with pytest.raises(ClassifierMismatchError):
        find_classifier(other, path=tmp_path / "m.npz")


def test_a_file_whose_heads_hold_unknown_labels_does_not_load(toy_model, tmp_path):
    broken = copy.deepcopy(toy_model)
    broken.heads["strategy"].classes[0] = "Hypnosis"
    broken.save(tmp_path / "bad.npz")
    with pytest.raises(ClassifierMismatchError, match="Hypnosis"):
        SupervisedClassifier.load(tmp_path / "bad.npz")


def test_support_agent_auto_loads_the_stored_model(toy_model, make_agent):
    from mesa.testing import ScriptedModel

    assert make_agent(model=ScriptedModel()).classifier is None
    toy_model.save(classifier_path("mesc"))
    assert isinstance(make_agent(model=ScriptedModel()).classifier, SupervisedClassifier)
    assert make_agent(model=ScriptedModel(), classifier=None).classifier is None
