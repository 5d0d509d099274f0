"""Reliability benchmark (issue 9): what holds when turns collide, conversations grow and input is hostile.

Sections (each prints a table; a section that fails or times out prints why and the bench goes on):

a. ten concurrent turns on one thread: how many are kept (in memory, SQLite);
b. one conversation growing to 100 / 1,000 / 10,000 turns, on SQLite (file bytes) and in memory (process
   RSS), and the time per turn measured over a window of scripted turns at each size (must stay flat);
c. rule time on 10 KB / 100 KB / 1 MB of text (``RuleEngine().assess``, ``SafetyPolicy().aassess``),
   each in a subprocess capped at ``--cap`` seconds;
d. time to the crisis reply when the model never answers and the escalation hook blocks (sync and async);
e. peak memory (max RSS of a subprocess) loading a small PNG that declares a huge size.

No real model: everything runs on :class:`mesa.testing.ScriptedModel`. To reach 10,000 turns in minutes,
section b fast-forwards between measurement windows through the same agent and graph with its one model
step answered by a canned node (perception, safety rules, finish_turn's archiving, checkpoints and pruning
all run for real); the timed windows go through the full scripted-model path (LiteLLM + instructor).

Run: ``python bench/reliability_bench.py`` (``--sections a,b``, ``--turns 100,1000``, ``--budget 300``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout's mesa, not an installed one
CRISIS_TEXT = "I want to kill myself tonight. I have the pills ready."


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))


def guarded(name: str, section: Callable[[], None]) -> None:
    """Run a section; an error is printed, not raised, so one unfixed defect does not hide the rest."""
    try:
        section()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
        print(f"\n{name}: failed: {type(exc).__name__}: {exc}")


# -- a. concurrent turns on one thread --------------------------------------------------------------


async def _ten_at_once(agent) -> int:
    await asyncio.gather(*(agent.arespond(f"message {i}", thread_id="busy") for i in range(10)), return_exceptions=True)
    history = await asyncio.to_thread(agent.history, "busy")
    return len([m for m in history if m.role == "user"])


def section_concurrency(workdir: Path) -> None:
    from mesa import SupportAgent
    from mesa.testing import ScriptedModel

    rows = []
    for label, memory in (("in memory", None), ("SQLite file", workdir / "concurrent.sqlite")):
        with SupportAgent(model=ScriptedModel(latency=0.01), memory=memory) as agent:
            kept = asyncio.run(_ten_at_once(agent))
        rows.append((label, 10, kept))
    table("a. ten concurrent turns on one thread_id", ["memory", "turns sent", "turns kept"], rows)


# -- b. storage and time per turn as one conversation grows ---------------------------------------


FAST = {"on": False}  # section b: fast-forward (canned step) or the full scripted-model step


async def _fused_or_canned(state, runtime):
    """The fused step, or during fast-forward the same step without a model call (a canned answer)."""
    from mesa.graphs import nodes
    from mesa.state import Prediction

    if not FAST["on"]:
        return await nodes.fused_turn(state, runtime)
    return {
        "user_emotion": Prediction(label="sadness", confidence=0.8, source="scripted"),
        "strategy": Prediction(label="Restatement", confidence=0.8, source="scripted"),
        "system_emotion": Prediction(label="neutral", confidence=0.8, source="scripted"),
        "response": "That sounds really hard. I am here and I am listening.",
    }


def _message(i: int) -> str:
    return f"Turn {i}: work was long again today and I could not sleep much, I keep worrying about money."


def _sqlite_bytes(db: Path) -> tuple[int, str]:
    wal = db.with_name(db.name + "-wal")
    main, log = db.stat().st_size, wal.stat().st_size if wal.exists() else 0
    return main, f"file {main / 1e6:.2f} MB + {log / 1e6:.2f} MB WAL"


def _process_rss() -> tuple[int, str]:
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return rss, f"process RSS {rss / 1e6:.0f} MB"


def _timed_turns(agent, first: int, count: int) -> list[float]:
    times = []
    for i in range(first, first + count):
        start = time.perf_counter()
        agent.respond(_message(i), thread_id="long")
        times.append(time.perf_counter() - start)
    return times


def section_storage(label: str, memory: Path | None, sizes: Sequence[int], window: int, budget: float) -> None:
    from mesa import SupportAgent
    from mesa.graphs.smes import build_graph
    from mesa.testing import ScriptedModel

    measure = (lambda: _sqlite_bytes(memory)) if memory is not None else _process_rss
    graph = build_graph("fused", nodes_override={"fused_turn": _fused_or_canned})
    agent = SupportAgent(model=ScriptedModel(reply="That sounds really hard. I am here and I am listening."), graph=graph, memory=memory)
    rows, done, deadline = [], 0, time.monotonic() + budget
    try:
        agent.respond("warm-up: imports LiteLLM before anything is timed", thread_id="warm-up")
        previous = (0, measure()[0])
        for size in sizes:
            FAST["on"] = True
            forward: list[float] = []
            while done < size and time.monotonic() < deadline:
                forward += _timed_turns(agent, done, 1)
                done += 1
            FAST["on"] = False
            if done < size:
                rows.append((f"{size:,}", f"not reached in {budget:.0f} s (at {done:,})", "", "", "", ""))
                break
            stored, shown = measure()
            growth = (stored - previous[1]) / max(done - previous[0], 1)
            previous = (done, stored)
            scripted = _timed_turns(agent, done, window)
            done += window
            last = forward[-100:] or [float("nan")]
            rows.append((
                f"{size:,}", shown, f"{growth / 1e3:.2f}",
                f"{statistics.median(scripted) * 1e3:.1f}", f"{statistics.mean(scripted) * 1e3:.1f}",
                f"{statistics.median(last) * 1e3:.1f}",
            ))
        state = agent.state("long")
        note = f"state window {len(state.history)} messages, {state.archived:,} archived in the store"
    finally:
        FAST["on"] = False
        agent.close()
    table(
        f"b. one conversation {label} (fused mode, ScriptedModel; {window} timed turns at each size; {note})",
        ["turns", "stored", "KB added/turn", "ms/turn median", "ms/turn mean", "fast-forward ms/turn (last 100)"],
        rows,
    )


# -- c. rule time on large text -------------------------------------------------------------------

RULE_PROGRAM = """
import asyncio, sys, time
size, which = int(sys.argv[1]), sys.argv[2]
base = "I feel tired of everything lately, nobody would notice if I was gone, work is hard. "
text = (base * (size // len(base) + 1))[:size]
from mesa.safety import RuleEngine, SafetyPolicy
if which == "rules":
    engine = RuleEngine()
    start = time.perf_counter(); engine.assess(text); print(time.perf_counter() - start)
else:
    policy = SafetyPolicy()
    start = time.perf_counter(); asyncio.run(policy.aassess(text)); print(time.perf_counter() - start)
"""


def _rule_time(size: int, which: str, cap: float) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", RULE_PROGRAM, str(size), which],
            check=False, capture_output=True, text=True, timeout=cap, cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return f"> {cap:.0f} s (stopped)"
    if done.returncode != 0:
        return "error: " + (done.stderr.strip().splitlines() or ["?"])[-1][:80]
    return f"{float(done.stdout.strip().splitlines()[-1]):.3f} s"


def section_rules(cap: float) -> None:
    rows = []
    for label, size in (("10 KB", 10_000), ("100 KB", 100_000), ("1 MB", 1_000_000)):
        rows.append((label, _rule_time(size, "rules", cap), _rule_time(size, "policy", cap)))
    table(
        f"c. rule time on large text (each in a subprocess, capped at {cap:.0f} s)",
        ["text", "RuleEngine().assess", "SafetyPolicy().aassess (no LLM)"],
        rows,
    )


# -- d. crisis reply with a hanging model and hook -------------------------------------------------


async def _crisis_reply_time(kind: str, limit: float) -> str:
    from mesa import SupportAgent
    from mesa.safety import SafetyPolicy
    from mesa.testing import ScriptedModel

    release = threading.Event()
    released = asyncio.Event()

    def sync_hook(event) -> None:
        release.wait(600)

    async def async_hook(event) -> None:
        await released.wait()

    policy = SafetyPolicy(on_escalation=sync_hook if kind == "sync" else async_hook)
    agent = SupportAgent(model=ScriptedModel(latency=3600), safety=policy)  # a model that never answers
    start = time.perf_counter()
    try:
        reply = await asyncio.wait_for(agent.arespond(CRISIS_TEXT, thread_id="crisis"), limit)
        elapsed = time.perf_counter() - start
        return f"{elapsed:.2f} s (crisis={reply.crisis})"
    except TimeoutError:
        return f"no reply within {limit:.0f} s"
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return f"{time.perf_counter() - start:.2f} s: {type(exc).__name__}: {str(exc)[:60]}"
    finally:
        release.set()
        await asyncio.to_thread(agent.close)


def section_crisis(limit: float) -> None:
    rows = [(f"{kind} hook blocks", asyncio.run(_crisis_reply_time(kind, limit))) for kind in ("sync", "async")]
    table("d. time to the crisis reply, model never answers, escalation hook blocks", ["hook", "reply after"], rows)


# -- e. image bomb -----------------------------------------------------------------------------------


def write_png(path: Path, width: int, height: int) -> None:
    """An all-black RGB PNG; it compresses to about a thousandth of its decoded size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\x00" * (1 + 3 * width)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


IMAGE_PROGRAMS = {
    "mesa.tools.media.load_images": "from mesa.tools.media import load_images\nimages = load_images(sys.argv[1])\n",
    "SupportAgent(perception='fer').respond(image=...)": (
        "from mesa import SupportAgent\nfrom mesa.testing import ScriptedModel\n"
        "with SupportAgent(model=ScriptedModel(), perception=['fer']) as agent:\n"
        "    reply = agent.respond(image=sys.argv[1])\n"
        "    print('outcome: replied;', '; '.join(f'{k}: {(v.error or \"ok\")[:60]}' for k, v in reply.perception.items()))\n"
    ),
}


def _peak_rss(program: str, image: Path, timeout: float) -> tuple[str, str]:
    """(max RSS of a subprocess running ``program`` on ``image``, its outcome)."""
    code = "import sys\ntry:\n" + "".join(f"    {line}\n" for line in program.splitlines())
    code += "    print('outcome: loaded')\nexcept Exception as exc:\n    print('outcome:', type(exc).__name__, str(exc)[:70])\n"
    proc = subprocess.Popen([sys.executable, "-c", code, str(image)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    outcome = next((line.removeprefix("outcome: ") for line in output.splitlines() if line.startswith("outcome:")), None)
    if outcome is None:
        outcome = f"killed after {timeout:.0f} s" if proc.returncode < 0 else f"exit {proc.returncode}"
    return f"{usage.ru_maxrss / 1024:.0f}", outcome  # ru_maxrss is in KiB on Linux


def section_image_bomb(workdir: Path, side: int, timeout: float) -> None:
    small, bomb = workdir / "small.png", workdir / "bomb.png"
    write_png(small, 64, 64)
    write_png(bomb, side, side)
    rows = []
    for name, program in IMAGE_PROGRAMS.items():
        for label, image in (("64x64 PNG (baseline)", small), (f"{side}x{side} PNG, {bomb.stat().st_size / 1e6:.2f} MB file", bomb)):
            rss, outcome = _peak_rss(program, image, timeout)
            rows.append((name, label, rss, outcome))
    table(
        f"e. image bomb: a small PNG declaring {side * side / 1e6:.0f} megapixels ({side * side * 3 / 1e9:.2f} GB decoded)",
        ["path", "image", "peak RSS MB", "outcome"],
        rows,
    )


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="a,b,c,d,e", help="which sections to run (default: all)")
    parser.add_argument("--turns", default="100,1000,10000", help="conversation sizes for section b")
    parser.add_argument("--window", type=int, default=30, help="timed scripted turns at each size (section b)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds section b may spend fast-forwarding")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds each rule timing may take (section c)")
    parser.add_argument("--crisis-limit", type=float, default=60.0, help="seconds to wait for the crisis reply (d)")
    parser.add_argument("--bomb-side", type=int, default=12_000, help="width and height of the image bomb (e)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory(prefix="mesa-reliability-") as folder:
        workdir = Path(folder)
        print(f"mesa reliability bench: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        if "a" in sections:
            guarded("a. concurrent turns", lambda: section_concurrency(workdir))
        if "b" in sections:
            sizes = [int(s) for s in args.turns.split(",")]
            guarded("b. storage", lambda: section_storage("on SQLite", workdir / "long.sqlite", sizes, args.window, args.budget))
            guarded("b. storage", lambda: section_storage("in memory", None, sizes, args.window, args.budget))
        if "c" in sections:
            guarded("c. rules", lambda: section_rules(args.cap))
        if "d" in sections:
            guarded("d. crisis", lambda: section_crisis(args.crisis_limit))
        if "e" in sections:
            guarded("e. image bomb", lambda: section_image_bomb(workdir, args.bomb_side, timeout=120))


if __name__ == "__main__":
    main()
