"""The counsellor's own emotion in the default agent's turns, next to MESC's therapists.

Runs ``SupportAgent()`` as a new user gets it (stepwise graph, the embedded model unless
``--model``; no trained classifier unless ``--classifier``) on a seeded random sample of MESC
val client turns, each with the dialogue before it, and prints the system-emotion shares of:

- ``gold``: the MESC therapists' emotion at those turns;
- ``proposed``: what the model answered in the system-emotion step (before the taxonomy's rule);
- ``agent``: what the agent settled on and wrote the reply in (after the rule).

The safety policy is the rule layer only (no extra model judgement per turn: the figure is about
the system-emotion step, and each embedded-model call is slow on a shared CPU). A turn routed to the
crisis protocol has no system emotion; it is counted apart. ``--labels-only`` runs the same chain
without the reply call (the respond node writes nothing), which makes a turn several times cheaper
and leaves the three label steps as they are. Each model call may take ``--call-timeout`` seconds
(a shared, loaded CPU makes the embedded model slow; a step that times out leaves its label absent).
With ``--out``, records are written after each turn and a rerun continues from them. Turns run in a
seeded random order, so the turns a stopped run finished are a random sample too, not the first dialogues.

    python bench/system_emotion_bench.py ../shared/data/mesc --turns 60 --seed 0
    python bench/system_emotion_bench.py ../shared/data/mesc --turns 60 --classifier ~/.cache/mesa/models/mesc.npz
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path

_PROPOSED = re.compile(r"proposed '([^']+)'")


def _shares(labels: list[str | None], names: list[str]) -> list[str]:
    counted = Counter(label for label in labels if label)
    total = sum(counted.values())
    return [f"{100 * counted[n] / total:.1f}" if total else "–" for n in names]


def turn_order(examples: list, turns: int, seed: int, reverse: bool = False) -> list:
    """The seeded sample of ``turns`` examples, in the order they run: shuffled with ``seed``.

    In corpus order a run stopped early would hold the first dialogues only; shuffled, any prefix is
    itself a random sample of the split. ``reverse`` runs the same order from its end (a second process).
    """
    import random

    from mesa.eval import select_examples

    chosen = select_examples(examples, turns, seed=seed)
    random.Random(seed).shuffle(chosen)
    return chosen[::-1] if reverse else chosen


async def _no_reply(state, runtime) -> dict:
    """The respond node of ``--labels-only``: no reply call (the labels are what is measured)."""
    return {"response": ""}


async def _run(args: argparse.Namespace) -> dict:
    from mesa import SupportAgent
    from mesa.errors import MesaError
    from mesa.eval import load_mesc
    from mesa.graphs import build_graph
    from mesa.safety import SafetyPolicy

    examples = turn_order(load_mesc(args.data, "val"), args.turns, args.seed, reverse=args.reverse)
    out = Path(args.out) if args.out else None
    records = json.loads(out.read_text()) if out and out.exists() else []
    done = {r["id"] for r in records}
    classifier = None
    if args.classifier:
        from mesa.eval import SupervisedClassifier

        classifier = SupervisedClassifier.load(args.classifier)
    graph = build_graph("stepwise", nodes_override={"respond": _no_reply}) if args.labels_only else None
    agent = SupportAgent(
        model=args.model,
        classifier=classifier,
        safety=SafetyPolicy(llm_assessment=False),
        graph=graph,
        call_timeout=args.call_timeout,
        turn_timeout=4 * args.call_timeout + 60,
    )
    try:
        for number, example in enumerate(examples, 1):
            if example.id in done:
                continue
            started = time.perf_counter()
            try:
                reply = await agent.arespond(example.text, history=list(example.history), thread_id=uuid.uuid4().hex)
            except MesaError as exc:  # a turn past its deadline: counted, not fatal
                print(f"{number}/{len(examples)} {example.id}: {type(exc).__name__}: {exc}", flush=True)
                records.append(
                    {
                        "id": example.id,
                        "gold": example.system_emotion,
                        "proposed": None,
                        "agent": None,
                        "source": None,
                        "crisis": False,
                        "error": type(exc).__name__,
                    }
                )
                continue
            settled = reply.system_emotion
            proposed = settled.label if settled else None
            if settled is not None and settled.source == "rule":
                match = _PROPOSED.search(settled.rationale)
                proposed = match.group(1) if match else None
            record = {
                "id": example.id,
                "gold": example.system_emotion,
                "proposed": proposed,
                "agent": settled.label if settled else None,
                "source": settled.source if settled else None,
                "crisis": bool(reply.safety and reply.safety.crisis),
                "seconds": round(time.perf_counter() - started, 1),
            }
            records.append(record)
            print(f"{number}/{len(examples)} {json.dumps(record)}", flush=True)
            if out:
                out.write_text(json.dumps(records, indent=1))
    finally:
        agent.close()
    return {"records": records, "model": agent.llm.model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="MESC folder or CSV (e.g. ../shared/data/mesc)")
    parser.add_argument("--turns", type=int, default=60, help="seeded random MESC val client turns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="LiteLLM model string (default: the embedded model)")
    parser.add_argument("--classifier", default=None, help="a trained model (.npz) for the agent (default: none)")
    parser.add_argument("--reverse", action="store_true", help="run the sample from its last turn")
    parser.add_argument("--labels-only", action="store_true", help="skip the reply call (labels only, faster)")
    parser.add_argument("--call-timeout", type=float, default=180.0, help="seconds each model call may take")
    parser.add_argument("--out", default=None, help="write the per-turn records here as JSON (rewritten each turn)")
    parser.add_argument(
        "--summarize", nargs="+", default=None, help="only print the tables of these --out files (merged by turn id)"
    )
    args = parser.parse_args()
    if args.summarize:
        merged = {r["id"]: r for path in args.summarize for r in json.loads(Path(path).read_text())}
        result = {"records": list(merged.values()), "model": args.model or "mesa-local/smollm2"}
    else:
        result = asyncio.run(_run(args))
    from mesa.taxonomy import MESC

    names = MESC.names("system_emotion")
    records = result["records"]
    answered = [r for r in records if r["agent"]]
    print(
        f"\nsystem emotion shares (%), {result['model']}, {len(records)} MESC val turns (seed {args.seed}"
        f"{', labels only' if args.labels_only else ''}); "
        f"{sum(r['crisis'] for r in records)} routed to the crisis protocol, "
        f"{len(records) - len(answered) - sum(r['crisis'] for r in records)} without a label"
    )
    print("| row | n | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for row in ("gold", "proposed", "agent"):
        labels = [r[row] for r in answered]
        print(f"| {row} | {sum(1 for x in labels if x)} | " + " | ".join(_shares(labels, names)) + " |")
    overruled = sum(1 for r in answered if r["source"] == "rule")
    print(
        f"\nthe rule overruled {overruled} of {len(answered)} proposals; "
        f"agent = gold on {sum(r['agent'] == r['gold'] for r in answered)} of {len(answered)} turns"
    )


if __name__ == "__main__":
    main()
