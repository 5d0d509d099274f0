"""The counsellor's own emotion: the taxonomy's rule and the classifier's head settle it, with any model."""

import pytest

from mesa.state import Message
from mesa.taxonomy import MESC, SystemEmotionRule, Taxonomy, register_system_emotion_rule, system_emotion_rule
from mesa.testing import ScriptedModel


class FixedClassifier:
    """A LabelClassifier that only predicts the system emotion, with a fixed distribution."""

    def __init__(self, dist: dict[str, float]) -> None:
        self.dist = dist
        self.asked: list[str] = []

    def supports(self, which: str) -> bool:
        return which == "system_emotion"

    def predict_distribution(self, which: str, text: str, history: list[Message]) -> dict[str, float]:
        self.asked.append(which)
        return dict(self.dist)


def test_rule_keeps_neutral_and_overrules_what_counsellors_never_show():
    rule = system_emotion_rule("mesc")
    assert rule is not None and rule.default == "neutral"
    assert rule.settle("neutral", None) == ("neutral", None)
    label, why = rule.settle("fear", 0.99)  # 0.02 % of MESC therapist turns
    assert label == "neutral" and "fear" in why
    label, why = rule.settle("joy", 0.6)  # shown by therapists, but not confidently proposed
    assert label == "neutral" and "0.60" in why
    assert rule.settle("joy", 0.95) == ("joy", None)
    assert system_emotion_rule(MESC) is rule and system_emotion_rule("esconv") is rule


@pytest.mark.parametrize("proposed", ["fear", "depression", "disgust"])
def test_default_agent_does_not_mirror_a_users_fear_or_despair(make_agent, proposed):
    script = ScriptedModel(user_emotion=proposed, strategy="Restatement", system_emotion=proposed, confidence=0.95)
    agent = make_agent(model=script, classifier=None)
    reply = agent.respond("I am terrified and I cannot see a way out of this.", thread_id="t")
    assert reply.system_emotion.label == "neutral"
    assert reply.system_emotion.source == "rule"
    assert repr(proposed) in reply.system_emotion.rationale  # the model's proposal is kept for inspection
    assert "neutral" in script.calls_for(None)[-1].prompt  # the reply is written in the settled tone
    assert reply.user_emotion.label == proposed  # the user's emotion is not touched


def test_a_confident_emotion_counsellors_show_is_kept(make_agent):
    script = ScriptedModel(user_emotion="joy", strategy="Approval", system_emotion="joy", confidence=0.95)
    reply = make_agent(model=script, classifier=None).respond("I passed! I finally passed!", thread_id="t")
    assert (reply.system_emotion.label, reply.system_emotion.source) == ("joy", "llm")


def test_an_unsure_proposal_becomes_neutral(make_agent):
    script = ScriptedModel(system_emotion="sadness", confidence=0.5)
    reply = make_agent(model=script, classifier=None).respond("My cat died last week.", thread_id="t")
    assert (reply.system_emotion.label, reply.system_emotion.source) == ("neutral", "rule")


def test_a_taxonomy_without_a_rule_keeps_the_models_label(make_agent):
    custom = Taxonomy.custom("calm-or-not", user_emotions=["calm", "upset"], strategies=["Listen", "Ask"])
    assert system_emotion_rule(custom) is None
    script = ScriptedModel(user_emotion="upset", strategy="Listen", system_emotion="upset", confidence=0.3)
    reply = make_agent(model=script, taxonomy=custom, classifier=None).respond("ugh", thread_id="t")
    assert reply.system_emotion.label == "upset"


def test_a_registered_rule_applies_to_a_custom_taxonomy(make_agent):
    custom = Taxonomy.custom("calm-or-upset", user_emotions=["calm", "upset"], strategies=["Listen", "Ask"])
    register_system_emotion_rule(custom, SystemEmotionRule(default="calm", base_rates={"calm": 0.99, "upset": 0.01}, min_base_rate=0.05))
    try:
        script = ScriptedModel(user_emotion="upset", strategy="Listen", system_emotion="upset", confidence=0.99)
        reply = make_agent(model=script, taxonomy=custom, classifier=None).respond("ugh", thread_id="t")
        assert (reply.system_emotion.label, reply.system_emotion.source) == ("calm", "rule")
    finally:
        register_system_emotion_rule(custom, None)
    assert system_emotion_rule(custom) is None


def test_the_classifiers_head_decides_the_system_emotion_even_as_a_prior(make_agent):
    # classifier_use="prior" (the default) for emotion and strategy; the system emotion is the classifier's.
    clf = FixedClassifier({"neutral": 0.97, "joy": 0.03})
    script = ScriptedModel(user_emotion="fear", strategy="Restatement", system_emotion="fear", confidence=0.99)
    reply = make_agent(model=script, classifier=clf, classifier_use="prior").respond("I'm scared.", thread_id="t")
    assert (reply.system_emotion.label, reply.system_emotion.source) == ("neutral", "classifier")
    assert script.calls_for("SystemEmotion") == []  # no LLM call for it
    assert clf.asked == ["system_emotion"]


def test_an_unsure_classifier_is_settled_by_the_rule_too(make_agent):
    clf = FixedClassifier({"neutral": 0.4, "anger": 0.6})
    reply = make_agent(model=ScriptedModel(), classifier=clf).respond("He lied to me again.", thread_id="t")
    assert (reply.system_emotion.label, reply.system_emotion.source) == ("neutral", "rule")
    assert "classifier" in reply.system_emotion.rationale
