"""Core benchmarks, measured in one run (print ratios; no pass/fail).

1. ``import mesa``: wall time (median of fresh interpreters) and the heavy modules it pulls in.
2. Orchestration overhead: ``SupportAgent.respond`` on the stepwise graph with a zero-latency scripted
   model, against a hand-written LangGraph chain of the same node functions called with ``ainvoke``
   (no agent, no checkpointer). Both pay the same LiteLLM + instructor cost per call.
3. Fused against stepwise turn latency on the embedded model (SmolLM2-135M, llama.cpp), default
   safety policy: on ordinary turns (no rule signal, no risk word: the safety layer asks no model), and
   on ordinary turns that hold a risk word ("pain", "life", "afraid"), where both modes also pay the
   safety model's judgement.

    python bench/core_bench.py                 # all three
    python bench/core_bench.py --skip-embedded # 1 and 2 only
    python bench/core_bench.py --mesc ../shared/data/mesc/mesc_train_val.csv --mesc-turns 16
        # 3 also on a seeded random sample of MESC val client turns (real therapy talk)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from itertools import pairwise

HEAVY = ("litellm", "torch", "llama_cpp", "whisper", "faster_whisper", "deepface", "transformers", "tensorflow", "cv2")
TEXTS = [
    "I failed my exam and I feel worthless.",
    "My partner and I keep fighting about money.",
    "I haven't slept properly in weeks because of work.",
    "I finally told my sister how I feel and it went well.",
]
# Ordinary turns that hold a risk word, so the safety policy asks the model too (in both modes).
RISK_WORD_TEXTS = [
    "My back pain is getting worse and I'm scared of the surgery.",
    "I feel like my life is going nowhere since I moved.",
    "I'm afraid I'll end up alone like my uncle.",
    "Work has been hard and I'm over it, honestly.",
]


def bench_import(runs: int) -> dict:
    code = (
        "import sys, time; t = time.perf_counter(); import mesa; dt = time.perf_counter() - t; "
        f"print(dt, ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    times, heavy = [], ""
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        heavy = out[1] if len(out) > 1 else ""
    return {"import_seconds_median": statistics.median(times), "heavy_modules": heavy or "none"}


def bench_overhead(turns: int) -> dict:
    from langgraph.graph import END, START, StateGraph

    from mesa import SupportAgent
    from mesa.graphs import SupportContext, nodes
    from mesa.safety import SafetyPolicy
    from mesa.state import SupportState, Turn
    from mesa.testing import ScriptedModel

    script = ScriptedModel(reply="I hear you. That sounds hard.")
    safety = SafetyPolicy(llm_assessment=False)  # rules only: no extra LLM call on either side

    # hand-written chain of the same nodes
    chain = StateGraph(SupportState, context_schema=SupportContext)
    names = ["perceive", "assess_safety", "recognize_emotion", "select_strategy", "choose_system_emotion", "respond", "finish_turn"]
    for name in names:
        chain.add_node(name, getattr(nodes, name))
    chain.add_edge(START, names[0])
    for a, b in pairwise(names):
        chain.add_edge(a, b)
    chain.add_edge(names[-1], END)
    app = chain.compile()
    ctx = SupportContext(llm=script.as_llm(), safety=safety)

    async def hand_written(n: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            await app.ainvoke({"turn": Turn(text=TEXTS[i % len(TEXTS)])}, context=ctx)
        return time.perf_counter() - start

    agent = SupportAgent(model=script, safety=safety)
    asyncio.run(hand_written(5))  # warm-up: imports, schema building
    for i in range(5):
        agent.respond(TEXTS[i % len(TEXTS)])

    rounds = []
    for _ in range(3):
        baseline = asyncio.run(hand_written(turns))
        start = time.perf_counter()
        for i in range(turns):
            agent.respond(TEXTS[i % len(TEXTS)], thread_id=f"bench-{i}")
        mesa_time = time.perf_counter() - start
        rounds.append((baseline, mesa_time))
    agent.close()
    baseline = min(r[0] for r in rounds)
    mesa_time = min(r[1] for r in rounds)
    return {
        "turns": turns,
        "hand_written_ms_per_turn": 1000 * baseline / turns,
        "support_agent_ms_per_turn": 1000 * mesa_time / turns,
        "overhead_ratio": mesa_time / baseline,
    }


def mesc_sample(path: str, n: int, seed: int = 7) -> list[str]:
    """A seeded random sample of MESC val client utterances of at least three words."""
    import csv
    import random

    with open(path, newline="", encoding="utf-8") as handle:
        rows = [r["Utterance"].strip() for r in csv.DictReader(handle) if r["split"] == "val" and r["Speaker"] == "Client"]
    rows = [text for text in rows if len(text.split()) >= 3]
    return random.Random(seed).sample(rows, n)


def bench_modes(turns: int, texts: list[str]) -> dict:
    from mesa import SupportAgent

    result: dict = {}
    for mode in ("stepwise", "fused"):
        with SupportAgent(mode=mode) as agent:
            agent.respond("warm up", thread_id="warm")
            times, crisis = [], 0
            for i in range(turns):
                start = time.perf_counter()
                reply = agent.respond(texts[i % len(texts)], thread_id=f"{mode}-{i}")
                times.append(time.perf_counter() - start)
                crisis += reply.crisis
        result[f"{mode}_seconds_median"] = statistics.median(times)
        result[f"{mode}_seconds_all"] = [round(t, 2) for t in times]
        result[f"{mode}_crisis_turns"] = crisis
    result["fused_over_stepwise"] = result["fused_seconds_median"] / result["stepwise_seconds_median"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--overhead-turns", type=int, default=40)
    parser.add_argument("--embedded-turns", type=int, default=4)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--mesc", help="MESC mesc_train_val.csv: also time a seeded sample of its val client turns")
    parser.add_argument("--mesc-turns", type=int, default=16)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    figures = {"import": bench_import(args.import_runs)}
    print(f"import mesa: {figures['import']['import_seconds_median'] * 1000:.0f} ms (median of {args.import_runs}); "
          f"heavy modules pulled in: {figures['import']['heavy_modules']}   [goal <= 300 ms, none]")
    figures["overhead"] = bench_overhead(args.overhead_turns)
    o = figures["overhead"]
    print(f"orchestration: hand-written chain {o['hand_written_ms_per_turn']:.1f} ms/turn, SupportAgent "
          f"{o['support_agent_ms_per_turn']:.1f} ms/turn, ratio {o['overhead_ratio']:.2f}x   [goal <= 1.3x]")
    if not args.skip_embedded:
        sets = [("modes", TEXTS, "ordinary turns", args.embedded_turns), ("modes_risk_words", RISK_WORD_TEXTS, "turns with a risk word (+ safety model)", args.embedded_turns)]
        if args.mesc:
            sample = mesc_sample(args.mesc, args.mesc_turns)
            sets.append(("modes_mesc_val", sample, f"{len(sample)} sampled MESC val client turns", len(sample)))
        for key, texts, label, turns in sets:
            figures[key] = m = bench_modes(turns, texts)
            print(f"embedded model, {label}: stepwise {m['stepwise_seconds_median']:.2f} s/turn {m['stepwise_seconds_all']}, "
                  f"fused {m['fused_seconds_median']:.2f} s/turn {m['fused_seconds_all']}, "
                  f"fused/stepwise {m['fused_over_stepwise']:.2f}x   [goal <= 0.5x]", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
