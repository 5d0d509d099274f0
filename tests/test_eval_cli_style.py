"""The evaluation commands: one Typer option style, and the LLM rows through ``mesa eval`` end to end."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from _eval_fixtures import run_eval_cli, write_mesc_csv
from typer.testing import CliRunner

import mesa
from mesa.testing import ScriptedModel

ROOT = Path(mesa.__file__).resolve().parent


def _old_style_parameters(path: Path) -> list[str]:
    """Parameters whose default is a ``typer.Option(...)`` or ``typer.Argument(...)`` call (the pre-Annotated style)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                if isinstance(default, ast.Call) and ast.unparse(default.func) in ("typer.Option", "typer.Argument"):
                    found.append(f"{path.relative_to(ROOT.parent)}:{node.name}:{default.lineno}")
    return found


def test_every_command_declares_its_options_in_the_annotated_style():
    old_style = [hit for path in sorted(ROOT.rglob("*.py")) for hit in _old_style_parameters(path)]
    assert old_style == []


def test_eval_runs_every_llm_row_on_the_llm_subset_under_both_protocols(tmp_path, monkeypatch):
    rows = "majority,classifier,llm,llm+demos,llm+prior"
    script, result, out = run_eval_cli(tmp_path, monkeypatch, rows, "--llm-limit", "1", "--demos", "2")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names[:2] == ["majority", "classifier"]
    assert names[2:] == [f"{row} ({script.model}, stepwise; n=1)" for row in ("llm", "llm+demos", "llm+prior")]
    assert set(report["protocol_rows"]) == {"predicted", "gold"} and report["meta"]["llm_examples"] == 1
    assert [row["name"] for row in report["subset_rows"]] == rows.split(",")
    by_name = {row["name"].split(" ")[0]: row for row in report["rows"]}
    assert by_name["llm+demos"]["config"]["demos"] == 2 and by_name["llm"]["config"]["demos"] == 0
    assert by_name["llm+prior"]["config"]["classifier"] == "train" and by_name["llm"]["config"]["classifier"] is None
    assert by_name["llm"]["user_emotion"]["predicted_distribution"] == {"anger": 1}
    assert "both history protocols" in result.output and "all rows on the same 1-example subset" in result.output


def test_eval_refuses_an_unknown_row_with_a_usage_error():
    from mesa.cli import app

    result = CliRunner().invoke(app, ["eval", "--rows", "majority,oracle"])
    assert result.exit_code == 2 and "oracle" in result.output


def test_eval_turn_timeout_bounds_each_llm_turn(tmp_path):
    """A turn past --turn-timeout counts as failed and the run goes on (a loaded CPU needs a longer one)."""
    from mesa.cli import app

    script = ScriptedModel(hang=True)  # never answers until released
    data = write_mesc_csv(tmp_path / "mesc.csv")
    out = tmp_path / "report"
    args = ["eval", "--data", str(data), "--split", "train", "--rows", "llm", "--limit", "1", "--turn-timeout", "1"]
    try:
        result = CliRunner().invoke(app, [*args, "--model", script.model, "--out", str(out), "--no-progress", "--no-plots"])
    finally:
        script.release()
    assert result.exit_code == 0, result.output
    assert "1 examples failed" in result.output and "TurnTimeoutError" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["rows"][0]["errors"] == 1
