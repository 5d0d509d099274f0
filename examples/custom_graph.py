"""Customise the SMES graph the LangGraph way.

1. Replace the strategy step with your own policy (here: a few rules a clinic
   might want), keeping every other step.
2. Add a node without rebuilding the graph: a tiny "retrieval" step, inserted
   before the emotion step, that looks up coping resources for the user's words
   and puts them in the state for the later steps and for you.

Runs offline on the embedded model; pass --model for a real one.
"""

import argparse

from langgraph.graph import StateGraph

from mesa import SupportAgent
from mesa.graphs import Insert, build_graph
from mesa.state import Prediction, SupportState

RESOURCES = {
    "exam": "Study-skills centre: drop-in hours Mon-Fri.",
    "sleep": "Sleep hygiene leaflet: regular hours, no screens in bed.",
    "lonely": "Peer support group: Thursdays 6 pm.",
}


async def rule_based_strategy(state: SupportState, runtime) -> dict:
    """Our own strategy policy: ask first, approve good news, otherwise restate."""
    emotion = state.user_emotion.label if state.user_emotion else "neutral"
    if len(state.history) < 2:
        label, why = "Open question", "first turn: let the person tell their story"
    elif emotion == "joy":
        label, why = "Approval", "affirm good news"
    else:
        label, why = "Restatement", "show we understood before anything else"
    return {"strategy": Prediction(label=label, confidence=1.0, rationale=why, source="policy")}


async def retrieve_resources(state: SupportState, runtime) -> dict:
    """A stand-in for retrieval: resources whose keyword the user mentioned."""
    text = (state.turn.text or "").lower()
    found = [tip for keyword, tip in RESOURCES.items() if keyword in text]
    return {"extras": {"resources": found}}


def graph_with_retrieval() -> StateGraph:
    """perceive → assess_safety → retrieve → emotion → (our) strategy → system emotion → respond.

    Nothing is rebuilt: the retrieval step is inserted before the emotion step, so the safety routing
    that led there (a crisis still goes to the escalation protocol) now leads to it first.
    """
    return build_graph(
        "stepwise",
        nodes_override={"select_strategy": rule_based_strategy},
        insert=[Insert("retrieve", retrieve_resources, before="recognize_emotion")],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    # 1. only the strategy step replaced
    with SupportAgent(model=args.model, graph=build_graph("stepwise", nodes_override={"select_strategy": rule_based_strategy})) as agent:
        reply = agent.respond("I can't sleep before my exam.", thread_id="custom")
        print(f"[policy] strategy={reply.strategy.label} ({reply.strategy.rationale}) reply={reply.text!r}")

    # 2. a graph with an extra node
    with SupportAgent(model=args.model, graph=graph_with_retrieval()) as agent:
        reply = agent.respond("I feel lonely and I can't sleep.", thread_id="custom")
        state = agent.state("custom")
        print(f"[retrieval] strategy={reply.strategy.label} reply={reply.text!r} turns={len(state.history) // 2}")
        print(f"[retrieval] resources found: {state.extras['resources']}")


if __name__ == "__main__":
    main()
