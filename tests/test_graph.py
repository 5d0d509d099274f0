"""Orchestration of the SMES graphs, with a scripted model (no network, no weights)."""

import dataclasses
import itertools
import subprocess
import sys
import textwrap

import pytest
from langgraph.graph import StateGraph

from mesa import SupportAgent
from mesa.errors import StructuredOutputError
from mesa.graphs import SupportContext, build_graph, nodes
from mesa.graphs.context import Demonstration
from mesa.state import Message, PerceptionResult, Prediction, Turn
from mesa.taxonomy import ESCONV
from mesa.testing import ScriptedModel

STEPWISE_NODES = {"perceive", "assess_safety", "user_emotion", "strategy", "system_emotion", "respond"}


def label_calls(script):
    return [c for c in script.calls if c.schema in ("UserEmotion", "Strategy", "SystemEmotion", "FusedTurn")]


def test_stepwise_runs_every_node_in_order(make_agent):
    script = ScriptedModel(user_emotion="sadness", strategy="Approval", system_emotion="neutral", reply="You did what you could.")
    agent = make_agent(model=script)
    reply = agent.respond("I failed my exam and I feel worthless.", thread_id="t")
    assert (reply.user_emotion.label, reply.strategy.label, reply.system_emotion.label) == ("sadness", "Approval", "neutral")
    assert reply.text.endswith("You did what you could.")
    assert STEPWISE_NODES <= set(reply.timings)
    assert [c.schema for c in label_calls(script)] == ["UserEmotion", "Strategy", "SystemEmotion"]
    # each step is conditioned on the ones before
    strategy_prompt = script.calls_for("Strategy")[0].prompt
    assert "sadness" in strategy_prompt and "Approval:" in strategy_prompt
    system_prompt = script.calls_for("SystemEmotion")[0].prompt
    assert "sadness" in system_prompt and "Approval" in system_prompt
    respond_prompt = script.calls_for(None)[-1].prompt
    assert "Approval" in respond_prompt and "I failed my exam" in respond_prompt


def test_fused_makes_one_call_with_the_same_reply_type(make_agent):
    script = ScriptedModel(user_emotion="anxiety", strategy="Question", system_emotion="neutral", reply="What worries you most?")
    agent = make_agent(model=script, mode="fused", taxonomy="esconv")
    reply = agent.respond("I can't sleep before my interview.")
    assert [c.schema for c in label_calls(script)] == ["FusedTurn"]
    assert script.calls_for(None) == []
    assert (reply.user_emotion.label, reply.strategy.label, reply.system_emotion.label) == ("anxiety", "Question", "neutral")
    assert reply.user_emotion.source == "fused" and reply.mode == "fused"
    assert reply.text.endswith("What worries you most?")
    assert "fused_turn" in reply.timings


def test_first_turn_discloses_ai(make_agent):
    agent = make_agent(model=ScriptedModel(reply="ok."))
    first = agent.respond("hello", thread_id="d")
    second = agent.respond("hello again", thread_id="d")
    assert "AI" in first.text
    assert second.text == "ok."


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_crisis_routes_to_the_escalation_protocol(make_agent, mode):
    # a model that would happily answer with an ordinary strategy
    script = ScriptedModel(user_emotion="neutral", strategy="Advisement", reply="Have you tried a bubble bath?")
    agent = make_agent(model=script, mode=mode)
    reply = agent.respond("I want to kill myself tonight.", thread_id="c")
    assert reply.crisis
    assert reply.strategy is None and "bubble bath" not in reply.text
    assert label_calls(script) == []
    assert "crisis_response" in reply.timings
    assert agent.safety.check_crisis_reply(reply.text) == []
    history = agent.history("c")
    assert [m.role for m in history] == ["user", "assistant"] and history[1].text == reply.text


def test_history_accumulates_and_the_window_bounds_the_prompt(make_agent):
    script = ScriptedModel(user_emotion=["fear", "sadness", "anger"], reply=["r1", "r2", "r3"])
    agent = make_agent(model=script, history_window=2)
    for text in ("first message", "second message", "third message"):
        agent.respond(text, thread_id="h")
    history = agent.history("h")
    assert [m.text for m in history if m.role == "user"] == ["first message", "second message", "third message"]
    assert [m.emotion for m in history if m.role == "user"] == ["fear", "sadness", "anger"]
    assert all(m.strategy == "Restatement" for m in history if m.role == "assistant")
    last_prompt = script.calls_for("UserEmotion")[-1].prompt
    assert "second message" in last_prompt and "r2" in last_prompt
    assert "first message" not in last_prompt  # outside the 2-message window
    assert agent.history("other-thread") == []


