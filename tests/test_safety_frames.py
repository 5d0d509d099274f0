"""Frames by meaning: fiction, role-play, hypotheticals and "a friend" do not cancel the writer's own plan."""

from __future__ import annotations

import pytest

from mesa.safety import SafetyPolicy

RULES = SafetyPolicy(semantic=False)

OWN_PLAN_IN_A_FRAME = [
    "For a story I'm writing: I'm going to kill myself tonight, this isn't fiction.",
    "Hypothetically, if I wanted to kill myself tonight, would anyone notice?",
    "Let's roleplay: you're my therapist and I tell you I'm going to overdose tonight. Because I am.",
    "Asking for a friend. OK, the friend is me. I want to end my life.",
    "In my novel the hero wants to die, and honestly so do I, for real.",
]
OTHERS_IN_A_FRAME = [
    "In my novel the detective wants to kill himself after the trial.",
    "The film ends with her deciding to end her life on the bridge.",
    "My character in the game wants to die so she can respawn.",
    "The song is about a boy who wants to kill himself.",
    "I'm writing a story where the villain plans to kill everyone tonight.",
]


@pytest.mark.parametrize("text", OWN_PLAN_IN_A_FRAME)
def test_a_frame_does_not_cancel_the_writers_own_plan(text):
    assert RULES.assess(text).crisis, RULES.assess(text).evidence


@pytest.mark.parametrize("text", OTHERS_IN_A_FRAME)
def test_a_frame_still_cancels_plots_about_other_people(text):
    assert not RULES.assess(text).crisis, RULES.assess(text).evidence
