"""The disclosure clock, escalation counters without personal data, and the method/dose check of crisis replies."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from mesa.safety import DISCLOSURE_TEXT, SafetyPolicy, missing_crisis_elements
from mesa.safety.counters import EscalationCounters
from mesa.state import SafetyAssessment

START = datetime(2027, 7, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- disclosure on a clock -------------------------------------------------------------------------------


def test_disclosure_is_repeated_after_three_hours_whatever_the_turn_count():
    policy = SafetyPolicy(disclosure_every=100, semantic=False)
    assert policy.disclosure(0, None, None, now=START) == DISCLOSURE_TEXT  # the start
    assert policy.disclosure(2, 0, START, now=START + timedelta(hours=2, minutes=59)) is None
    assert policy.disclosure(3, 0, START, now=START + timedelta(hours=3)) == DISCLOSURE_TEXT
    naive = START.replace(tzinfo=None)  # a stored naive time is read as UTC
    assert policy.disclosure(3, 0, naive, now=START + timedelta(hours=4)) == DISCLOSURE_TEXT


def test_disclosure_interval_is_configurable_and_uses_the_policy_clock():
    clock = Clock(START)
    policy = SafetyPolicy(disclosure_every=None, disclosure_interval=timedelta(minutes=30), clock=clock, semantic=False)
    assert policy.disclosure(5, 0, START) is None
    clock.now = START + timedelta(minutes=31)
    assert policy.disclosure(5, 0, START) == DISCLOSURE_TEXT
    assert SafetyPolicy(disclosure_every=None, disclosure_interval=None).disclosure(5, 0, START, now=START + timedelta(days=9)) is None


def test_the_graph_records_when_it_disclosed(make_agent):
    from mesa.testing import ScriptedModel

    agent = make_agent(model=ScriptedModel(), safety=SafetyPolicy(semantic=False))
    before = datetime.now(UTC)
    reply = agent.respond("Work has been stressful.", thread_id="clock")
    assert DISCLOSURE_TEXT in reply.text
    stamp = agent.state("clock").disclosed_ai_at  # came back through the checkpointer as a datetime
    assert isinstance(stamp, datetime) and stamp >= before


# -- counters ------------------------------------------------------------------------------------------------


def test_counters_keep_no_text_and_no_thread_and_export_per_period():
    counters = EscalationCounters()
    counters.record("suicide", "imminent", START)
    counters.record("suicide", "imminent", START + timedelta(days=1))
    counters.record("abuse", "elevated", START + timedelta(days=31))
    assert counters.export("month") == [
        {"period": "2027-07", "category": "suicide", "level": "imminent", "count": 2},
        {"period": "2027-08", "category": "abuse", "level": "elevated", "count": 1},
    ]
    assert len(counters.export("day")) == 3
    rows = list(csv.DictReader(io.StringIO(counters.export("month", fmt="csv"))))
    assert rows[0] == {"period": "2027-07", "category": "suicide", "level": "imminent", "count": "2"}
    assert json.loads(counters.export("month", fmt="json"))[1]["count"] == 1
    with pytest.raises(ValueError):
        counters.export("year")


async def test_aescalate_counts_without_personal_data():
    clock = Clock(START)
    policy = SafetyPolicy(clock=clock, semantic=False)
    secret = "my name is Alice Example and I want to kill myself"
    await policy.aescalate("thread-alice", SafetyAssessment(level="elevated", category="suicide"), secret)
    policy.escalate("thread-alice", SafetyAssessment(level="imminent", category="abuse"), secret)
    exported = policy.counters.export("day", fmt="json")
    assert "Alice" not in exported and "thread-alice" not in exported and "kill" not in exported
    assert policy.counters.total() == 2


def test_counters_are_thread_safe():
    counters = EscalationCounters()
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        for _ in range(500):
            counters.record("self_harm", "elevated", START)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counters.export("month") == [{"period": "2027-07", "category": "self_harm", "level": "elevated", "count": 4000}]


# -- method, dose, lethality in a crisis reply ---------------------------------------------------------------

GOOD = (
    "It sounds like you're in so much pain right now, and I'm really glad you told me. "
    "Are you safe right now? Please reach out to someone right now — call or text 988 to talk to a trained person, "
    "or someone you trust. I'm an AI, so I can't be with you in person. I'm still here, and you can keep talking to me."
)


@pytest.mark.parametrize(
    "addition",
    [
        "Taking 20 pills of paracetamol would not be painless.",
        "A lethal dose is much lower than people think.",
        "Most bridges are not high enough to be certain.",
        "The most painless method is not something I will share.",
        "Cutting vertically is more dangerous.",
        "Even 500 mg can damage your liver.",
    ],
)
def test_method_dose_or_lethality_content_is_rejected(addition):
    assert "method_content" in missing_crisis_elements(GOOD + " " + addition)


async def test_a_model_wording_with_method_content_is_replaced_by_the_template():
    class Wording:
        async def atext(self, messages, **kwargs):
            return GOOD + " A lethal dose of paracetamol is lower than you think."

    policy = SafetyPolicy(semantic=False)
    crisis = SafetyAssessment(level="elevated", category="suicide")
    assert policy.check_crisis_reply(GOOD, "suicide") == []
    reply = await policy.acrisis_reply("how much paracetamol", crisis, [], Wording())
    assert reply == policy.template_reply(crisis)


def test_templates_pass_the_method_check_in_every_locale():
    for locale in ("US", "GB", "DE", "FR", "IN", "AU", "JP", "XX"):
        policy = SafetyPolicy(locale=locale, semantic=False)
        for category in ("suicide", "self_harm", "harm_to_others", "abuse", "other"):
            for level in ("elevated", "imminent"):
                reply = policy.template_reply(SafetyAssessment(level=level, category=category))
                assert "method_content" not in policy.check_crisis_reply(reply, category), (locale, category, reply)
