"""Text folding before every layer, and the rule layer's size behaviour (linear, every part read)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mesa.safety import RuleEngine, SafetyPolicy, normalize
from mesa.safety.textfold import fold

EVASIONS = [
    "I want to k i l l myself",
    "i want to k.i.l.l m.y.s.e.l.f",
    "I want to k-i-l-l myself",
    "i want to k_i_l_l myself tonight",
    "I want to \u043a\u0456ll myself",  # Cyrillic k and i
    "I want to \u03baill myself",  # Greek kappa
    "I want to ki\u200bll my\u200dself",  # zero-width space and joiner
    "I want to \uff4b\uff49\uff4c\uff4c myself",  # fullwidth
    "I want to \U0001d424\U0001d422\U0001d425\U0001d425 myself",  # mathematical bold
    "I want to k\u00edll mys\u00e9lf",  # accents
    "I want to k1ll mys3lf",
    "i w4nt t0 d1e",
    "i am s u i c i d a l",
]


@pytest.mark.parametrize("text", EVASIONS)
def test_evasion_tricks_are_caught_by_the_rules(text):
    assert SafetyPolicy(semantic=False).assess(text).crisis, normalize(text)


def test_folding_keeps_ordinary_text():
    for text in ("I am a b", "e.g. this one", "Call me at 5 pm.", "I'm fine, thanks!", "Caf\u00e9 au lait"):
        assert fold(text).replace("Cafe", "Caf\u00e9") == text or fold(text) == "Cafe au lait"


def test_evidence_quotes_the_original_text():
    text = "I want to k i l l myself"
    result = SafetyPolicy(semantic=False).assess(text)
    assert result.crisis and any("kill myself" in e for e in result.evidence)


def test_a_megabyte_is_read_to_its_last_sentence():
    """Every part of a long message is assessed: the risk sentence at the very end of 1 MB is found."""
    filler = "Work was long today and the bus was late again, so I read a book on the way home. " * 12_500
    assert len(filler) > 1_000_000
    text = filler + "Anyway, I am going to kill myself tonight."
    assert RuleEngine().assess(text).level == "imminent"
    assert not RuleEngine().assess(filler).crisis


def test_whole_message_context_is_read_once_however_many_matches():
    """The look-alike and told-as-over checks read the whole message once, not once per match: thousands of
    goodbyes with the move named only at the end are all read as a move (and the risk line after them still counts)."""
    goodbyes = "my last day. " * 5000 + "we are moving to perth on friday."
    assert not RuleEngine().assess(goodbyes).crisis
    assert RuleEngine().assess(goodbyes + " and i am going to kill myself tonight.").crisis


def test_a_run_on_sentence_without_breaks_is_handled():
    """No sentence breaks at all (the old context scan went back to the start for every match)."""
    text = " ".join(["i want to die"] * 5000)
    assert RuleEngine().assess(text).crisis


async def test_assessment_runs_off_the_event_loop():
    """aassess hands the CPU work to a worker thread: the loop's thread never runs the rules."""
    loop_thread = threading.get_ident()
    seen: list[int] = []
    policy = SafetyPolicy(semantic=False)
    original = policy.assess_rules

    def spy(text, history=()):
        seen.append(threading.get_ident())
        return original(text, history)

    policy.assess_rules = spy
    result = await policy.aassess("I want to kill myself")
    assert result.crisis and seen and seen[0] != loop_thread
    await asyncio.sleep(0)
