"""Media the perception tests make themselves: speech (espeak-ng + sox), faces (scikit-image), videos (ffmpeg)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SENTENCES = [
    "I failed my exam and I feel worthless.",
    "My best friend moved away last week.",
    "I cannot sleep because I worry about money.",
]


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def speech_wav(
    directory: Path, text: str, name: str = "speech", *, rate: int = 140, pitch: int = 50, gap: float = 0.0
) -> Path:
    """Synthesised English speech, 16 kHz mono WAV. ``gap`` seconds of silence go after each sentence."""
    directory.mkdir(parents=True, exist_ok=True)
    if gap:
        parts = []
        for i, sentence in enumerate(s for s in text.split(".") if s.strip()):
            raw = directory / f"{name}_{i}_raw.wav"
            _run("espeak-ng", "-v", "en-us", "-s", str(rate), "-p", str(pitch), "-w", str(raw), sentence.strip() + ".")
            padded = directory / f"{name}_{i}.wav"
            _run("sox", "-D", str(raw), "-r", "16000", "-c", "1", str(padded), "pad", "0", str(gap))
            parts.append(str(padded))
        out = directory / f"{name}.wav"
        _run("sox", "-D", *parts, str(out))
        return out
    raw = directory / f"{name}_raw.wav"
    _run("espeak-ng", "-v", "en-us", "-s", str(rate), "-p", str(pitch), "-w", str(raw), text)
    out = directory / f"{name}.wav"
    _run("sox", "-D", str(raw), "-r", "16000", "-c", "1", str(out))
    return out


def silence_wav(directory: Path, seconds: float = 2.0, name: str = "silence") -> Path:
    out = directory / f"{name}.wav"
    _run("sox", "-D", "-n", "-r", "16000", "-c", "1", str(out), "trim", "0", str(seconds))
    return out


def tone_wav(directory: Path, seconds: float, name: str = "tone") -> Path:
    out = directory / f"{name}.wav"
    _run("sox", "-D", "-n", "-r", "16000", "-c", "1", str(out), "synth", str(seconds), "sine", "220", "vol", "0.3")
    return out


def face_png(directory: Path, name: str = "face") -> Path:
    """scikit-image's astronaut (Eileen Collins, smiling), as a PNG."""
    import skimage.data
    import skimage.io

    out = directory / f"{name}.png"
    skimage.io.imsave(str(out), skimage.data.astronaut(), check_contrast=False)
    return out


def no_face_png(directory: Path, name: str = "noface") -> Path:
    """An image with no face in it (a smooth colour gradient)."""
    import numpy as np
    import skimage.io

    y, x = np.mgrid[0:240, 0:320]
    image = np.stack([x * 255 // 320, y * 255 // 240, np.full_like(x, 128)], axis=-1).astype("uint8")
    out = directory / f"{name}.png"
    skimage.io.imsave(str(out), image, check_contrast=False)
    return out


def blank_png(directory: Path, value: int = 255, name: str = "blank") -> Path:
    """A uniform image."""
    import numpy as np
    import skimage.io

    out = directory / f"{name}.png"
    skimage.io.imsave(str(out), np.full((120, 160, 3), value, dtype="uint8"), check_contrast=False)
    return out


def video(
    directory: Path, image: Path, audio: Path | None, name: str = "turn", *, seconds: float | None = None, fps: int = 5
) -> Path:
    """A short MP4 of a still image, with ``audio`` as its sound track (or silent when ``None``)."""
    out = directory / f"{name}.mp4"
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", str(fps), "-i", str(image)]
    if audio is not None:
        cmd += ["-i", str(audio), "-c:a", "aac"]
        if seconds is None:
            from mesa.tools import load_audio

            seconds = round(load_audio(audio).duration, 2)
    if seconds is not None:
        cmd += ["-t", str(seconds)]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-vf", "scale=320:320", str(out)]
    _run(*cmd)
    return out


def corrupt_copy(source: Path, directory: Path, name: str) -> Path:
    """The first bytes of ``source`` followed by garbage, under ``name`` (keeps the suffix)."""
    data = source.read_bytes()
    out = directory / name
    out.write_bytes(b"\x00\xff" * 64 + data[200:400][::-1] + b"garbage" * 100)
    return out


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after lower-casing and removing punctuation."""
    import re

    def words(text: str) -> list[str]:
        return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()

    ref, hyp = words(reference), words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(1, len(ref))


def counting_speech(text: str = "heard it"):
    """A speech backend that answers ``text`` to any audio and counts its calls (``.calls``)."""
    from mesa.tools import SpeechBackend, Transcript

    class CountingSpeech(SpeechBackend):
        name = "counting-speech"

        def __init__(self) -> None:
            super().__init__()
            self.version = "1"
            self.calls = 0

        def transcribe(self, audio) -> Transcript:
            self.calls += 1
            return self._stamp(Transcript(text=text))  # type: ignore[return-value]

    return CountingSpeech()
