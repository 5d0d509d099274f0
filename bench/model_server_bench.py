"""One turn's latency through a llama-cpp-python model server, stepwise and fused.

Start the server with the commands of docs/deploy.md ("A model server"), then:

    python bench/model_server_bench.py --api-base http://127.0.0.1:8080/v1 --turns 3

Each turn is the first of a new thread, one at a time, each with a different user text (so a server's
prompt cache cannot answer a whole prompt from an earlier turn), after one warm-up turn per mode that is
not counted (LiteLLM's import, the server's first prompt). Both modes get the same texts. Prints each turn's wall time,
the median per mode and the fused/stepwise ratio, all from this one run. The numbers depend on the
model, the server's --n_threads and what else the machine runs: report them with that.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mesa import LLM, SupportAgent

TEXTS = [
    "I failed my exam and I feel worthless.",
    "My best friend moved away and the evenings are so quiet now.",
    "I got the job! I still can't believe it.",
    "My landlord keeps ignoring the broken heating and I'm furious.",
    "I have a big presentation tomorrow and I can't stop shaking.",
    "My dog died last week. I keep looking for him at the door.",
]


def turn_seconds(agent: SupportAgent, thread_id: str, text: str) -> float:
    started = time.perf_counter()
    reply = agent.respond(text, thread_id=thread_id)
    elapsed = time.perf_counter() - started
    labels = [p.label if p else None for p in (reply.user_emotion, reply.strategy, reply.system_emotion)]
    print(f"  {thread_id}: {elapsed:6.1f} s  labels {labels}  failed {sorted(reply.failed_steps) or '-'}")
    return elapsed


def measure(model: str, api_base: str, mode: str, turns: int) -> float:
    llm = LLM(model, api_base=api_base, api_key="unused", timeout=900)
    with SupportAgent(model=llm, mode=mode, classifier=None, turn_timeout=900) as agent:
        print(f"{mode} (warm-up not counted)")
        turn_seconds(agent, f"{mode}-warm-up", TEXTS[0])
        times = [turn_seconds(agent, f"{mode}-{index}", TEXTS[1 + index % (len(TEXTS) - 1)]) for index in range(turns)]
    median = statistics.median(times)
    print(f"{mode}: median {median:.1f} s over {turns} turn(s)")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-base", required=True, help="the server's /v1 URL")
    parser.add_argument("--alias", default="smollm2", help="the server's --model_alias")
    parser.add_argument("--turns", type=int, default=3, help="counted turns per mode")
    args = parser.parse_args()
    model = f"openai/{args.alias}"
    stepwise = measure(model, args.api_base, "stepwise", args.turns)
    fused = measure(model, args.api_base, "fused", args.turns)
    print(f"fused / stepwise: {fused / stepwise:.2f}")


if __name__ == "__main__":
    main()