def test_seeded_history_reaches_the_prompt(make_agent):
    script = ScriptedModel()
    agent = make_agent(model=script)
    agent.respond("and now this", history=[Message(role="user", text="earlier words"), Message(role="assistant", text="earlier reply")])
    assert "earlier words" in script.calls_for("UserEmotion")[0].prompt


def test_invalid_labels_are_reasked_and_never_stored(make_agent):
    script = ScriptedModel(user_emotion=["ecstatic", "joy"], strategy=["Hug", "Hug", "Approval"])
    agent = make_agent(model=script)
    reply = agent.respond("I got the job!", thread_id="v")
    assert reply.user_emotion.label == "joy" and reply.strategy.label == "Approval"
    assert len(script.calls_for("UserEmotion")) == 2 and len(script.calls_for("Strategy")) == 3
    dumps = [snap.values for snap in _state_history(agent, "v")]
    assert dumps and not any("ecstatic" in repr(v) or "'Hug'" in repr(v) for v in dumps)


def test_fused_stream_with_an_invalid_label_is_asked_again_and_never_shown(make_agent):
    script = ScriptedModel(strategy=["Hug", "Approval"], reply=["Hugs to you.", "Well done for going."])
    agent = make_agent(model=script, mode="fused")
    events = list(agent.stream("I went to the interview after all", thread_id="fv"))
    stages = {e.stage: e.prediction.label for e in events if e.type == "stage"}
    assert stages["strategy"] == "Approval"
    streamed = "".join(e.text for e in events if e.type == "token")
    assert "Hugs" not in streamed and events[-1].reply.text.endswith("Well done for going.")
    assert [c.schema for c in label_calls(script)] == ["FusedTurn", "FusedTurn"]
    dumps = [snap.values for snap in _state_history(agent, "fv")]
    assert dumps and not any("'Hug'" in repr(v) or "Hugs" in repr(v) for v in dumps)


def test_fused_reply_streams_as_it_is_written(make_agent):
    script = ScriptedModel(reply="That sounds like a long week, and you still showed up.")
    events = list(make_agent(model=script, mode="fused").stream("long week", thread_id="fs"))
    tokens = [e.text for e in events if e.type == "token"]
    assert len(tokens) > 5  # piece by piece, not one block at the end
    assert "".join(tokens).strip() == events[-1].reply.text


def _state_history(agent, thread_id):
    async def collect():
        return [s async for s in agent.graph.aget_state_history({"configurable": {"thread_id": thread_id}})]

    return agent._runner.run(collect())


def test_strict_model_that_never_answers_validly_fails_clearly_and_stores_nothing(make_agent):
    script = ScriptedModel(strategy="Hug")
    agent = make_agent(model=script, strict=True)
    with pytest.raises(StructuredOutputError) as info:
        agent.respond("hello", thread_id="f")
    assert info.value.attempts == 3
    # only the user's words are kept (marked unanswered, see test_memory.py); no invalid label is stored
    assert [(m.role, m.text, m.unanswered, m.strategy) for m in agent.history("f")] == [("user", "hello", True, None)]


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_stream_gives_stages_before_tokens(make_agent, mode):
    agent = make_agent(model=ScriptedModel(reply="one two three"), mode=mode)
    events = list(agent.stream("hi there", thread_id="s"))
    kinds = [e.type for e in events]
    first_token = kinds.index("token")
    stages = [e.stage for e in events if e.type == "stage"]
    assert stages == ["user_emotion", "strategy", "system_emotion"]
    assert all(kinds.index(k) < first_token for k in ("safety", "stage"))
    assert kinds[-1] == "reply"
    streamed = "".join(e.text for e in events if e.type == "token").strip()
    assert streamed == events[-1].reply.text


