"""Perception benchmark: concurrency, cache, per-backend latency and real-time factor.

Run:  python bench/perception_bench.py [--seconds 12] [--repeats 3]

Needs espeak-ng, sox and ffmpeg (to make the media) and the ``audio`` and
``vision`` extras. It builds one turn — a video of a smiling face with a
synthesised spoken sound track — and prints, measured in this one run:

1. the turn's audio+video perception (speech + voice + face) run concurrently
   versus each backend alone and all of them one after another
   (goal: concurrent ≤ 1.15 × the slower backend alone);
2. the same turn again, answered from the perception cache (goal ≤ 5 ms);
3. each backend's latency on the decoded input and its real-time factor
   (seconds of compute per second of media).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesa.cache import PerceptionCache
from mesa.state import Turn
from mesa.tools import Perception, get_backend, load_audio, load_images
from mesa.tools.media import Limits, probe

TEXT = (
    "I failed my exam today and I feel worthless. My best friend moved away last week, "
    "and I cannot sleep because I worry about money. I do not know what to do anymore."
)


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_turn_media(directory: Path, seconds: float) -> tuple[Path, Path]:
    import skimage.data
    import skimage.io

    raw, wav = directory / "raw.wav", directory / "speech.wav"
    run("espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), TEXT)
    run("sox", "-D", str(raw), "-r", "16000", "-c", "1", str(wav))
    # repeat the speech to the wanted length
    repeats = max(1, int(seconds // max(0.1, load_audio(wav).duration)) + 1)
    if repeats > 1:
        long = directory / "long.wav"
        run("sox", "-D", *([str(wav)] * repeats), str(long))
        trimmed = directory / "turn.wav"
        run("sox", "-D", str(long), str(trimmed), "trim", "0", str(seconds))
        wav = trimmed
    face = directory / "face.png"
    skimage.io.imsave(str(face), skimage.data.astronaut(), check_contrast=False)
    video = directory / "turn.mp4"
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", "10", "-i", str(face), "-i", str(wav),
        "-c:a", "aac", "-t", f"{load_audio(wav).duration:.2f}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-vf", "scale=480:480", str(video),
    )  # fmt: skip
    return video, wav


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def timed(fn, repeats: int) -> float:
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        values.append(time.perf_counter() - started)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the turn's media")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frame-rate", type=float, default=1.0, help="video frames sampled per second")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mesa-bench-") as tmp:
        tmp_path = Path(tmp)
        video, _ = make_turn_media(tmp_path, args.seconds)
        info = probe(video)
        limits = Limits(frame_rate=args.frame_rate)
        duration = info.duration or args.seconds
        print(
            f"turn: {duration:.1f} s video (480x480, 10 fps) with a synthesised sound track; "
            f"frames sampled at {args.frame_rate:g}/s; machine: {sys.platform}, python {sys.version.split()[0]}"
        )

        speech = get_backend("speech", "faster-whisper")
        voice = get_backend("voice", "prosody")
        face = get_backend("face", "fer")
        t0 = time.perf_counter()
        for backend in (speech, voice, face):
            backend.warmup()
        # first calls compile / allocate: keep them out of the figures
        warm = Perception(speech=speech, voice=voice, face=face, cache=False, limits=limits)
        warm.perceive(Turn.from_inputs(video=video))
        print(f"model loading + warm-up: {time.perf_counter() - t0:.2f} s (not counted below)")
        cores = os.cpu_count()
        print(
            f"cores: {cores}; load average before the run: {os.getloadavg()[0]:.1f} "
            "(timings are only meaningful when it is well below the core count)\n"
        )

        turn = Turn.from_inputs(video=video)
        # Rounds interleave the single-backend runs and the concurrent run, so that a change in the
        # machine's load during the benchmark affects both sides alike.
        single = {
            kind: Perception(cache=False, limits=limits, **{kind: backend})
            for kind, backend in (("speech", speech), ("voice", voice), ("face", face))
        }
        everything = Perception(speech=speech, voice=voice, face=face, cache=False, limits=limits)
        samples: dict[str, list[float]] = {kind: [] for kind in (*single, "concurrent")}
        cpu: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        for _ in range(args.repeats):
            c0 = cpu_seconds()
            for kind, p in single.items():
                samples[kind].append(timed(lambda p=p: p.perceive(turn), 1))
            c1 = cpu_seconds()
            samples["concurrent"].append(timed(lambda: everything.perceive(turn), 1))
            cpu["sequential"].append(c1 - c0)
            cpu["concurrent"].append(cpu_seconds() - c1)
        alone = {kind: statistics.median(samples[kind]) for kind in single}
        concurrent = statistics.median(samples["concurrent"])
        sequential = sum(alone.values())
        slowest_kind = max(alone, key=alone.__getitem__)
        print("1. one audio+video turn (decoding included), median of", args.repeats, "interleaved rounds")
        for kind, seconds in alone.items():
            print(f"   {kind:<7} alone           {seconds * 1000:8.1f} ms")
        print(f"   sequential (sum)        {sequential * 1000:8.1f} ms")
        print(f"   concurrent (perceive)   {concurrent * 1000:8.1f} ms")
        ratio = concurrent / alone[slowest_kind]
        print(
            f"   concurrent / slower alone ({slowest_kind}) = {ratio:.2f}x   (goal <= 1.15x)"
            f"   concurrent / sequential = {concurrent / sequential:.2f}x"
        )
        print(
            f"   CPU time of the process: sequential {statistics.median(cpu['sequential']):.2f} s, "
            f"concurrent {statistics.median(cpu['concurrent']):.2f} s (same work; the wall-clock gain needs free cores)\n"
        )

        cache = PerceptionCache(tmp_path / "cache")
        cached = Perception(speech=speech, voice=voice, face=face, cache=cache, limits=limits)
        first = cached.perceive(turn)
        assert not any(r.cached for r in first.values())
        hits = []
        for _ in range(50):
            started = time.perf_counter()
            again = cached.perceive(turn)
            hits.append(time.perf_counter() - started)
            assert all(r.cached for r in again.values())

        async def async_hits() -> list[float]:
            out = []
            for _ in range(50):
                started = time.perf_counter()
                await cached.aperceive(turn)
                out.append(time.perf_counter() - started)
            return out

        ahits = asyncio.run(async_hits())
        print("2. the same turn again, from the perception cache (3 cues), 50 runs")
        print(f"   perceive():  median {statistics.median(hits) * 1000:.2f} ms, max {max(hits) * 1000:.2f} ms")
        print(
            f"   aperceive(): median {statistics.median(ahits) * 1000:.2f} ms, max {max(ahits) * 1000:.2f} ms   (goal <= 5 ms)\n"
        )
        cache.close()

        audio = load_audio(video)
        frames = load_images(video, limits=limits)
        print(
            f"3. per backend on the decoded input ({audio.duration:.1f} s audio, {len(frames)} frames), median of {args.repeats}"
        )
        print(f"   {'backend':<34} {'latency':>10} {'RTF':>7}")
        rows = [
            ("speech  faster-whisper tiny.en int8", lambda: speech.transcribe(audio)),
            ("voice   prosody (librosa)", lambda: voice.analyze(audio)),
            (f"face    fer tflite ({len(frames)} frames)", lambda: face.recognize(frames)),
        ]
        for label, fn in rows:
            seconds = timed(fn, args.repeats)
            print(f"   {label:<34} {seconds * 1000:8.1f} ms {seconds / audio.duration:7.3f}")
        decode_audio = timed(lambda: load_audio(video), args.repeats)
        decode_frames = timed(lambda: load_images(video, limits=limits), args.repeats)
        print(
            f"   {'decode audio track (PyAV)':<34} {decode_audio * 1000:8.1f} ms {decode_audio / audio.duration:7.3f}"
        )
        print(f"   {'sample frames (PyAV)':<34} {decode_frames * 1000:8.1f} ms {decode_frames / audio.duration:7.3f}")
        print(f"   face per frame: {timed(lambda: face.recognize(frames), 1) / len(frames) * 1000:.1f} ms")
        print(f"\nload average after the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
