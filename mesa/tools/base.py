"""Perception protocols, typed results, inputs and errors.

One small method per protocol, each with an async twin. Backends subclass
:class:`Backend` (which provides the twins by running the sync method in a
worker thread) or implement the protocol themselves.

Nothing here imports a heavy library: numpy is imported when an input is
built, audio decoding (PyAV) and image decoding (OpenCV) when a file is read.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from mesa.errors import BackendError, BackendNotFoundError, MediaError, MissingExtraError
from mesa.tools.cancel import CallLock, check_cancelled, run_cancellable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "Audio",
    "AudioEmotionBackend",
    "AudioEmotionClassifier",
    "Backend",
    "BackendError",
    "BackendNotFoundError",
    "BackendResult",
    "EmotionScores",
    "FaceBackend",
    "FaceEmotions",
    "FacialExpressionRecognizer",
    "Images",
    "MediaError",
    "MissingExtraError",
    "ProsodyFeatures",
    "Segment",
    "SpeechBackend",
    "SpeechToText",
    "TextEmotionBackend",
    "TextEmotionClassifier",
    "Transcript",
    "VoiceAnalyzer",
    "VoiceBackend",
    "check_cancelled",
    "distribution_version",
    "missing_extra",
    "require_modules",
]

SAMPLE_RATE = 16_000


# --------------------------------------------------------------------------- errors
# The errors are defined once, in mesa.errors (one tree under MesaError); they stay importable from here.


def missing_extra(what: str, extra: str, missing: Sequence[str] = ()) -> MissingExtraError:
    """A :class:`MissingExtraError` that also names the missing import modules (``.missing``)."""
    detail = f" (missing: {', '.join(missing)})" if missing else ""
    error = MissingExtraError(what + detail, extra, missing[0] if missing else None)
    error.missing = tuple(missing)
    return error


def require_modules(what: str, extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every module can be imported (without importing it)."""
    missing = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    if missing:
        raise missing_extra(what, extra, missing)


def distribution_version(*names: str) -> str | None:
    """The installed version of the first of ``names`` that is installed."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


# --------------------------------------------------------------------------- inputs


@dataclass
class Audio:
    """Mono float32 samples at ``sample_rate`` (16 kHz when decoded by mesa), and where they came from."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    source: str | None = None

    @property
    def duration(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0

    @classmethod
    def coerce(cls, value: Audio | str | Path | Any, *, sample_rate: int = SAMPLE_RATE) -> Audio:
        """An :class:`Audio` from itself, a file path (audio or video: its audio track) or an array."""
        if isinstance(value, Audio):
            return value
        if isinstance(value, (str, Path)):
            from mesa.tools.media import load_audio

            return load_audio(value, sample_rate=sample_rate)
        import numpy as np

        samples = np.asarray(value, dtype=np.float32)
        if samples.ndim != 1:
            raise MediaError(f"audio samples must be one-dimensional, got shape {samples.shape}")
        return cls(samples=samples, sample_rate=sample_rate)

    def resampled(self, sample_rate: int) -> Audio:
        """The same audio at another sample rate (linear interpolation)."""
        import numpy as np

        if sample_rate == self.sample_rate or self.samples.size == 0:
            return Audio(samples=self.samples, sample_rate=sample_rate, source=self.source)
        count = max(1, round(self.samples.size * sample_rate / self.sample_rate))
        old = np.arange(self.samples.size, dtype=np.float64) / self.sample_rate
        new = np.arange(count, dtype=np.float64) / sample_rate
        samples = np.interp(new, old, self.samples).astype(np.float32)
        return Audio(samples=samples, sample_rate=sample_rate, source=self.source)

    def check(self, *, min_seconds: float = 0.1, silence_dbfs: float = -55.0) -> None:
        """Raise :class:`MediaError` if the audio is empty, too short or silent."""
        import numpy as np

        if self.samples.size == 0:
            raise MediaError("empty audio: no samples")
        if self.duration < min_seconds:
            raise MediaError(f"audio too short: {self.duration:.2f} s")
        if not np.all(np.isfinite(self.samples)):
            raise MediaError("corrupt audio: non-finite samples")
        peak = float(np.max(np.abs(self.samples)))
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64))))
        if peak <= 1e-6 or 20 * np.log10(max(rms, 1e-12)) < silence_dbfs:
            raise MediaError("silence: no speech or voice in the audio")


