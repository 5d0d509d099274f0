"""Concurrency benchmark: 1 / 10 / 50 concurrent turns on one agent, through an OpenAI-compatible server.

The model server is a fake that answers every request after a fixed latency (``--latency``, default
0.5 s), on 127.0.0.1 only, in its own process (so its CPU does not count against mesa). It answers
what mesa asks, through the same path a real server takes: LiteLLM's ``openai/`` provider, HTTP,
instructor's schema mode (``response_format``), streamed text and streamed structured output; the
answers are built by :class:`mesa.testing.ScriptedModel` from the request's schema.

For each mode (stepwise, fused) and each concurrency N, N turns (distinct threads) start together on one
``SupportAgent`` and the wall time of the batch is divided by the wall time of one turn. Goal: 50
concurrent turns ≤ 2× one turn. Before measuring, one batch of the largest N warms imports, clients and
pooled connections (a server's steady state). Each row also prints the CPU per turn of the whole process
and of the agent's event-loop thread (where every turn's Python work runs), and the time spent in GC.

    python bench/concurrency_bench.py                    # latency 0.5 s, N = 1, 10, 50, both modes, arespond
    python bench/concurrency_bench.py --stream           # the same through astream (tokens handed to the caller)
    python bench/concurrency_bench.py --gc-freeze        # gc.freeze() after the warm-up
    python bench/concurrency_bench.py --calls --latency 0  # CPU per LLM call of each kind vs bare LiteLLM
    python bench/concurrency_bench.py --profile fused    # where the loop thread's time goes (10 concurrent turns)

What bounds the ratio: ratio ≳ 1 + N x (loop CPU per turn) / (one turn). The model's waits overlap, the
CPU on the one loop thread does not. Findings (2026-11-30, 2 cores shared with other jobs, load average
10.6-12.3; wall ratios are inflated by that and vary run to run, the loop CPU per turn is steadier; see
docs/performance.md#concurrency for the table):

- Before (commit 538ce6d, same bench): fused 39.8 ms loop CPU per turn at N=50 (arespond), ratio 8.4x;
  stepwise 53.6 ms, 3.1x. The fused turn's one streamed structured call paid instructor's partial
  validation at every chunk (~8 ms per turn) on top of LiteLLM's chunk handling (~0.6 ms per chunk), and
  every structured call had instructor build a new response-model subclass and JSON schema (~2-3 ms).
- After: the fused answer is read as raw JSON incrementally (LLM.astream_fields), instructor's wrapped
  model is built once per model, and respond/arespond ask the fused answer unstreamed (nobody hears the
  tokens). Fused arespond 17.0 ms per turn (12.2 ms with --gc-freeze), ratio 4.5x (3.9x); fused astream
  30.6 ms (22.8 ms); stepwise ~43-47 ms.
- Not met in one process: on a free core the floor is ~2.1x (fused arespond, frozen GC) to ~3.5x (fused
  streamed). What remains per turn is LiteLLM's call (~5 ms, plus ~0.6 ms per streamed chunk), the
  LangGraph run with its checkpoint, and GC over LiteLLM's ~0.5 M long-lived objects. Beyond that:
  more processes (docs/deploy.md, "How many turns one process answers").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Self

TEXTS = [
    "I failed my exam and I feel worthless.",
    "My partner and I keep fighting about money.",
    "I haven't slept properly in weeks because of work.",
    "I finally told my sister how I feel and it went well.",
]
REPLY = "That sounds really hard. It makes sense that you feel this way, and I'm here to listen."


# -- the fake model server (its own process) ---------------------------------------------------------


def fake_server_app(latency: float):
    """A Starlette app speaking OpenAI's chat-completions API, answering after ``latency`` seconds."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from mesa.testing import ScriptedModel

    script = ScriptedModel(reply=REPLY)
    flight = {"now": 0, "max": 0}  # requests the server holds at once: shows whether the client sends them together

    def chunk(delta: dict, finish: str | None = None) -> str:
        body = {"id": "fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    async def stream(answer: str):
        yield chunk({"role": "assistant", "content": ""})
        for i in range(0, len(answer), 12):  # a dozen characters a chunk, as a model's tokens come
            yield chunk({"content": answer[i:i + 12]})
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"

    async def completions(request: Request):
        body = await request.json()
        answer = script.respond_to(body["messages"], body)
        flight["now"] += 1
        flight["max"] = max(flight["max"], flight["now"])
        try:
            await asyncio.sleep(latency)
        finally:
            flight["now"] -= 1
        if body.get("stream"):
            return StreamingResponse(stream(answer), media_type="text/event-stream")
        return JSONResponse({
            "id": "fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    async def ok(request: Request):
        peak = flight["max"]
        if request.query_params.get("reset"):
            flight["max"] = 0
        return JSONResponse({"ok": True, "max_in_flight": peak})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]), Route("/ok", ok)])