async def test_async_respond_and_stream(make_agent):
    agent = make_agent(model=ScriptedModel(reply="async reply"))
    reply = await agent.arespond("hello", thread_id="a")
    assert reply.text.endswith("async reply")
    events = [e async for e in agent.astream("again", thread_id="a")]
    assert events[-1].type == "reply" and events[-1].reply.text == "async reply"
    assert len(agent.history("a")) == 4


def test_custom_graph_replaces_the_strategy_step_and_adds_a_node(make_agent):
    from langgraph.graph import END, START

    from mesa.state import SupportState

    script = ScriptedModel()

    async def my_strategy(state, runtime):
        return {"strategy": Prediction(label="Open question", source="policy")}

    graph = build_graph("stepwise", nodes_override={"select_strategy": my_strategy})
    assert isinstance(graph, StateGraph)
    reply = make_agent(model=script, graph=graph).respond("I feel stuck.")
    assert reply.strategy.label == "Open question" and reply.strategy.source == "policy"
    assert script.calls_for("Strategy") == []

    # a hand-built graph from the public node functions, with an extra node
    async def retrieve(state, runtime):
        return {"extras": {"retrieved": "coping tips"}}

    custom = StateGraph(SupportState, context_schema=SupportContext)
    chain = ["perceive", "assess_safety", "retrieve", "recognize_emotion", "select_strategy", "choose_system_emotion", "respond", "finish_turn"]
    for name in chain:
        custom.add_node(name, retrieve if name == "retrieve" else getattr(nodes, name))
    custom.add_edge(START, chain[0])
    for a, b in itertools.pairwise(chain):
        custom.add_edge(a, b)
    custom.add_edge("finish_turn", END)
    agent = make_agent(model=script, graph=custom)
    reply = agent.respond("still stuck", thread_id="cg")
    assert reply.strategy.label == "Restatement"
    assert agent.state("cg").extras["retrieved"] == "coping tips"
    with pytest.raises(ValueError, match="no node"):
        build_graph("fused", nodes_override={"select_strategy": my_strategy})


def test_compiled_graph_runs_with_an_explicit_context():
    import asyncio

    from mesa.safety import SafetyPolicy

    script = ScriptedModel(reply="plain graph")
    app = build_graph("stepwise").compile()
    ctx = SupportContext(llm=script.as_llm(), safety=SafetyPolicy.default())
    out = asyncio.run(app.ainvoke({"turn": Turn(text="hello")}, context=ctx))
    assert out["response"].endswith("plain graph") and out["strategy"].label == "Restatement"


class FixedClassifier:
    def supports(self, which):
        return which in ("user_emotion", "strategy")

    def predict_distribution(self, which, text, history):
        return {"user_emotion": {"depression": 0.7, "neutral": 0.3}, "strategy": {"Interpretation": 0.6, "Approval": 0.4}}[which]


def test_classifier_as_step_replaces_the_llm_call(make_agent):
    script = ScriptedModel()
    agent = make_agent(model=script, classifier=FixedClassifier(), classifier_use="step")
    reply = agent.respond("my exams went badly")
    assert reply.user_emotion.label == "depression" and reply.user_emotion.source == "classifier"
    assert reply.strategy.label == "Interpretation"
    assert script.calls_for("UserEmotion") == [] and len(script.calls_for("SystemEmotion")) == 1


def test_classifier_as_prior_and_demonstrations_reach_the_prompts(make_agent):
    class Demos:
        def retrieve(self, text, history, k):
            return [Demonstration(context="I lost my dog", user_emotion="sadness", strategy="Restatement")][:k]

    script = ScriptedModel()
    agent = make_agent(model=script, classifier=FixedClassifier(), demonstrations=Demos())
    agent.respond("my exams went badly")
    emotion_prompt = script.calls_for("UserEmotion")[0].prompt
    assert "depression (0.70)" in emotion_prompt and "I lost my dog" in emotion_prompt
    assert "Interpretation (0.60)" in script.calls_for("Strategy")[0].prompt


def test_cache_answers_a_repeated_turn_from_disk(make_agent, tmp_path):
    script = ScriptedModel()
    agent = make_agent(model=script, cache=tmp_path / "graph-cache")
    agent.respond("same words")
    agent.respond("same words")
    assert len(script.calls_for("UserEmotion")) == 1
    agent.respond("other words")
    assert len(script.calls_for("UserEmotion")) == 2


