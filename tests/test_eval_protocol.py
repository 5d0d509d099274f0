"""History protocols: under "predicted" earlier user turns carry the predictor's own labels, never gold."""

from __future__ import annotations

import json

import pytest
from _eval_fixtures import run_eval_cli, synthetic_examples, write_mesc_csv

from mesa.errors import MesaError
from mesa.eval import AgentPredictor, ClassifierPredictor, arun_predictor, load_mesc, select_examples
from mesa.eval.protocol import with_predicted_history
from mesa.state import Prediction, Reply
from mesa.taxonomy import MESC


class FearAgent:
    """Always says the user feels fear; remembers the history each call saw."""

    mode = "stepwise"

    def __init__(self) -> None:
        self.seen: dict[str, list] = {}

    async def arespond(self, text, *, history=None, thread_id=None):
        self.seen[text, len(history or [])] = list(history or [])
        return Reply(
            text="I hear you.",
            user_emotion=Prediction(label="fear"),
            strategy=Prediction(label="Open question"),
            system_emotion=Prediction(label="neutral"),
        )


class FearClassifier:
    """A LabelClassifier that always answers "fear" for the user (batched through ClassifierPredictor)."""

    def __init__(self) -> None:
        self.seen: dict[str, list] = {}

    def supports(self, which):
        return which == "user_emotion"

    def predict_distribution(self, which, text, history):
        self.seen[text, len(history)] = list(history)
        dist = dict.fromkeys(MESC.names("user_emotion"), 0.0)
        dist["fear"] = 1.0
        return dist


@pytest.fixture
def mesc_train(tmp_path):
    return load_mesc(write_mesc_csv(tmp_path / "mesc.csv"), "train")


def _user_labels(history):
    return [(m.text, m.emotion) for m in history if m.role == "user"]


@pytest.mark.parametrize("make", [FearAgent, FearClassifier])
async def test_predicted_history_feeds_the_predictors_own_labels(mesc_train, make):
    predictor = make()
    target = predictor if isinstance(predictor, FearAgent) else ClassifierPredictor(predictor)
    await arun_predictor(target, mesc_train, progress=False, history="predicted")
    # "I can't get up in the morning." is the text of the last two examples. The first of them sees
    # "I told you I feel low." (gold sadness) labelled by the predictor, and "Nothing matters anymore."
    # (gold depression) unlabelled: it opens the user's current run of messages, not predicted yet.
    seen = predictor.seen["I can't get up in the morning.", 4]
    assert _user_labels(seen) == [("I told you I feel low.", "fear"), ("Nothing matters anymore.", None)]
    # The therapist's second message in a row: the run was labelled by then.
    later = predictor.seen["I can't get up in the morning.", 5]
    assert _user_labels(later) == [("I told you I feel low.", "fear"), ("Nothing matters anymore.", "fear")]
    # System turns keep their gold strategy and text.
    assert next((m.text, m.strategy) for m in seen if m.role == "assistant") == ("How are you today?", "Open question")


async def test_gold_history_keeps_the_dataset_labels(mesc_train):
    agent = FearAgent()
    await arun_predictor(agent, mesc_train, progress=False, history="gold")
    seen = agent.seen["I can't get up in the morning.", 5]
    assert _user_labels(seen) == [("I told you I feel low.", "sadness"), ("Nothing matters anymore.", "depression")]


def test_a_run_of_user_messages_takes_the_label_of_its_closing_message(mesc_train):
    last = mesc_train[-1]  # the therapist's second message in a row; the user run 3-4 was predicted at 4
    live = with_predicted_history(last, {1: "joy", 4: "anger"})
    assert _user_labels(live.history) == [("I told you I feel low.", "joy"), ("Nothing matters anymore.", "anger")]
    assert last.history[1].emotion == "sadness"  # the example itself is not modified


def test_examples_without_positions_never_show_gold_user_labels(mesc_train):
    bare = mesc_train[-1].model_copy(update={"history_index": []})
    assert all(m.emotion is None for m in with_predicted_history(bare, {}).history if m.role == "user")


async def test_results_are_cached_per_protocol(tmp_path):
    examples = synthetic_examples(3)
    first = await arun_predictor(FearAgent(), examples, cache_dir=tmp_path, progress=False, history="gold")
    other = await arun_predictor(FearAgent(), examples, cache_dir=tmp_path, progress=False, history="predicted")
    again = await arun_predictor(FearAgent(), examples, cache_dir=tmp_path, progress=False, history="predicted")
    assert first.cache_file != other.cache_file
    assert other.computed == len(examples) and again.computed == 0 and again.reused == len(examples)
    assert other.config["history"] == "predicted"


