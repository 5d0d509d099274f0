"""Escalation hook: let your application act when a user may be in crisis.

The safety layer of every mesa agent routes a risky turn to the crisis
protocol (a checked reply with crisis contacts for your locale, saying plainly
that the user talks to an AI). Your application learns about it through
escalation hooks: plain or async callables that receive an
``mesa.safety.EscalationEvent`` (thread id, level, category, evidence, text).
Typical hooks page an on-call moderator, open a ticket, or flag the thread in
your database. Hooks run in the background, each with a timeout (``hook_timeout``):
the crisis reply never waits for them, and a failing or hanging hook is logged
and never breaks the reply. The policy also counts escalations per month,
category and level, without any text or thread id, for an operator's report
(``policy.counters.export()``).

    python examples/escalation_hook.py                  # keyless scripted model (instant)
    python examples/escalation_hook.py --embedded       # the embedded offline model
    python examples/escalation_hook.py --model openai/gpt-4o-mini --locale GB
    python examples/escalation_hook.py --reader large   # the default reader plus all-mpnet-base-v2's second opinion
                                                        # (the safety-large extra and its weights: docs/safety.md)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading

from mesa import SupportAgent
from mesa.safety import EscalationEvent, SafetyPolicy

ALERTS: list[EscalationEvent] = []
RECORDED = threading.Event()


def record(event: EscalationEvent) -> None:
    """A sync hook (run in its own thread): keep the alert (a real app would write it to its database)."""
    ALERTS.append(event)
    RECORDED.set()


async def page_on_call(event: EscalationEvent) -> None:
    """An async hook: notify a human (here: print what a webhook would POST)."""
    await asyncio.sleep(0)  # e.g. `await httpx.AsyncClient().post(WEBHOOK_URL, json=payload)`
    payload = {"thread": event.thread_id, "level": event.level, "category": event.category, "evidence": event.evidence[:2]}
    print(f"[on-call] {json.dumps(payload)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a LiteLLM model string")
    parser.add_argument("--embedded", action="store_true", help="use the embedded offline model")
    parser.add_argument("--locale", default="US", help="country for crisis contacts (US, GB, DE, IN, ...)")
    parser.add_argument("--reader", choices=("default", "large"), default="default", help="the crisis layer's reader")
    args = parser.parse_args()

    if args.model or args.embedded:
        model = args.model  # None: the embedded model
    else:
        from mesa.testing import ScriptedModel

        model = ScriptedModel(reply="That sounds like a lot to carry. What has been the hardest part?")

    policy = SafetyPolicy(locale=args.locale, on_escalation=[record, page_on_call], hook_timeout=10.0, semantic=args.reader)
    with SupportAgent(model=model, safety=policy) as agent:
        for text in ("Work has been really stressful lately.", "Honestly, everyone would be better off without me."):
            reply = agent.respond(text, thread_id="user-42")
            print(f"user:   {text}")
            print(f"crisis: {reply.crisis}  ({reply.safety.level if reply.safety else 'n/a'})")
            print(f"reply:  {reply.text}\n")

    RECORDED.wait(10)  # hooks run in the background; the replies above did not wait for them
    print(f"alerts recorded: {len(ALERTS)}")
    for event in ALERTS:
        print(f"  thread={event.thread_id} level={event.level} category={event.category} locale={event.locale}")
    print("escalation counts for the annual report (no text, no thread id):")
    print(policy.counters.export(period="month", fmt="csv"))


if __name__ == "__main__":
    main()
