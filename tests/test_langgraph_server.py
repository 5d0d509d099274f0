"""LangGraph Server readiness: the context fills its own defaults, a client's context is allow-listed, the
server graphs keep chat ``messages``; and (integration) `langgraph dev` answers runs driven by langgraph-sdk."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _servers import free_port, stop, wait_until_ready

from mesa.graphs.context import ClientContextPolicy, ContextNotAllowed, SupportContext
from mesa.llm import DEFAULT_MODEL
from mesa.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_context_uses_the_environment(monkeypatch):
    monkeypatch.delenv("MESA_MODEL", raising=False)
    monkeypatch.delenv("MESA_TAXONOMY", raising=False)
    context = SupportContext()
    assert context.llm.model == DEFAULT_MODEL and context.taxonomy.name == "mesc"
    monkeypatch.setenv("MESA_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("MESA_TAXONOMY", "esconv")
    context = SupportContext()
    assert context.llm.model == "openai/gpt-4o-mini" and context.taxonomy.name == "esconv"


def test_the_nodes_no_longer_reach_into_the_server_module():
    source = (ROOT / "mesa" / "graphs" / "nodes.py").read_text()
    assert "graphs.server" not in source


def test_the_client_policy_defaults_to_the_operators_model_only(monkeypatch):
    monkeypatch.delenv("MESA_ALLOWED_MODELS", raising=False)
    monkeypatch.delenv("MESA_ALLOW_LOCAL_FILES", raising=False)
    monkeypatch.setenv("MESA_MODEL", "openai/gpt-4o-mini")
    policy = ClientContextPolicy.from_env()
    assert policy.check_model("openai/gpt-4o-mini") == "openai/gpt-4o-mini"
    for model in ("anthropic/claude-3-haiku", "mesa-local//tmp/evil.gguf", "openai/gpt-4o"):
        with pytest.raises(ContextNotAllowed):
            policy.check_model(model)
    assert policy.check_taxonomy("esconv") == "esconv"
    with pytest.raises(ContextNotAllowed):
        policy.check_taxonomy("/etc/taxonomy.json")


def test_the_operator_widens_the_allow_list(monkeypatch):
    monkeypatch.setenv("MESA_ALLOWED_MODELS", "openai/gpt-4o*, ollama_chat/*")
    policy = ClientContextPolicy.from_env()
    assert policy.check_model("openai/gpt-4o-mini") and policy.check_model("ollama_chat/llama3.1")
    with pytest.raises(ContextNotAllowed):
        policy.check_model("anthropic/claude-3-haiku")
    with pytest.raises(ContextNotAllowed, match="local file"):
        ClientContextPolicy(("*",)).check_model("mesa-local//models/x.gguf")
    assert ClientContextPolicy(("*",), allow_local_files=True).check_model("mesa-local//models/x.gguf")
    assert ClientContextPolicy(("*",), allow_local_files=True).check_taxonomy("mine.json") == "mine.json"


@pytest.fixture
def server_module(monkeypatch):
    script = ScriptedModel(user_emotion="sadness", reply="That is a lot to carry.")
    monkeypatch.setenv("MESA_MODEL", script.model)
    monkeypatch.delenv("MESA_ALLOWED_MODELS", raising=False)
    from mesa.graphs import server

    yield server  # a generator fixture: the script stays alive (reachable by its model string) for the test


def test_a_client_context_cannot_name_files_objects_or_other_models(server_module):
    ServerContext = server_module.ServerContext
    assert ServerContext().llm.model.startswith("mesa-scripted/")
    for bad in ({"llm": "openai/gpt-4o"}, {"taxonomy": "/tmp/t.json"}, {"prompts": "/tmp/prompts"}, {"safety": {}}, {"perception": "default"}):
        with pytest.raises(ContextNotAllowed):
            ServerContext(**bad)


def test_studio_gets_a_context_schema_of_the_client_fields(server_module):
    schema = server_module.stepwise.get_context_jsonschema()
    assert set(schema["properties"]) == {"llm", "taxonomy", "history_window"}
    assert set(schema["properties"]["taxonomy"]["anyOf"][0]["enum"]) >= {"mesc", "esconv"}


async def test_server_graphs_keep_chat_messages_from_either_input(server_module):
    from langgraph.checkpoint.memory import InMemorySaver

    graph = server_module.server_graph("stepwise")
    graph.checkpointer = InMemorySaver()
    config = {"configurable": {"thread_id": "m1"}}
    first = await graph.ainvoke({"turn": {"text": "I lost my job"}}, config, context={})
    second = await graph.ainvoke({"messages": [{"type": "human", "content": "I feel alone"}]}, config, context={})
    kinds = [(m["type"], m["content"]) for m in second["messages"]]
    assert kinds[0] == ("human", "I lost my job") and kinds[2] == ("human", "I feel alone")
    assert [k for k, _ in kinds] == ["human", "ai", "human", "ai"]
    assert kinds[3][1].endswith("That is a lot to carry.") and first["messages"][1]["additional_kwargs"]["mesa"]["user_emotion"] == "sadness"
    assert [m.text for m in (await graph.aget_state(config)).values["history"] if m.role == "user"] == ["I lost my job", "I feel alone"]


# -- the real dev server -------------------------------------------------------------------------


def _langgraph_cli() -> str | None:
    beside = Path(sys.executable).with_name("langgraph")
    return str(beside) if beside.exists() else shutil.which("langgraph")


@pytest.fixture
def dev_server(tmp_path):
    """`langgraph dev` on the repo's langgraph.json, default model scripted (MESA_SCRIPTED), no --allow-blocking."""
    pytest.importorskip("langgraph_sdk", reason="needs the server extra: pip install 'mesa-esc[server]'")
    cli = _langgraph_cli()
    if cli is None or subprocess.run([cli, "dev", "--help"], check=False, capture_output=True).returncode != 0:
        pytest.skip("needs langgraph dev: pip install 'mesa-esc[server]' (langgraph-cli[inmem])")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MESA_SCRIPTED": json.dumps({"user_emotion": "fear", "reply": "You are not alone."})}
    env.pop("MESA_MODEL", None)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [cli, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + "/ok", process, tmp_path / "server.log", lambda status, _: status == 200, name="langgraph dev")
        yield url
    finally:
        stop(process)
        log.close()