async def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(MesaError, match="history protocol"):
        await arun_predictor(FearAgent(), synthetic_examples(1), progress=False, history="oracle")


def test_by_dialogue_selection_keeps_every_earlier_turn():
    examples = synthetic_examples(10)
    chosen = select_examples(examples, 9, seed=3, by_dialogue=True)
    assert len(chosen) == 9
    picked = {e.id for e in chosen}
    for example in chosen:
        earlier = [e for e in examples if e.dialogue_id == example.dialogue_id and e.turn_index < example.turn_index]
        assert all(e.id in picked for e in earlier)
    assert select_examples(examples, 9, seed=3, by_dialogue=True) == chosen


def test_cli_prints_both_protocols_side_by_side(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from mesa.eval import cli

    data = write_mesc_csv(tmp_path / "mesc.csv")
    app = typer.Typer()
    app.command("eval")(cli.eval_command)
    app.command("train")(cli.train_command)
    out = tmp_path / "report"
    args = ["eval", "--data", str(data), "--split", "train", "--rows", "majority", "--history", "both"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--no-progress", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "both history protocols" in result.output and "(live / gold)" in result.output
    report = json.loads((out / "report.json").read_text())
    assert set(report["protocol_rows"]) == {"predicted", "gold"}
    assert report["rows"][0]["protocol"] == "predicted"
    bad = CliRunner().invoke(app, [*args[:-1], "oracle", "--out", str(out)])
    assert bad.exit_code != 0


class CountingFearAgent(FearAgent):
    """FearAgent that counts its turns."""

    def __init__(self) -> None:
        super().__init__()
        self.turns = 0

    async def arespond(self, text, *, history=None, thread_id=None):
        self.turns += 1
        return await super().arespond(text, history=history, thread_id=thread_id)


async def test_a_predictor_blind_to_history_labels_runs_once_for_both_protocols(tmp_path):
    examples = synthetic_examples(3)
    agent = CountingFearAgent()
    blind = AgentPredictor(agent, name="llm", reads_history_labels=False)
    live = await arun_predictor(blind, examples, cache_dir=tmp_path, progress=False, history="predicted")
    gold = await arun_predictor(blind, examples, cache_dir=tmp_path, progress=False, history="gold")
    assert agent.turns == len(examples)  # the gold run reused the live one: same inputs, same answers
    assert gold.computed == 0 and gold.reused == len(examples) and gold.cache_file == live.cache_file
    assert gold.records == live.records
    assert gold.config["history"] == "gold" and "one run serves both" in gold.config["history_labels"]


async def test_a_predictor_that_may_read_history_labels_runs_each_protocol(tmp_path):
    examples = synthetic_examples(3)
    agent = CountingFearAgent()
    reader = AgentPredictor(agent, name="llm+prior")  # the default: it may read them
    live = await arun_predictor(reader, examples, cache_dir=tmp_path, progress=False, history="predicted")
    gold = await arun_predictor(reader, examples, cache_dir=tmp_path, progress=False, history="gold")
    assert agent.turns == 2 * len(examples) and gold.cache_file != live.cache_file
    assert "history_labels" not in gold.config


def test_eval_both_protocols_runs_an_llm_row_once_and_llm_prior_twice(tmp_path, monkeypatch):
    _, result, out = run_eval_cli(tmp_path, monkeypatch, "llm,llm+demos,llm+prior", "--demos", "1")
    assert result.exit_code == 0, result.output
    files = sorted(p.name.split("-")[0] for p in (out / "cache").glob("llm*.jsonl"))
    assert files == ["llm", "llm_demos", "llm_prior", "llm_prior"]  # llm+prior: one file per protocol
    report = json.loads((out / "report.json").read_text())
    gold = {row["key"]: row for row in report["protocol_rows"]["gold"]}
    assert "one run serves both" in gold["llm-gold"]["config"]["history_labels"]
    assert "history_labels" not in gold["llm+prior-gold"]["config"]


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
async def test_the_llm_prompts_are_the_same_under_both_protocols(mesc_train, make_agent, mode):
    """Why the llm rows may share one run: the model is shown the history's words, never its labels."""
    from mesa.safety import SafetyPolicy
    from mesa.testing import ScriptedModel

    prompts = {}
    for protocol in ("predicted", "gold"):
        script = ScriptedModel(user_emotion="anger", strategy="Approval", system_emotion="neutral", reply="Hard.")
        agent = make_agent(model=script, classifier=None, mode=mode, safety=SafetyPolicy(llm_assessment=False))
        await arun_predictor(AgentPredictor(agent), mesc_train, progress=False, history=protocol, concurrency=1)
        prompts[protocol] = sorted(call.prompt for call in script.calls)
    assert prompts["predicted"] and prompts["predicted"] == prompts["gold"]