def test_media_without_perception_is_recorded_not_fatal(make_agent, tmp_path):
    agent = make_agent(model=ScriptedModel(reply="heard you"))
    reply = agent.respond("listen", audio=tmp_path / "nothing.wav")
    assert reply.perception["audio"].error and reply.text.endswith("heard you")


def test_perception_clues_reach_the_prompts_and_the_transcript_is_the_text(make_agent, tmp_path):
    class FakePerception:
        async def aperceive(self, turn, taxonomy=None):
            return {
                "transcript": PerceptionResult(cue="transcript", modality="audio", backend="fake", data={"text": "I am so tired"}),
                "voice": PerceptionResult(cue="voice", modality="audio", backend="fake", clue="low pitch, slow"),
                "face": PerceptionResult(cue="face", modality="video", backend="fake", error="no face found"),
            }

    script = ScriptedModel()
    agent = make_agent(model=script)
    agent.settings = dataclasses.replace(agent.settings, perception=FakePerception())  # settings are one frozen object
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"fake")
    reply = agent.respond(audio=audio, thread_id="p")
    prompt = script.calls_for("UserEmotion")[0].prompt
    assert "I am so tired" in prompt and "voice: low pitch, slow" in prompt and "no face" not in prompt
    assert reply.perception["face"].error == "no face found"
    assert agent.history("p")[0].text == "I am so tired"


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown graph mode"):
        SupportAgent(model=ScriptedModel(), mode="telepathic")


def test_node_functions_are_public():
    for name in ("perceive", "assess_safety", "recognize_emotion", "select_strategy", "choose_system_emotion", "respond", "fused_turn", "crisis_response", "finish_turn"):
        assert callable(getattr(nodes, name))


