"""Conformance kit: check that a perception backend honours its protocol.

Use it in a plug-in's own test suite::

    from mesa.tools.conformance import assert_conforms

    def test_my_face_backend_conforms():
        assert_conforms(MyFaceBackend(), good_input="tests/data/smiling.png")

It checks the protocol (``name``, ``version``, the sync method and its async
twin), that the sync and async methods return the kind's result type on a good
input, that the result is well formed (a probability distribution, a non-empty
transcript, finite prosody features), and that bad input — silence, empty
audio, a missing or corrupt file, an image with no face, empty text — raises
:class:`mesa.tools.MediaError` rather than another exception or a made-up
result. :class:`mesa.tools.Perception` records a ``MediaError`` as the cue's
error; any other exception is recorded too, but reads as a bug.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesa.tools.base import (
    INPUTS,
    METHODS,
    PROTOCOLS,
    RESULT_TYPES,
    SAMPLE_RATE,
    Audio,
    EmotionScores,
    FaceEmotions,
    Images,
    MediaError,
    ProsodyFeatures,
    Transcript,
)

__all__ = ["Check", "ConformanceReport", "assert_conforms", "bad_inputs", "check_backend", "synthetic_voice"]


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    backend: str
    kind: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def __str__(self) -> str:
        lines = [f"{self.kind} backend {self.backend}: {'conforms' if self.passed else 'does NOT conform'}"]
        lines += [
            f"  [{'ok' if c.passed else 'FAIL'}] {c.name}" + (f": {c.detail}" if c.detail else "") for c in self.checks
        ]
        return "\n".join(lines)


def synthetic_voice(seconds: float = 2.0, pitch: float = 150.0, sample_rate: int = SAMPLE_RATE) -> Audio:
    """A voice-like signal: a harmonic tone at ``pitch`` Hz, amplitude-modulated at 4 Hz, with two short gaps."""
    import numpy as np

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    signal = 0.2 * tone * envelope
    for start in (0.6, 1.3):
        signal[int(start * sample_rate) : int((start + 0.3) * sample_rate)] = 0.0
    return Audio(samples=signal.astype(np.float32), sample_rate=sample_rate, source="synthetic")


def _default_good_input(kind: str) -> Any:
    if kind != "speech" and INPUTS[kind] == "audio":  # a tone has no words to transcribe
        return synthetic_voice()
    if kind == "text_emotion":
        return "I finally passed my exam and I am so happy!"
    if kind == "face":
        try:
            import skimage.data

            return Images(frames=[skimage.data.astronaut()], times=[0.0], source="skimage astronaut")
        except ImportError:
            return None
    return None


def bad_inputs(kind: str, directory: str | Path) -> dict[str, Any]:
    """The bad inputs a backend of ``kind`` must reject with :class:`MediaError`, by name."""
    import numpy as np

    directory = Path(directory)
    corrupt_wav = directory / "corrupt.wav"
    corrupt_wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x13\x37" * 200)
    corrupt_png = directory / "corrupt.png"
    corrupt_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    missing = directory / "missing.wav"
    if INPUTS[kind] == "audio":
        return {
            "silence": Audio(samples=np.zeros(2 * SAMPLE_RATE, dtype=np.float32)),
            "empty audio": Audio(samples=np.zeros(0, dtype=np.float32)),
            "missing file": missing,
            "corrupt file": corrupt_wav,
        }
    if kind == "face":
        return {
            "no face": Images(frames=[np.full((240, 320, 3), 127, dtype=np.uint8)], times=[0.0]),
            "no frames": Images(frames=[], times=[]),
            "missing file": missing.with_suffix(".png"),
            "corrupt file": corrupt_png,
        }
    if kind == "text_emotion":
        return {"empty text": "", "blank text": "   \n"}
    return {}


def _well_formed(kind: str, result: Any) -> str | None:
    """None when the result is well formed, else what is wrong."""
    if not isinstance(result, RESULT_TYPES[kind]):
        return f"returned {type(result).__name__}, expected {RESULT_TYPES[kind].__name__}"
    if isinstance(result, EmotionScores):
        if not result.scores:
            return "empty distribution"
        values = list(result.scores.values())
        if any(not (0.0 <= v <= 1.0) or not math.isfinite(v) for v in values):
            return f"scores outside [0, 1]: {result.scores}"
        if abs(sum(values) - 1.0) > 0.05:
            return f"scores sum to {sum(values):.3f}, not 1"
    if isinstance(result, FaceEmotions) and not (0 < result.frames_with_face <= max(result.frames, 1)):
        return f"frames_with_face={result.frames_with_face} of frames={result.frames}"
    if isinstance(result, Transcript):
        if not result.text.strip():
            return "empty transcript"
        if any(s.end < s.start for s in result.segments):
            return "a segment ends before it starts"
    if isinstance(result, ProsodyFeatures):
        numbers = [v for v in result.model_dump().values() if isinstance(v, float)]
        if any(not math.isfinite(v) for v in numbers):
            return "non-finite feature"
        if not result.description:
            return "no description"
    return None


def check_backend(
    backend: Any,
    kind: str | None = None,
    *,
    good_input: Any = None,
    check_bad_inputs: bool = True,
) -> ConformanceReport:
    """Run the conformance checks on ``backend``; ``good_input`` is an input it must handle
    (required for speech: a recording of speech; defaults exist for the other kinds)."""
    kind = kind or getattr(backend, "kind", None)
    report = ConformanceReport(backend=repr(backend), kind=str(kind))
    add = report.checks.append
    if kind not in PROTOCOLS:
        add(Check("kind", False, f"unknown kind {kind!r}; pass kind= one of {sorted(PROTOCOLS)}"))
        return report
    sync_name, async_name = METHODS[kind]
    add(
        Check(
            "follows the protocol",
            isinstance(backend, PROTOCOLS[kind]),
            f"needs name, version, {sync_name}, {async_name}",
        )
    )
    name = getattr(backend, "name", None)
    add(Check("name is a non-empty string", isinstance(name, str) and bool(name), repr(name)))
    version = getattr(backend, "version", "<missing>")
    add(Check("version is a string or None", version is None or isinstance(version, str), repr(version)))
    sync = getattr(backend, sync_name, None)
    asyn = getattr(backend, async_name, None)
    add(Check(f"{async_name} is a coroutine function", inspect.iscoroutinefunction(asyn)))
    if not callable(sync) or not inspect.iscoroutinefunction(asyn):
        return report

    good = good_input if good_input is not None else _default_good_input(kind)
    if good is None:
        add(Check("good input", False, f"pass good_input= for a {kind} backend"))
    else:
        if isinstance(good, (str, Path)) and INPUTS[kind] != "text":
            good = (Audio if INPUTS[kind] == "audio" else Images).coerce(good)
        try:
            result = sync(good)
            problem = _well_formed(kind, result)
            add(
                Check(
                    f"{sync_name} returns a well-formed {RESULT_TYPES[kind].__name__}", problem is None, problem or ""
                )
            )
        except Exception as exc:  # noqa: BLE001
            add(Check(f"{sync_name} handles a good input", False, f"{type(exc).__name__}: {exc}"))
        try:
            result = asyncio.run(asyn(good))
            problem = _well_formed(kind, result)
            add(
                Check(
                    f"{async_name} returns a well-formed {RESULT_TYPES[kind].__name__}", problem is None, problem or ""
                )
            )
        except Exception as exc:  # noqa: BLE001
            add(Check(f"{async_name} handles a good input", False, f"{type(exc).__name__}: {exc}"))

    if check_bad_inputs:
        with tempfile.TemporaryDirectory(prefix="mesa-conformance-") as tmp:
            for label, bad in bad_inputs(kind, tmp).items():
                for method_name, call in ((sync_name, sync), (async_name, lambda x: asyncio.run(asyn(x)))):
                    try:
                        out = call(bad)
                        add(
                            Check(
                                f"{method_name} rejects {label}",
                                False,
                                f"returned {type(out).__name__} instead of raising MediaError",
                            )
                        )
                    except MediaError:
                        add(Check(f"{method_name} rejects {label}", True))
                    except Exception as exc:  # noqa: BLE001
                        add(
                            Check(
                                f"{method_name} rejects {label}",
                                False,
                                f"raised {type(exc).__name__}: {exc} (expected MediaError)",
                            )
                        )
    return report


def assert_conforms(backend: Any, kind: str | None = None, **kwargs: Any) -> ConformanceReport:
    """:func:`check_backend`, failing with the full report when a check fails (for pytest)."""
    report = check_backend(backend, kind, **kwargs)
    assert report.passed, str(report)
    return report
