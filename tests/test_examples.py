"""Every example runs, on the embedded model, as a user would run it."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.integration


def run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_quickstart():
    out = run("quickstart.py")
    assert out.count("strategy:") == 2 and out.count("reply:") == 2


def test_quickstart_fused():
    assert run("quickstart.py", "--mode", "fused").count("user emotion:") == 2


def test_custom_graph():
    out = run("custom_graph.py")
    assert "[policy] strategy=Open question" in out
    assert "[retrieval] strategy=Open question" in out
    assert "Peer support group" in out and "Sleep hygiene" in out


def test_human_review():
    out = run("human_review.py", "--auto")
    assert "reviewer: approve" in out and "reviewer: edit" in out
    assert "sent: It sounds like this has been weighing on you." in out
    assert "stored turns: 2" in out
