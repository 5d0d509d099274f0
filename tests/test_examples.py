"""Every example runs, as a user would run it (the embedded model where the example uses it)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.integration

# script -> tests that run it; a new example without a test fails test_every_example_is_run
COVERED = {"quickstart.py", "custom_graph.py", "human_review.py", "escalation_hook.py", "evaluate.py", "multimodal_turn.py"}


def run(script: str, *args: str, cwd: Path | None = None) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=900, cwd=cwd, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_every_example_is_run():
    assert {p.name for p in EXAMPLES.glob("*.py")} == COVERED


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


def test_escalation_hook():
    out = run("escalation_hook.py")
    assert "crisis: False" in out and "crisis: True" in out
    assert "alerts recorded: 1" in out and "[on-call]" in out


def test_escalation_hook_with_the_second_reader():
    out = run("escalation_hook.py", "--reader", "large")
    assert "crisis: False" in out and "crisis: True" in out and "alerts recorded: 1" in out


def test_evaluate(tmp_path):
    from _eval_fixtures import write_mesc_csv

    data = tmp_path / "mesc"
    data.mkdir()
    write_mesc_csv(data / "mesc_train_val.csv")
    out = run("evaluate.py", str(data), cwd=tmp_path)
    assert "majority" in out and "classifier" in out
    assert (tmp_path / "mesa-eval").is_dir()