@dataclass
class Images:
    """RGB uint8 images (H×W×3): one still, or frames sampled from a video with their times (s)."""

    frames: list[np.ndarray]
    times: list[float] = field(default_factory=list)
    source: str | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def coerce(cls, value: Images | str | Path | Any, **sampling: Any) -> Images:
        """:class:`Images` from itself, an image or video path, one RGB array or a list of them."""
        if isinstance(value, Images):
            return value
        if isinstance(value, (str, Path)):
            from mesa.tools.media import load_images

            return load_images(value, **sampling)
        import numpy as np

        if isinstance(value, np.ndarray) and value.ndim in (2, 3):
            value = [value]
        frames = [np.asarray(frame) for frame in value]
        for frame in frames:
            if frame.ndim not in (2, 3) or frame.size == 0:
                raise MediaError(f"not an image: array of shape {frame.shape}")
        return cls(frames=frames, times=[0.0] * len(frames))


# --------------------------------------------------------------------------- results


class BackendResult(BaseModel):
    """What every backend result carries: who made it."""

    backend: str = ""
    backend_version: str | None = None


class Segment(BaseModel):
    start: float
    end: float
    text: str


class Transcript(BackendResult):
    """Speech-to-text output."""

    text: str
    language: str | None = None
    segments: list[Segment] = Field(default_factory=list)
    duration: float | None = None


class EmotionScores(BackendResult):
    """A distribution over the backend's own labels (probabilities, highest first)."""

    scores: dict[str, float]

    @property
    def top(self) -> tuple[str, float] | None:
        if not self.scores:
            return None
        label = max(self.scores, key=self.scores.__getitem__)
        return label, self.scores[label]


class FaceEmotions(EmotionScores):
    """Facial expression over one image or sampled frames: ``scores`` is the mean over frames with a face."""

    frames: int = 0
    frames_with_face: int = 0
    per_frame: list[dict[str, Any]] = Field(
        default_factory=list, description="one entry per frame with a face: time, box (x, y, w, h), scores"
    )


class ProsodyFeatures(BackendResult):
    """Voice features: pitch (Hz), energy (dBFS), speaking rate, pauses, and a short description."""

    duration: float
    pitch_mean_hz: float | None = None
    pitch_median_hz: float | None = None
    pitch_std_hz: float | None = None
    pitch_range_hz: float | None = None
    energy_mean_dbfs: float
    energy_std_db: float
    voiced_fraction: float
    speaking_rate: float = Field(description="syllable-like energy peaks per second of speech")
    pause_count: int
    pause_total_s: float
    pause_longest_s: float
    pause_ratio: float
    description: str = ""


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class SpeechToText(Protocol):
    """Speech to text. ``kind = "speech"``; the perception cue is ``transcript``."""

    name: str
    version: str | None

    def transcribe(self, audio: Audio) -> Transcript: ...

    async def atranscribe(self, audio: Audio) -> Transcript: ...


@runtime_checkable
class FacialExpressionRecognizer(Protocol):
    """Facial expression of an image or of frames sampled from a video. ``kind = "face"``."""

    name: str
    version: str | None

    def recognize(self, images: Images) -> FaceEmotions: ...

    async def arecognize(self, images: Images) -> FaceEmotions: ...


@runtime_checkable
class VoiceAnalyzer(Protocol):
    """Voice / prosody features. ``kind = "voice"``."""

    name: str
    version: str | None

    def analyze(self, audio: Audio) -> ProsodyFeatures: ...

    async def aanalyze(self, audio: Audio) -> ProsodyFeatures: ...


@runtime_checkable
class TextEmotionClassifier(Protocol):
    """Emotion of a text. ``kind = "text_emotion"``."""

    name: str
    version: str | None

    def classify(self, text: str) -> EmotionScores: ...

    async def aclassify(self, text: str) -> EmotionScores: ...


@runtime_checkable
class AudioEmotionClassifier(Protocol):
    """Emotion of a voice recording (speech-emotion recognition). ``kind = "audio_emotion"``."""

    name: str
    version: str | None

    def classify_audio(self, audio: Audio) -> EmotionScores: ...

    async def aclassify_audio(self, audio: Audio) -> EmotionScores: ...


PROTOCOLS: dict[str, type] = {
    "speech": SpeechToText,
    "face": FacialExpressionRecognizer,
    "voice": VoiceAnalyzer,
    "text_emotion": TextEmotionClassifier,
    "audio_emotion": AudioEmotionClassifier,
}
"""The protocol of each backend kind."""

METHODS: dict[str, tuple[str, str]] = {
    "speech": ("transcribe", "atranscribe"),
    "face": ("recognize", "arecognize"),
    "voice": ("analyze", "aanalyze"),
    "text_emotion": ("classify", "aclassify"),
    "audio_emotion": ("classify_audio", "aclassify_audio"),
}
"""The sync and async method of each backend kind."""

