"""`mesa serve`'s HTTP API, driven with Starlette's test client over a scripted agent."""

from __future__ import annotations

import json
import os
import stat

import pytest

pytest.importorskip("starlette", reason="needs the serve extra: pip install 'mesa-esc[serve]'")
pytest.importorskip("multipart", reason="needs the serve extra: pip install 'mesa-esc[serve]'")

from starlette.testclient import TestClient

from mesa.errors import LLMError
from mesa.serve import create_app
from mesa.testing import ScriptedModel

CRISIS = "I want to kill myself tonight."


@pytest.fixture
def script():
    return ScriptedModel(user_emotion="sadness", strategy="Restatement", system_emotion="sadness", reply="That sounds so heavy.")


@pytest.fixture
def agent(make_agent, script):
    return make_agent(model=script)


@pytest.fixture
def client(agent, tmp_path):
    with TestClient(create_app(agent, max_upload_bytes=4096, upload_dir=str(tmp_path))) as test_client:
        yield test_client


def stream_events(client, **request) -> list[dict]:
    with client.stream("POST", "/api/turn/stream", **request) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line.strip()]


def test_health_names_the_model_and_mode(client, script):
    data = client.get("/healthz").json()
    assert data == {"status": "ok", "model": script.model, "mode": "stepwise", "taxonomy": "mesc"}


def test_the_page_is_served_with_its_script_and_styles(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "crisis-panel" in page.text
    assert "http" not in page.text.replace("http-equiv", ""), "the page must not load anything from the network"
    assert "getReader" in client.get("/static/app.js").text
    assert client.get("/static/style.css").status_code == 200


def test_a_json_turn_returns_the_labelled_reply(client):
    response = client.post("/api/turn", json={"text": "I lost my job today", "thread_id": "u1"})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["user_emotion"]["label"] == "sadness" and reply["user_emotion"]["confidence"] == pytest.approx(0.9)
    assert reply["strategy"]["label"] == "Restatement" and reply["system_emotion"]["label"] == "sadness"
    assert reply["text"].endswith("That sounds so heavy.") and reply["thread_id"] == "u1"
    assert reply["safety"]["level"] == "none" and reply["crisis_resources"] is None


def test_a_turn_without_thread_gets_one(client):
    reply = client.post("/api/turn", json={"text": "hello"}).json()
    assert reply["thread_id"] and client.get(f"/api/threads/{reply['thread_id']}").json()["messages"]


def test_the_stream_sends_safety_then_each_stage_then_tokens_then_the_reply(client):
    events = stream_events(client, data={"text": "I lost my job today", "thread_id": "s1"})
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "reply" and kinds.count("reply") == 1
    assert kinds.index("safety") < kinds.index("stage") < kinds.index("token")
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages == ["user_emotion", "strategy", "system_emotion"]
    first_token = kinds.index("token")
    assert all(k == "token" for k in kinds[first_token:-1]), "no stage after the reply started"
    tokens = "".join(e["text"] for e in events if e["type"] == "token")
    reply = events[-1]["reply"]
    assert len([k for k in kinds if k == "token"]) > 1, "the reply arrives in pieces"
    assert reply["text"] == tokens and tokens.endswith("That sounds so heavy.")


def test_a_crisis_turn_carries_the_crisis_contacts(client):
    reply = client.post("/api/turn", json={"text": CRISIS, "thread_id": "c1"}).json()
    assert reply["safety"]["level"] in ("elevated", "imminent")
    resources = reply["crisis_resources"]
    assert resources["emergency"] and resources["contacts"]
    assert any("988" in (c.get("phone") or "") for c in resources["contacts"]), resources
    assert all(c["text"].startswith(c["name"]) for c in resources["contacts"])


def test_a_streamed_crisis_turn_ends_with_the_contacts(client):
    events = stream_events(client, json={"text": CRISIS, "thread_id": "c2"})
    safety = next(e for e in events if e["type"] == "safety")
    assert safety["safety"]["level"] in ("elevated", "imminent")
    assert not [e for e in events if e["type"] == "stage"], "a crisis turn skips the label steps"
    assert events[-1]["reply"]["crisis_resources"]["contacts"]


def test_history_keeps_the_thread(client):
    client.post("/api/turn", json={"text": "first", "thread_id": "h1"})
    client.post("/api/turn", json={"text": "second", "thread_id": "h1"})
    messages = client.get("/api/threads/h1").json()["messages"]
    assert [(m["role"], m["text"]) for m in messages][::2] == [("user", "first"), ("user", "second")]
    assert len(messages) == 4 and client.get("/api/threads/never-used").json()["messages"] == []


@pytest.mark.parametrize("thread_id", ["bad id", "../etc", "-leading-dash", "x" * 200, "semi;colon"])
def test_a_bad_thread_id_is_refused(client, thread_id):
    assert client.post("/api/turn", json={"text": "hi", "thread_id": thread_id}).status_code == 400
    assert client.get("/api/threads/" + thread_id.replace("/", "%2F")).status_code in (400, 404)


def test_a_bad_thread_id_in_the_path_is_a_400(client):
    assert client.get("/api/threads/bad%20id").status_code == 400


def test_an_upload_over_the_cap_is_refused_and_leaves_nothing(client, tmp_path):
    response = client.post("/api/turn", data={"text": "listen"}, files={"audio": ("a.wav", b"x" * 10_000, "audio/wav")})
    assert response.status_code == 413
    stream = client.post("/api/turn/stream", files={"audio": ("a.wav", b"x" * 10_000, "audio/wav")})
    assert stream.status_code == 413
    assert list(tmp_path.glob("mesa-upload-*")) == []


def test_a_chunked_upload_over_the_cap_is_refused(client):
    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        for _ in range(10):
            yield b"x" * 1000
        yield b"\r\n--b--\r\n"

    response = client.post("/api/turn", content=body(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413


def test_an_upload_is_private_while_the_turn_runs_and_gone_after(client, agent, tmp_path, monkeypatch):
    seen = {}
    real = agent.arespond

    async def spy(text=None, **kwargs):
        path = kwargs["audio"]
        seen["file"] = stat.S_IMODE(os.stat(path).st_mode)
        seen["folder"] = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        seen["path"] = path
        return await real(text, **kwargs)

    monkeypatch.setattr(agent, "arespond", spy)
    response = client.post("/api/turn", data={"thread_id": "up1"}, files={"audio": ("voice.webm", b"RIFF" + b"\0" * 100, "audio/webm")})
    assert response.status_code == 200, response.text
    assert seen["file"] == 0o600 and seen["folder"] == 0o700
    assert seen["path"].startswith(str(tmp_path)) and seen["path"].endswith("audio.webm")
    assert not os.path.exists(seen["path"]) and list(tmp_path.glob("mesa-upload-*")) == []
    assert response.json()["text"]


def test_an_image_sent_as_audio_is_refused(client):
    response = client.post("/api/turn", files={"audio": ("face.png", b"\x89PNG....", "image/png")})
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {}}, 400),
        ({"json": {"text": "   "}}, 400),
        ({"json": {"text": 5}}, 400),
        ({"json": ["a list"]}, 400),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415),
        ({"json": {"text": "x" * 9000}}, 413),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, kwargs, status):
    response = client.post("/api/turn", **kwargs)
    assert response.status_code == status and response.json()["error"]


