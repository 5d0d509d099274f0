"""Evaluate the small supervised model and an agent on a labelled corpus, from Python, under both protocols.

    python examples/evaluate.py path/to/mesc            # folder with mesc_train_val.csv (or val.json)

"live" (the predicted-history protocol) gives earlier user turns the labels the model itself
predicted, as in a running chat; "gold" gives them the dataset's labels (optimistic).

Needs the eval extra: pip install 'mesa-esc[eval]'. Without a path the public MESC
files are downloaded (once) into $MESA_CACHE_DIR/datasets.
"""

from __future__ import annotations

import asyncio
import sys

from mesa.eval import (
    AgentPredictor,
    ClassifierPredictor,
    MajorityClassifier,
    SupervisedClassifier,
    arun_predictor,
    load_mesc,
    protocol_table,
    score_run,
    select_examples,
    write_report,
)
from mesa.taxonomy import MESC


async def main(data: str | None) -> None:
    train, val = load_mesc(data, "train"), load_mesc(data, "val")
    classifier = SupervisedClassifier.train(train, MESC)  # a few minutes on 2 cores; save() it to reuse
    predictors = [
        ClassifierPredictor(MajorityClassifier.fit(train, MESC), name="majority"),
        ClassifierPredictor(classifier, name="classifier"),
    ]
    if "--agent" in sys.argv:  # the embedded model is slow and near random: a small subset
        from mesa import SupportAgent

        agent = SupportAgent(model="mesa-local/smollm2", mode="fused", classifier=classifier, classifier_use="prior")
        predictors.append(AgentPredictor(agent, name="llm+prior"))
    val = select_examples(val, 10, by_dialogue=True) if "--agent" in sys.argv else val
    scored: dict[str, list] = {}
    for protocol in ("predicted", "gold"):
        runs = [
            await arun_predictor(p, val, cache_dir="mesa-eval/cache", concurrency=1, history=protocol)
            for p in predictors
        ]
        scored[protocol] = [score_run(r, val, MESC) for r in runs]
    print(protocol_table(scored, title="MESC val"))
    write_report(
        {"title": "MESC val", "rows": scored["predicted"], "protocol_rows": scored}, "mesa-eval", taxonomy=MESC
    )


if __name__ == "__main__":
    asyncio.run(main(next((a for a in sys.argv[1:] if not a.startswith("--")), None)))