RESULT_TYPES: dict[str, type[BackendResult]] = {
    "speech": Transcript,
    "face": FaceEmotions,
    "voice": ProsodyFeatures,
    "text_emotion": EmotionScores,
    "audio_emotion": EmotionScores,
}


# --------------------------------------------------------------------------- base class


class Backend:
    """Convenience base for backends: name, version, settings, a lock, lazy loading, async twins.

    Subclasses set ``kind``, ``name``, ``extra`` and ``modules`` (import names
    checked at construction) and implement ``_load`` (build the model, once)
    and the kind's sync method. Calls are serialised with a lock, because most
    model runtimes are not safe to call from several threads at once: take
    ``self.model`` inside ``with self._lock:``.

    A call the caller gave up on (a perception timeout) frees the backend:
    long loops should call :func:`check_cancelled` between units of work
    (segments, frames) so the call stops there; a call that does not stop
    within ``abandon_after`` seconds is left behind and the next call gets a
    fresh lock and loads its own model (see :mod:`mesa.tools.cancel`).
    """

    kind: ClassVar[str] = ""
    name: str = ""
    extra: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()
    distributions: ClassVar[tuple[str, ...]] = ()
    abandon_after: ClassVar[float] = 5.0
    """Seconds a timed-out call may take to stop before the next call leaves it behind."""

    def __init__(self, **settings: Any) -> None:
        if self.modules:
            require_modules(f"the {self.name!r} {self.kind} backend", self.extra, *self.modules)
        self.settings: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        self.version: str | None = distribution_version(*self.distributions) if self.distributions else None
        self._lock = CallLock(grace=self.abandon_after, on_abandon=self._drop_model)
        self._model: Any = None

    def _drop_model(self) -> None:
        """Forget the model a stuck, timed-out call is still using; the next call loads its own."""
        self._model = None

    # -- loading
    def _load(self) -> Any:  # pragma: no cover - overridden
        return None

    @property
    def model(self) -> Any:
        """The loaded model (built on first use)."""
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
                model = self._model
        return model

    def warmup(self) -> None:
        """Load the model now rather than at first use."""
        _ = self.model

    def _stamp(self, result: BackendResult) -> BackendResult:
        result.backend = self.name
        result.backend_version = self.version
        return result

    def cache_settings(self) -> dict[str, Any]:
        """What, besides the content and the backend's name and version, determines the result."""
        return {"version": self.version, **{k: str(v) for k, v in self.settings.items()}}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}({shown})"


class SpeechBackend(Backend):
    """Base of speech-to-text backends (``kind = "speech"``): implement ``transcribe``."""

    kind: ClassVar[str] = "speech"

    def transcribe(self, audio: Audio) -> Transcript:  # pragma: no cover - overridden
        raise NotImplementedError

    async def atranscribe(self, audio: Audio) -> Transcript:
        return await run_cancellable(self.transcribe, audio)


class FaceBackend(Backend):
    """Base of facial-expression backends (``kind = "face"``): implement ``recognize``."""

    kind: ClassVar[str] = "face"

    def recognize(self, images: Images) -> FaceEmotions:  # pragma: no cover - overridden
        raise NotImplementedError

    async def arecognize(self, images: Images) -> FaceEmotions:
        return await run_cancellable(self.recognize, images)


class VoiceBackend(Backend):
    """Base of voice/prosody backends (``kind = "voice"``): implement ``analyze``."""

    kind: ClassVar[str] = "voice"

    def analyze(self, audio: Audio) -> ProsodyFeatures:  # pragma: no cover - overridden
        raise NotImplementedError

    async def aanalyze(self, audio: Audio) -> ProsodyFeatures:
        return await run_cancellable(self.analyze, audio)


class TextEmotionBackend(Backend):
    """Base of text-emotion backends (``kind = "text_emotion"``): implement ``classify``."""

    kind: ClassVar[str] = "text_emotion"

    def classify(self, text: str) -> EmotionScores:  # pragma: no cover - overridden
        raise NotImplementedError

    async def aclassify(self, text: str) -> EmotionScores:
        return await run_cancellable(self.classify, text)


class AudioEmotionBackend(Backend):
    """Base of speech-emotion backends (``kind = "audio_emotion"``): implement ``classify_audio``."""

    kind: ClassVar[str] = "audio_emotion"

    def classify_audio(self, audio: Audio) -> EmotionScores:  # pragma: no cover - overridden
        raise NotImplementedError

    async def aclassify_audio(self, audio: Audio) -> EmotionScores:
        return await run_cancellable(self.classify_audio, audio)