async def _drive(url: str) -> dict:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await client.runs.wait(tid, "smes_stepwise", input={"turn": {"text": "I lost my job today."}})
    second = await client.runs.wait(tid, "smes_stepwise", input={"messages": [{"type": "human", "content": "And my rent is due."}]})
    parts = [p async for p in client.runs.stream(tid, "smes_fused", input={"turn": {"text": "Thank you."}}, stream_mode="custom")]
    refused = await client.runs.wait(tid, "smes_stepwise", input={"turn": {"text": "hi"}}, context={"llm": "openai/gpt-4o"}, raise_error=False)
    assistant = (await client.assistants.search(graph_id="smes_stepwise"))[0]
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    state = await client.threads.get_state(tid)
    return {"first": first, "second": second, "parts": parts, "refused": refused, "schemas": schemas, "state": state}


@pytest.mark.integration
def test_langgraph_dev_answers_two_turns_and_a_stream_without_context_or_allow_blocking(dev_server):
    result = asyncio.run(_drive(dev_server))
    assert result["first"]["response"].endswith("You are not alone.")
    assert result["first"]["user_emotion"]["label"] == "fear"
    assert [m["type"] for m in result["second"]["messages"]] == ["human", "ai", "human", "ai"]
    custom = [p.data for p in result["parts"] if p.event == "custom"]
    kinds = [event["type"] for event in custom]
    assert kinds[0] == "safety" and "stage" in kinds and kinds[-1] == "token"
    assert "".join(e["text"] for e in custom if e["type"] == "token").endswith("You are not alone.")
    assert "ContextNotAllowed" in json.dumps(result["refused"]), result["refused"]
    assert set(result["schemas"]["context_schema"]["properties"]) == {"llm", "taxonomy", "history_window"}
    assert len(result["state"]["values"]["history"]) == 6
