"""A human approves or edits each reply before the user sees it.

The graph pauses with LangGraph's ``interrupt()`` after the reply is drafted;
the reviewer's decision resumes it (``agent.resume``) and only then is the turn
stored in the conversation. Checkpointing (``thread_id``) is what lets the
paused run wait, even across processes when ``memory=`` is a SQLite file.

Run it interactively, or with ``--auto`` to approve the first draft and edit the
second (that is what the test does).
"""

import argparse

from langgraph.types import interrupt

from mesa import SupportAgent
from mesa.graphs import build_graph


async def human_review(state, runtime) -> dict:
    """Pause with the draft; the resume value is {"action": "approve"} or {"action": "edit", "text": ...}."""
    decision = interrupt(
        {
            "draft": state.response,
            "user_emotion": state.user_emotion.label if state.user_emotion else None,
            "strategy": state.strategy.label if state.strategy else None,
        }
    )
    if decision.get("action") == "edit":
        return {"response": decision["text"]}
    return {}


def ask_reviewer(draft: dict, auto: bool, turn: int) -> dict:
    print(f"\n  draft ({draft['user_emotion']} → {draft['strategy']}): {draft['draft']}")
    if auto:
        if turn == 0:
            print("  reviewer: approve")
            return {"action": "approve"}
        print("  reviewer: edit")
        return {"action": "edit", "text": "It sounds like this has been weighing on you. Would you like to tell me more?"}
    answer = input("  approve [enter] or type a replacement: ").strip()
    return {"action": "edit", "text": answer} if answer else {"action": "approve"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--auto", action="store_true", help="no prompts: approve the first draft, edit the second")
    args = parser.parse_args()

    graph = build_graph("stepwise", after_reply={"human_review": human_review})
    with SupportAgent(model=args.model, graph=graph) as agent:
        for turn, text in enumerate(["My dog died last week.", "I keep expecting him at the door."]):
            print(f"user: {text}")
            reply = agent.respond(text, thread_id="review")
            while reply.interrupts:
                reply = agent.resume("review", ask_reviewer(reply.interrupts[0], args.auto, turn))
            print(f"sent: {reply.text}")
        print(f"\nstored turns: {len(agent.history('review')) // 2}")


if __name__ == "__main__":
    main()
