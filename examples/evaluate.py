"""Evaluate the small supervised model and an agent on a labelled corpus, from Python.

    python examples/evaluate.py path/to/mesc            # folder with mesc_train_val.csv (or val.json)

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
    markdown_table,
    score_run,
    select_examples,
    write_report,
)
from mesa.taxonomy import MESC


async def main(data: str | None) -> None:
    train, val = load_mesc(data, "train"), load_mesc(data, "val")
    classifier = SupervisedClassifier.train(train, MESC)  # a few minutes on 2 cores; save() it to reuse
    rows = [
        await arun_predictor(ClassifierPredictor(MajorityClassifier.fit(train, MESC), name="majority"), val),
        await arun_predictor(ClassifierPredictor(classifier, name="classifier"), val, cache_dir="mesa-eval/cache"),
    ]
    if "--agent" in sys.argv:  # the embedded model is slow and near random: a small subset
        from mesa import SupportAgent

        agent = SupportAgent(model="mesa-local/smollm2", mode="fused", classifier=classifier, classifier_use="prior")
        rows.append(
            await arun_predictor(AgentPredictor(agent, name="llm+prior"), select_examples(val, 10), concurrency=1)
        )
    scored = [score_run(r, val, MESC) for r in rows]
    print(markdown_table(scored, title="MESC val"))
    write_report({"title": "MESC val", "rows": scored}, "mesa-eval", taxonomy=MESC)


if __name__ == "__main__":
    asyncio.run(main(next((a for a in sys.argv[1:] if not a.startswith("--")), None)))
