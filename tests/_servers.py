"""Helpers for tests that start a real server as a subprocess: a free port, a readiness poll, a sure stop."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, ready: Callable[[int, str], bool], *, name: str, limit: int = 300) -> None:
    """Poll ``url`` (about once a second, ``limit`` times) until ``ready(status, body)``; fail with the server's log."""
    for _ in range(limit):
        if process.poll() is not None:
            pytest.fail(f"{name} exited:\n" + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if ready(response.status, response.read().decode(errors="replace")):
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"{name} did not become ready at {url}:\n" + log.read_text(errors="replace")[-3000:])


def stop(process: subprocess.Popen) -> None:
    """Terminate, then kill if it does not exit within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
