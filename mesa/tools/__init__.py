"""Perception for mesa: protocols, a registry of backends, the perceive pipeline, a conformance kit.

Protocols (one small method each, with an async twin): :class:`SpeechToText`,
:class:`FacialExpressionRecognizer`, :class:`VoiceAnalyzer`,
:class:`TextEmotionClassifier`, :class:`AudioEmotionClassifier`.
Backends are found by name (:func:`get_backend`), including third-party ones
declared under the entry-point group ``mesa.tools``. :class:`Perception` runs
them on a :class:`mesa.state.Turn`, within :class:`Limits` and a :class:`MediaPolicy`
(where media may come from).

Importing this package is light: no model runtime (torch, CTranslate2,
OpenCV, librosa, LiteRT, ...) is imported until a backend is used.
"""

from mesa.tools.base import (
    Audio,
    AudioEmotionBackend,
    AudioEmotionClassifier,
    Backend,
    BackendError,
    BackendNotFoundError,
    BackendResult,
    EmotionScores,
    FaceBackend,
    FaceEmotions,
    FacialExpressionRecognizer,
    Images,
    MediaError,
    MissingExtraError,
    ProsodyFeatures,
    Segment,
    SpeechBackend,
    SpeechToText,
    TextEmotionBackend,
    TextEmotionClassifier,
    Transcript,
    VoiceAnalyzer,
    VoiceBackend,
    check_cancelled,
)
from mesa.tools.labels import map_to_taxonomy
from mesa.tools.media import Limits, load_audio, load_images
from mesa.tools.pipeline import CUES, Perception, render_clue, resolve_perception
from mesa.tools.policy import MediaPolicy
from mesa.tools.registry import ENTRY_POINT_GROUP, KINDS, available_backends, get_backend, register_backend

__all__ = [
    "CUES",
    "ENTRY_POINT_GROUP",
    "KINDS",
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
    "Limits",
    "MediaError",
    "MediaPolicy",
    "MissingExtraError",
    "Perception",
    "ProsodyFeatures",
    "Segment",
    "SpeechBackend",
    "SpeechToText",
    "TextEmotionBackend",
    "TextEmotionClassifier",
    "Transcript",
    "VoiceAnalyzer",
    "VoiceBackend",
    "available_backends",
    "check_cancelled",
    "get_backend",
    "load_audio",
    "load_images",
    "map_to_taxonomy",
    "register_backend",
    "render_clue",
    "resolve_perception",
]