def run_fake_server(port: int, latency: float) -> None:
    import uvicorn

    uvicorn.run(fake_server_app(latency), host="127.0.0.1", port=port, log_level="warning", backlog=1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fake_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--fake-server", str(port), "--latency", str(latency)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/ok", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake model server did not start")


# -- the measurement -----------------------------------------------------------------------------------


def make_agent(url: str, mode: str):
    from mesa import LLM, SupportAgent

    llm = LLM("openai/fake", api_base=url + "/v1", api_key="unused", mode="json_schema")
    return SupportAgent(model=llm, mode=mode)


async def one_turn(agent, text: str, thread_id: str, stream: bool):
    """One turn: ``arespond`` (nobody hears the tokens) or ``astream`` (every token handed to the caller)."""
    if not stream:
        return await agent.arespond(text, thread_id=thread_id)
    async for event in agent.astream(text, thread_id=thread_id):
        if event.type == "reply":
            return event.reply
    raise RuntimeError("the stream ended without a reply")


async def batch(agent, n: int, tag: str, stream: bool = False) -> float:
    start = time.perf_counter()
    turns = [one_turn(agent, TEXTS[i % len(TEXTS)], f"{tag}-{i}", stream) for i in range(n)]
    replies = await asyncio.gather(*turns)
    elapsed = time.perf_counter() - start
    assert all(r.text for r in replies), "every turn answered"
    return elapsed


def loop_thread_cpu(agent) -> float | None:
    """CPU seconds the agent's event-loop thread has used (Linux ``/proc``; ``None`` elsewhere).

    Every turn's Python work runs on that one thread, so its CPU per turn x N against one turn's wait
    is what bounds the ratio.
    """
    native = agent._runner.thread.native_id
    try:
        with open(f"/proc/self/task/{native}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcPauses:
    """Seconds spent in garbage collection (all generations, any thread) while it is active."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started

    def __enter__(self) -> Self:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def cpu_batch(agent, n: int, tag: str, stream: bool) -> tuple[float, float, float | None, float]:
    cpu, loop_cpu = time.process_time(), loop_thread_cpu(agent)
    with GcPauses() as pauses:
        wall = asyncio.run(batch(agent, n, tag, stream))
    loop_after = loop_thread_cpu(agent)
    loop_used = None if loop_cpu is None or loop_after is None else loop_after - loop_cpu
    return wall, time.process_time() - cpu, loop_used, pauses.total


def measure(url: str, modes: list[str], counts: list[int], stream: bool, gc_freeze: bool = False) -> list[dict]:
    rows = []
    for mode in modes:
        agent = make_agent(url, mode)
        try:
            # imports, clients and as many pooled connections as the largest batch uses: a steady state
            asyncio.run(batch(agent, max(counts), f"warm-{mode}", stream))
            if gc_freeze:  # what a server does once after start-up: the GC stops rescanning what lives forever
                gc.collect()
                gc.freeze()
            single, _, _, _ = cpu_batch(agent, 1, f"{mode}-one", stream)
            for n in counts:
                wall, cpu, loop_cpu, gc_pause = cpu_batch(agent, n, f"{mode}-{n}", stream)
                rows.append({
                    "mode": mode, "stream": stream, "n": n, "batch_s": wall, "one_turn_s": single, "ratio": wall / single,
                    "cpu_ms_per_turn": 1000 * cpu / n, "loop_cpu_ms_per_turn": None if loop_cpu is None else 1000 * loop_cpu / n,
                    "gc_ms": 1000 * gc_pause,
                })
        finally:
            agent.close()
    return rows


def profile(url: str, mode: str, n: int, stream: bool) -> None:
    import cProfile
    import pstats

    agent = make_agent(url, mode)
    try:
        asyncio.run(batch(agent, n, "warm", stream))
        profiler = cProfile.Profile()
        # The turns run on the agent's loop thread: profile there.
        agent._runner.loop.call_soon_threadsafe(profiler.enable)
        asyncio.run(batch(agent, n, "profiled", stream))
        agent._runner.loop.call_soon_threadsafe(profiler.disable)
        time.sleep(0.5)
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(20)  # where the loop thread's own time goes
        stats.sort_stats("cumulative").print_stats(40)
    finally:
        agent.close()


def call_costs(url: str, calls: int = 30) -> list[tuple[str, float]]:
    """CPU ms per call of each LLM method against the bare LiteLLM call it makes (zero latency, one at a time)."""
    from mesa import LLM
    from mesa.graphs.nodes import fused_model, step_model
    from mesa.llm import import_litellm
    from mesa.taxonomy import MESC

    litellm = import_litellm()
    llm = LLM("openai/fake", api_base=url + "/v1", api_key="unused", mode="json_schema")
    ask = [{"role": "user", "content": TEXTS[0]}]
    fused, step = fused_model(MESC), step_model(MESC, "strategy")

    async def bare(model, stream: bool):
        _, kwargs = llm._stream_request(ask, model, {})  # the request instructor shapes, sent as it is
        response = await litellm.acompletion(**{**kwargs, "stream": stream})
        if stream:
            async for _ in response:
                pass

    async def drain(stream):
        async for _ in stream:
            pass

    cases = {
        "LiteLLM alone, structured request": lambda: bare(step, False),
        "LLM.astructured (instructor)": lambda: llm.astructured(ask, step),
        "LiteLLM alone, fused answer streamed": lambda: bare(fused, True),
        "LLM.astream_fields (fused, mesa's reader)": lambda: drain(llm.astream_fields(ask, fused, text_field="response")),
        "LLM.astream_structured (instructor partials)": lambda: drain(llm.astream_structured(ask, fused)),
        "LLM.astream_text (the reply)": lambda: drain(llm.astream_text(ask)),
    }

    async def cost(make) -> float:
        for _ in range(3):
            await make()
        start = time.thread_time()
        for _ in range(calls):
            await make()
        return 1000 * (time.thread_time() - start) / calls

    return [(name, asyncio.run(cost(make))) for name, make in cases.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the fake model takes per request")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--modes", nargs="+", default=["stepwise", "fused"])
    parser.add_argument("--uvloop", action="store_true", help="the agent's event loop is uvloop's (installed with uvicorn[standard])")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the warm-up (LiteLLM's ~0.5 M long-lived objects)")
    parser.add_argument("--stream", action="store_true", help="turns through agent.astream (tokens handed out) instead of arespond")
    parser.add_argument("--profile", choices=["stepwise", "fused"], help="profile 10 concurrent turns of one mode")
    parser.add_argument("--calls", action="store_true", help="CPU per LLM call of each kind against bare LiteLLM (zero latency)")
    parser.add_argument("--fake-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_server:
        run_fake_server(args.fake_server, args.latency)
        return
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if args.uvloop:  # SupportAgent makes its loop with asyncio.new_event_loop(), which follows the policy
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    server, url = start_fake_server(args.latency)
    try:
        if args.profile:
            profile(url, args.profile, 10, args.stream)
            return
        if args.calls:
            for name, ms in call_costs(url):
                print(f"{name:<46} {ms:6.1f} ms CPU per call")
            return
        rows = measure(url, args.modes, args.counts, args.stream, args.gc_freeze)
    finally:
        server.terminate()
        server.wait(timeout=10)
    how = "agent.astream (tokens streamed to the caller)" if args.stream else "agent.arespond"
    how += ", gc.freeze() after warm-up" if args.gc_freeze else ""
    how += ", uvloop" if args.uvloop else ""
    print(f"model latency {args.latency} s per request; turns through {how}; load average {os.getloadavg()[0]:.1f}")
    print("ratio = batch wall time / one turn's wall time (goal at 50: <= 2); CPU: whole process / the agent's loop thread;")
    print("GC ms: time in garbage collection during the batch")
    print(f"{'mode':<9} {'N':>3} {'one turn s':>10} {'batch s':>8} {'ratio':>6} {'CPU ms/turn':>11} {'loop ms/turn':>12} {'GC ms':>6}")
    for r in rows:
        loop = "?" if r["loop_cpu_ms_per_turn"] is None else f"{r['loop_cpu_ms_per_turn']:.1f}"
        print(f"{r['mode']:<9} {r['n']:>3} {r['one_turn_s']:>10.3f} {r['batch_s']:>8.3f} {r['ratio']:>6.2f} {r['cpu_ms_per_turn']:>11.1f} {loop:>12} {r['gc_ms']:>6.0f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