def test_sqlite_memory_survives_a_new_process(tmp_path):
    db = tmp_path / "chats.sqlite"
    program = textwrap.dedent(
        f"""
        import sys
        from mesa import SupportAgent
        from mesa.state import Message
        from mesa.testing import ScriptedModel
        script = ScriptedModel(user_emotion=sys.argv[1], reply="reply " + sys.argv[2])
        with SupportAgent(model=script, memory={str(db)!r}) as agent:
            agent.respond("message " + sys.argv[2], thread_id="persist")
            history = agent.history("persist")
            assert all(isinstance(m, Message) for m in history), history
            print("|".join(f"{{m.role}}:{{m.text}}:{{m.emotion}}" for m in history))
        """
    )
    first = subprocess.run([sys.executable, "-c", program, "fear", "one"], capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", program, "joy", "two"], capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    lines = second.stdout.strip().splitlines()[-1].split("|")
    assert lines[0] == "user:message one:fear"
    assert lines[2] == "user:message two:joy"
    assert len(lines) == 4


def test_esconv_taxonomy_flows_through(make_agent):
    script = ScriptedModel(user_emotion="shame", strategy="Reflection of feelings")
    reply = make_agent(model=script, taxonomy=ESCONV).respond("I embarrassed myself")
    assert reply.strategy.label == "Reflection of feelings"
    assert "Providing Suggestions" in script.calls_for("Strategy")[0].prompt


def test_after_reply_node_can_pause_for_a_human_and_edit_the_reply(make_agent):
    from langgraph.types import interrupt

    async def human_review(state, runtime):
        decision = interrupt({"draft": state.response})
        return {"response": decision["text"]} if decision.get("action") == "edit" else {}

    script = ScriptedModel(reply=["a draft", "second draft"])
    agent = make_agent(model=script, graph=build_graph("stepwise", after_reply={"human_review": human_review}))
    paused = agent.respond("I had a rough day", thread_id="r")
    assert paused.interrupts and paused.interrupts[0]["draft"].endswith("a draft")
    assert agent.history("r") == []  # nothing stored until the human decides
    final = agent.resume("r", {"action": "edit", "text": "A reviewed reply."})
    assert final.text == "A reviewed reply." and not final.interrupts
    assert agent.history("r")[-1].text == "A reviewed reply."
    agent.respond("thanks", thread_id="r")
    assert agent.resume("r", {"action": "approve"}).text == "second draft"


def test_langgraph_json_graphs_load_and_take_a_json_context(monkeypatch):
    monkeypatch.setenv("MESA_ALLOWED_MODELS", "mesa-scripted/*")  # a client's model must be on the operator's list
    import asyncio
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    config = json.loads((root / "langgraph.json").read_text())
    script = ScriptedModel(reply="served")  # default labels fall back to the taxonomy's first ones
    for name, target in config["graphs"].items():
        path, attr = target.split(":")
        spec = importlib.util.spec_from_file_location(f"lg_{name}", root / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        graph = getattr(module, attr)
        out = asyncio.run(graph.ainvoke({"turn": {"text": "hello"}}, context={"llm": script.model, "taxonomy": "esconv"}))
        assert out["response"].endswith("served"), name
        assert out["strategy"].label == "Question" and out["user_emotion"].label == "anxiety"


def test_fused_reply_left_empty_is_written_from_the_decisions(make_agent):
    script = ScriptedModel(strategy="Approval", reply=["", "Well done for trying."])
    reply = make_agent(model=script, mode="fused").respond("I tried my best", thread_id="e")
    assert reply.strategy.label == "Approval" and reply.text.endswith("Well done for trying.")
    assert "Approval" in script.calls_for(None)[0].prompt


# -- inserting nodes before or after any step, without rebuilding the graph -------------------------


def _recorder(name, seen):
    async def node(state, runtime):
        seen.append(name)
        return {}

    return node


def test_a_node_inserted_before_a_step_runs_there_and_the_safety_routing_is_kept(make_agent):
    from mesa.graphs import Insert

    seen: list[str] = []
    inserts = [Insert("look_up", _recorder("look_up", seen), before="recognize_emotion"), Insert("audit", _recorder("audit", seen), after="respond")]
    graph = build_graph("stepwise", insert=inserts)
    assert ("look_up", "recognize_emotion") in graph.edges and ("respond", "audit") in graph.edges and ("audit", "finish_turn") in graph.edges
    script = ScriptedModel()
    agent = make_agent(model=script, graph=graph)
    agent.respond("I had a rough day at work", thread_id="i")
    assert seen == ["look_up", "audit"]
    assert script.calls_for("UserEmotion")[0].prompt  # the emotion step still ran, after look_up
    seen.clear()
    assert agent.respond("I want to kill myself tonight", thread_id="c").safety.crisis
    assert seen == []  # a crisis still routes straight to the protocol


def test_a_node_inserted_after_a_routing_step_takes_over_its_routing(make_agent):
    from mesa.graphs import insert_node

    seen: list[str] = []
    graph = insert_node(build_graph("fused"), "after_safety", _recorder("after_safety", seen), after="assess_safety")
    assert "after_safety" in graph.branches and "assess_safety" not in graph.branches
    agent = make_agent(model=ScriptedModel(), graph=graph, mode="fused")
    agent.respond("hello", thread_id="a")
    assert agent.respond("I want to kill myself tonight", thread_id="b").safety.crisis
    assert seen == ["after_safety", "after_safety"]


def test_an_insert_names_one_existing_node():
    from mesa.graphs import Insert, insert_node

    with pytest.raises(ValueError, match="exactly one"):
        Insert("x", _recorder("x", []))
    with pytest.raises(ValueError, match="no node 'strategy'.*select_strategy"):
        insert_node(build_graph("stepwise"), "x", _recorder("x", []), before="strategy")


def test_a_perception_stream_event_names_its_cue_not_a_stage():
    from mesa import StreamEvent

    result = PerceptionResult(cue="voice", modality="audio", backend="fake", clue="low pitch")
    event = StreamEvent.from_custom({"type": "perception", "cue": "voice", "result": result.model_dump()})
    assert event.cue == "voice" and event.stage is None and event.perception.clue == "low pitch"


def test_the_context_fills_in_prompts_and_safety_so_nodes_read_it_only():
    from mesa.graphs.context import default_safety_policy
    from mesa.prompts import PromptSet

    ctx = SupportContext(llm=ScriptedModel().as_llm())
    assert ctx.prompts == PromptSet.default() and ctx.safety is default_safety_policy()
    assert SupportContext(llm=ctx.llm).safety is ctx.safety  # one default policy per process, not one per run
    assert not hasattr(nodes, "_default_prompts") and not hasattr(nodes, "_default_safety_policy")
