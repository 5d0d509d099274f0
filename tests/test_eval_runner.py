"""Runner: concurrency bound, resumability, errors; report files; agent and classifier adapters."""

from __future__ import annotations

import asyncio
import json

import pytest
from _eval_fixtures import synthetic_examples

from mesa.eval import (
    AgentPredictor,
    ClassifierPredictor,
    MajorityClassifier,
    arun_predictor,
    markdown_table,
    score_run,
    select_examples,
    write_report,
)
from mesa.state import Prediction, Reply
from mesa.taxonomy import MESC


class FakeAgent:
    """Anything with ``arespond`` works; this one echoes and counts."""

    mode = "stepwise"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_on = fail_on

    async def arespond(self, text, *, history=None, thread_id=None):
        self.calls.append(text)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.fail_on and self.fail_on in text:
                raise RuntimeError("model down")
            emotion = "anger" if "angry" in text else "neutral"
            return Reply(
                text=f"I hear you: {text}",
                user_emotion=Prediction(label=emotion),
                strategy=Prediction(label="Open question"),
                system_emotion=Prediction(label="neutral"),
            )
        finally:
            self.in_flight -= 1


@pytest.fixture
def examples():
    return synthetic_examples(4)


async def test_runner_bounds_concurrency_and_resumes_without_recomputing(tmp_path, examples):
    agent = FakeAgent()
    first = await arun_predictor(AgentPredictor(agent), examples[:5], cache_dir=tmp_path, concurrency=2, progress=False)
    assert first.computed == 5 and first.reused == 0
    assert agent.max_in_flight == 2
    # Resume over a larger set: only the new examples are computed.
    second = await arun_predictor(AgentPredictor(agent), examples, cache_dir=tmp_path, concurrency=3, progress=False)
    assert len(agent.calls) == len(examples)
    assert second.reused == 5 and second.computed == len(examples) - 5
    assert set(second.records) == {e.id for e in examples}
    # Everything finished: a third run computes nothing.
    third = await arun_predictor(AgentPredictor(agent), examples, cache_dir=tmp_path, progress=False)
    assert third.computed == 0 and len(agent.calls) == len(examples)
    assert third.extra["total_computed"] == len(examples)
    # A different configuration has its own cache.
    other = await arun_predictor(
        AgentPredictor(agent, config={"variant": 2}), examples[:1], cache_dir=tmp_path, progress=False
    )
    assert other.computed == 1
    # --fresh recomputes.
    fresh = await arun_predictor(AgentPredictor(agent), examples[:2], cache_dir=tmp_path, progress=False, resume=False)
    assert fresh.computed == 2


async def test_failures_are_recorded_and_retried(tmp_path, examples):
    failing = FakeAgent(fail_on="angry")
    result = await arun_predictor(failing, examples, cache_dir=tmp_path, progress=False)  # a bare agent is wrapped
    n_fail = sum("angry" in e.text for e in examples)
    assert n_fail and result.errors == n_fail
    assert "RuntimeError: model down" in json.dumps(list(result.records.values()))
    healed = FakeAgent()
    again = await arun_predictor(AgentPredictor(healed, name="agent"), examples, cache_dir=tmp_path, progress=False)
    # Same name and config as the bare-agent run: only the failed examples are recomputed.
    assert again.computed == n_fail and again.errors == 0


async def test_scores_and_report(tmp_path, examples):
    agent_result = await arun_predictor(AgentPredictor(FakeAgent(), name="fake"), examples, progress=False)
    majority = MajorityClassifier.fit(examples, MESC)
    majority_result = await arun_predictor(ClassifierPredictor(majority, name="majority"), examples, progress=False)
    rows = [score_run(majority_result, examples, MESC), score_run(agent_result, examples, MESC)]
    fake = rows[1]
    gold_anger = [e.user_emotion == "anger" for e in examples]
    assert fake["user_emotion"]["accuracy"] == pytest.approx(sum(gold_anger) / len(examples))
    assert fake["strategy"]["accuracy"] == pytest.approx(
        sum(e.strategy == "Open question" for e in examples) / len(examples)
    )
    assert fake["system_emotion"]["accuracy"] == 1.0
    assert 0 < fake["reply"]["rouge_l"] <= 100
    assert "reply" not in rows[0]
    table = markdown_table(rows)
    assert "| majority |" in table and "| fake |" in table
    written = write_report({"title": "toy", "rows": rows}, tmp_path / "out", taxonomy=MESC)
    assert json.loads(written["json"].read_text())["rows"][1]["name"] == "fake"
    assert (tmp_path / "out" / "confusion-fake-strategy.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "distribution-user_emotion.png").exists()
    assert "![confusion-fake-strategy.png]" in written["markdown"].read_text()


def test_select_examples_is_seeded_and_ordered(examples):
    a = select_examples(examples, 5, seed=1)
    assert a == select_examples(examples, 5, seed=1)
    assert a != select_examples(examples, 5, seed=2)
    assert [examples.index(e) for e in a] == sorted(examples.index(e) for e in a)
    assert select_examples(examples, None) == examples


async def test_support_agent_with_scripted_model(tmp_path, examples):
    """The real SupportAgent over the keyless scripted model goes through the runner."""
    from mesa import SupportAgent
    from mesa.safety import SafetyPolicy
    from mesa.testing import ScriptedModel

    agent = SupportAgent(
        model=ScriptedModel(
            user_emotion="anger", strategy="Approval", system_emotion="neutral", reply="That sounds hard."
        ),
        taxonomy="mesc",
        safety=SafetyPolicy(llm_assessment=False),
    )
    try:
        result = await arun_predictor(
            AgentPredictor(agent, name="scripted"), examples[:3], cache_dir=tmp_path, concurrency=2, progress=False
        )
    finally:
        agent.close()
    assert result.errors == 0, result.extra
    record = result.records[examples[0].id]
    assert (record["user_emotion"], record["strategy"], record["system_emotion"]) == ("anger", "Approval", "neutral")
    # A fresh thread opens with the AI disclosure; the runner scores the model's own words.
    assert record["reply"] == "That sounds hard." and record.get("disclosure_stripped")
    assert result.config["model"]


async def test_graph_predictor_passes_turn_history_and_context(examples):
    from mesa.eval import GraphPredictor

    class FakeGraph:
        def __init__(self):
            self.seen = []

        async def ainvoke(self, state, config, context=None):
            self.seen.append((state, config, context))
            return {
                "response": "ok",
                "user_emotion": Prediction(label="joy"),
                "strategy": Prediction(label="Approval"),
                "system_emotion": None,
            }

    graph = FakeGraph()
    context = object()
    result = await arun_predictor(GraphPredictor(graph, context, name="g"), examples[:2], progress=False)
    state, config, ctx = graph.seen[0]
    assert state["turn"].text == examples[0].text and state["history"] == examples[0].history
    assert ctx is context and config["configurable"]["thread_id"].startswith("eval-")
    record = result.records[examples[0].id]
    assert (record["user_emotion"], record["strategy"], record["system_emotion"], record["reply"]) == (
        "joy",
        "Approval",
        None,
        "ok",
    )
