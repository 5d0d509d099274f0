"""The python blocks of the docs run as written (a scripted model stands in for the embedded one).

Blocks of one page run in order in one namespace, as a reader would paste them. A block preceded by
``<!-- snippet: skip (reason) -->`` is not run (it needs a key or a server). Each page runs in a worker
thread with a generous limit, so a snippet that hangs (a call on a closed agent) fails instead of
blocking the suite.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from mesa.testing import ScriptedModel

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["quickstart.md", "concepts/customising.md", "index.md"]
LIMIT_SECONDS = 180  # a hang guard, not a speed check
_BLOCK = re.compile(r"(?P<skip><!-- snippet: skip[^>]*-->\s*\n)?```python\n(?P<code>.*?)```", re.DOTALL)


def python_blocks(page: str) -> list[str]:
    """The runnable python blocks of a docs page, in order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [m["code"] for m in _BLOCK.finditer(text) if not m["skip"]]


def test_blocks_are_found_and_skips_are_honoured():
    assert len(python_blocks("quickstart.md")) == 2
    assert all("openai/" not in block for block in python_blocks("quickstart.md"))


def _run_blocks(blocks: list[str], namespace: dict) -> BaseException | None:
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            for index, block in enumerate(blocks):
                exec(compile(block, f"<snippet {index + 1}>", "exec"), namespace)  # noqa: S102 - our own docs
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(LIMIT_SECONDS)
    if worker.is_alive():
        pytest.fail(f"the snippets did not finish within {LIMIT_SECONDS} s (a call that never returns?)")
    return outcome[0]


def _close_agents(namespace: dict) -> None:
    from mesa.agent import SupportAgent

    for value in namespace.values():
        if isinstance(value, SupportAgent):
            value.close()


@pytest.mark.parametrize("page", PAGES)
def test_the_docs_python_blocks_run(page, monkeypatch, capsys):
    script = ScriptedModel(user_emotion="depression", strategy="Approval", reply="That sounds painful.")
    monkeypatch.setattr("mesa.llm.DEFAULT_MODEL", script.model)  # SupportAgent() gets the script, not the embedded model
    blocks = python_blocks(page)
    assert blocks, f"no python blocks in {page}"
    namespace: dict = {"__name__": "__snippet__"}
    try:
        error = _run_blocks(blocks, namespace)
    finally:
        _close_agents(namespace)
    if error is not None:
        raise error
    if page == "quickstart.md":
        out = capsys.readouterr().out
        assert "depression" in out and "That sounds painful." in out and "\n4\n" in out


def test_the_agents_a_page_creates_are_closed_by_the_page():
    """The quick start closes its agent itself (a reader's script must not leave it running)."""
    blocks = python_blocks("quickstart.md")
    assert any("agent.close()" in block for block in blocks)
