"""Crisis safety: layered risk assessment, the crisis protocol, escalation hooks, AI disclosure.

The graph calls, with ``policy = runtime.context.safety``::

    assessment = await policy.aassess(text, history, llm)          # rules → LLM → moderation
    if assessment.crisis:
        reply = await policy.acrisis_reply(text, assessment, history, llm)
        await policy.aescalate(thread_id, assessment, text)

The rule layer cannot be switched off by anything a user or a model writes; model
layers may raise its level, never lower it. See ``docs/safety.md``.
"""

from mesa.safety.contacts import CrisisContact, LocaleContacts, crisis_contacts, load_contact_table, resolve_locale
from mesa.safety.patterns import RiskPattern
from mesa.safety.policy import (
    DISCLOSURE_TEXT,
    REQUIRED_ELEMENTS,
    EscalationEvent,
    EscalationHook,
    SafetyJudgement,
    SafetyPolicy,
    missing_crisis_elements,
)
from mesa.safety.rules import LEVELS, Finding, RuleEngine, assess_rules, normalize

__all__ = [
    "DISCLOSURE_TEXT",
    "LEVELS",
    "REQUIRED_ELEMENTS",
    "CrisisContact",
    "EscalationEvent",
    "EscalationHook",
    "Finding",
    "LocaleContacts",
    "RiskPattern",
    "RuleEngine",
    "SafetyJudgement",
    "SafetyPolicy",
    "assess_rules",
    "crisis_contacts",
    "load_contact_table",
    "missing_crisis_elements",
    "normalize",
    "resolve_locale",
]
