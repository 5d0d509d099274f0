"""Perception protocols, typed results and the backend base class (inputs and errors re-exported).

One small method per protocol, each with an async twin. Backends subclass
:class:`Backend` (which provides the twins by running the sync method in a
worker thread) or implement the protocol themselves.

Nothing here imports a heavy library: numpy is imported when an input is
built, audio decoding (PyAV) and image decoding (OpenCV) when a file is read.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, Field

from mesa.errors import BackendError, BackendNotFoundError, MediaError, MissingExtraError
from mesa.tools.cancel import CallLock, check_cancelled, run_cancellable
from mesa.tools.extras import distribution_version, missing_extra, require_modules
from mesa.tools.media import SAMPLE_RATE, Audio, Images

__all__ = [
    "KINDS",
    "SAMPLE_RATE",
    "Audio",
    "AudioEmotionBackend",
    "AudioEmotionClassifier",
    "Backend",
    "BackendError",
    "BackendKind",
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

# --------------------------------------------------------------------------- errors
# The errors are defined once, in mesa.errors (one tree under MesaError); they stay importable from here,
# as do the inputs (Audio, Images: mesa.tools.media) and the extras helpers (mesa.tools.extras).


# --------------------------------------------------------------------------- kinds

BackendKind = Literal["speech", "face", "voice", "text_emotion", "audio_emotion"]
"""The kinds of perception backend, declared once: every per-kind table (here, in the registry, the
pipeline and the conformance kit) is keyed by these names, and ``KINDS`` lists them in this order."""

KINDS: tuple[BackendKind, ...] = get_args(BackendKind)

InputKind = Literal["audio", "images", "text"]

INPUTS: dict[BackendKind, InputKind] = {
    "speech": "audio",
    "face": "images",
    "voice": "audio",
    "text_emotion": "text",
    "audio_emotion": "audio",
}
"""What each backend kind reads."""


def kinds_reading(medium: InputKind) -> tuple[BackendKind, ...]:
    """The backend kinds that read ``medium`` (e.g. ``"audio"``), in :data:`KINDS` order."""
    return tuple(kind for kind in KINDS if INPUTS[kind] == medium)


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


PROTOCOLS: dict[BackendKind, type] = {
    "speech": SpeechToText,
    "face": FacialExpressionRecognizer,
    "voice": VoiceAnalyzer,
    "text_emotion": TextEmotionClassifier,
    "audio_emotion": AudioEmotionClassifier,
}
"""The protocol of each backend kind."""

METHODS: dict[BackendKind, tuple[str, str]] = {
    "speech": ("transcribe", "atranscribe"),
    "face": ("recognize", "arecognize"),
    "voice": ("analyze", "aanalyze"),
    "text_emotion": ("classify", "aclassify"),
    "audio_emotion": ("classify_audio", "aclassify_audio"),
}
"""The sync and async method of each backend kind."""

RESULT_TYPES: dict[BackendKind, type[BackendResult]] = {
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
