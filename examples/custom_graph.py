"""Customise the SMES graph the LangGraph way.

1. Replace the strategy step with your own policy (here: a few rules a clinic
   might want), keeping every other step.
2. Add a node: a tiny "retrieval" step that looks up coping resources for the
   user's words and puts them in the state for the later steps and for you.

Runs offline on the embedded model; pass --model for a real one.
"""

import argparse

from langgraph.graph import END, START, StateGraph

from mesa import SupportAgent
from mesa.graphs import SupportContext, build_graph, nodes
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
    """perceive → assess_safety → retrieve → emotion → (our) strategy → system emotion → respond."""
    graph = StateGraph(SupportState, context_schema=SupportContext)
    chain = [
        ("perceive", nodes.perceive),
        ("assess_safety", nodes.assess_safety),
        ("retrieve", retrieve_resources),
        ("recognize_emotion", nodes.recognize_emotion),
        ("select_strategy", rule_based_strategy),
        ("choose_system_emotion", nodes.choose_system_emotion),
        ("respond", nodes.respond),
        ("finish_turn", nodes.finish_turn),
    ]
    for name, function in chain:
        graph.add_node(name, function)
    graph.add_node("crisis_response", nodes.crisis_response)
    graph.add_edge(START, "perceive")
    graph.add_edge("perceive", "assess_safety")
    # keep the safety routing: a crisis always goes to the escalation protocol
    graph.add_conditional_edges("assess_safety", nodes.route_after_safety, {"crisis": "crisis_response", "ok": "retrieve"})
    for (a, _), (b, _) in zip(chain[2:], chain[3:]):
        graph.add_edge(a, b)
    graph.add_edge("crisis_response", "finish_turn")
    graph.add_edge("finish_turn", END)
    return graph


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