def test_a_failed_model_call_is_a_502_and_an_error_event(client, agent, monkeypatch):
    async def broken(*args, **kwargs):
        raise LLMError("provider unreachable")

    async def broken_stream(*args, **kwargs):
        raise LLMError("provider unreachable")
        yield  # pragma: no cover - makes this an async generator

    monkeypatch.setattr(agent, "arespond", broken)
    monkeypatch.setattr(agent, "astream", broken_stream)
    response = client.post("/api/turn", json={"text": "hi"})
    assert response.status_code == 502 and "provider unreachable" in response.json()["error"]
    events = stream_events(client, json={"text": "hi", "thread_id": "e1"})
    assert events == [{"type": "error", "message": "provider unreachable", "thread_id": "e1"}]


def test_without_the_serve_extra_the_error_names_it(monkeypatch, agent):
    import importlib.util

    from mesa.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"mesa-esc\[serve\]"):
        create_app(agent)


def test_a_turn_posted_by_another_sites_page_is_refused(client):
    """A page elsewhere can make a browser post a form here (no CORS preflight for forms): refuse it."""
    evil = client.post("/api/turn", data={"text": "hi"}, headers={"origin": "https://evil.example"})
    assert evil.status_code == 403
    same = client.post("/api/turn", data={"text": "hi"}, headers={"origin": "http://testserver"})
    assert same.status_code == 200, same.text
