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

``--safety`` prints the media-safety figures instead (no models, no espeak):

4. peak memory (RSS of a fresh process) on an image bomb — a small PNG that declares a
   huge blank image — refused from its header, versus decoded (what happened when the
   pixel limit was checked after decoding);
5. a download from a local server that drips one byte every 50 ms, against its
   ``download_timeout``: time taken / deadline (goal ≤ 1.1);
6. ``/dev/zero`` and a named pipe given as media: time until refused.
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


def make_png_bomb(path: Path, side: int) -> Path:
    """A PNG declaring ``side`` × ``side`` RGB pixels, all black, compressed row by row (a few MB at most)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)  # filter byte + RGB
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


_PEAK_RSS = """
import resource, sys
from mesa.tools.media import Limits, load_images
import cv2, numpy  # imported before the baseline, as in a running server
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_images(sys.argv[1], limits=Limits(max_image_pixels=int(sys.argv[2])))
    outcome = "decoded"
except Exception as exc:
    outcome = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, outcome)
"""


def peak_rss_loading(path: Path, max_pixels: int) -> tuple[float, float, str]:
    """(baseline MB, peak MB, outcome) of a fresh process that loads ``path`` as an image."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(path), str(max_pixels)],
        capture_output=True, text=True, check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout.split(maxsplit=2)  # fmt: skip
    return int(out[0]) / 1024, int(out[1]) / 1024, out[2].strip()


def safety(side: int) -> None:
    import http.server
    import threading

    from mesa.state import MediaRef
    from mesa.tools import MediaPolicy
    from mesa.tools.media import fetch

    with tempfile.TemporaryDirectory(prefix="mesa-bench-") as tmp:
        tmp_path = Path(tmp)
        bomb = make_png_bomb(tmp_path / "bomb.png", side)
        print(f"4. image bomb: {bomb.stat().st_size / 1e6:.2f} MB PNG declaring {side}x{side} pixels")
        base, refused_peak, outcome = peak_rss_loading(bomb, Limits().max_image_pixels)
        print(f"   refused from the header: peak {refused_peak:7.0f} MB (process baseline {base:.0f} MB): {outcome}")
        base, decoded_peak, outcome = peak_rss_loading(bomb, side * side)
        print(f"   decoded (limit raised):  peak {decoded_peak:7.0f} MB (process baseline {base:.0f} MB): {outcome}")
        print(f"   memory taken by the bomb: {max(0.0, refused_peak - base):.0f} MB refused vs {decoded_peak - base:.0f} MB decoded")

        class Drip(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(2000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        deadline = 2.0
        started = time.perf_counter()
        try:
            fetch(
                f"http://127.0.0.1:{server.server_address[1]}/drip", tmp_path,
                Limits(download_timeout=deadline), MediaPolicy(allow_private_networks=True),
            )  # fmt: skip
            outcome = "downloaded"
        except Exception as exc:  # noqa: BLE001 - the figure is the outcome
            outcome = str(exc)
        took = time.perf_counter() - started
        server.shutdown()
        print(f"5. dripping server, download_timeout={deadline:g} s: {took:.2f} s, ratio {took / deadline:.2f}: {outcome}")

        fifo = tmp_path / "pipe.wav"
        os.mkfifo(fifo)
        for special in ("/dev/zero", str(fifo)):
            started = time.perf_counter()
            ref = MediaRef.from_source(special)
            error = Perception(cache=False, voice=_NullVoice()).perceive(Turn(audio=ref))["voice"].error
            print(f"6. {special}: refused in {(time.perf_counter() - started) * 1000:.1f} ms: {error}")


class _NullVoice:
    name = "null"
    version = None
    kind = "voice"

    def analyze(self, audio):  # pragma: no cover - never reached: the input is refused first
        raise AssertionError

    async def aanalyze(self, audio):  # pragma: no cover
        raise AssertionError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the turn's media")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frame-rate", type=float, default=1.0, help="video frames sampled per second")
    parser.add_argument("--safety", action="store_true", help="print the media-safety figures (4-6) only")
    parser.add_argument("--bomb-side", type=int, default=10_000, help="image bomb width = height, in pixels")
    args = parser.parse_args()
    if args.safety:
        safety(args.bomb_side)
        return

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
