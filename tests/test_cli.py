"""The mesa command: `respond` prints JSON, `chat` streams labelled turns."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mesa.cli import app
from mesa.testing import ScriptedModel

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
    result = runner.invoke(app, ["respond", "hi", "--model", ScriptedModel().model, "--taxonomy", "klingon"])
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
    result = runner.invoke(app, ["chat", "--model", ScriptedModel().model], input="")
    assert result.exit_code == 0 and "bye" in result.output


@pytest.mark.integration
def test_cli_respond_with_the_embedded_model_in_a_new_process():
    out = subprocess.run(
        [sys.executable, "-m", "mesa.cli", "respond", "I lost my job today.", "--mode", "fused"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["text"] and data["strategy"]["label"]
