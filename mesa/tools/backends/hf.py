"""Hugging Face ``transformers`` pipelines: text classification and audio classification, any model id.

The model is downloaded by transformers on first use (or loaded from a local
folder). Its own labels (``config.id2label``) are kept; the perception pipeline
maps them onto the active taxonomy where they correspond.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from mesa.tools.base import (
    SAMPLE_RATE,
    Audio,
    AudioEmotionBackend,
    BackendError,
    EmotionScores,
    MediaError,
    TextEmotionBackend,
)

__all__ = ["TransformersAudioEmotion", "TransformersTextEmotion"]


def _scores(output: Any) -> dict[str, float]:
    # a single input gives [{"label", "score"}, ...] (or [[...]] with some versions)
    if output and isinstance(output[0], list):
        output = output[0]
    scores = {str(item["label"]): round(float(item["score"]), 4) for item in output}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def _device(device: Any) -> Any:
    if device in (None, "cpu"):
        return -1
    return device


class _HFBackend:
    task: ClassVar[str] = ""
    extra: ClassVar[str] = "transformers"
    modules: ClassVar[tuple[str, ...]] = ("transformers", "torch")
    distributions: ClassVar[tuple[str, ...]] = ("transformers",)

    def _init(self, model: str | Path | None, device: Any, revision: str | None) -> None:
        if not model:
            raise BackendError(f"the transformers {self.kind} backend needs a model id or folder: model=...")  # type: ignore[attr-defined]
        model = str(model)
        if (model.startswith((".", "/", "~"))) and not Path(model).expanduser().exists():
            raise BackendError(f"transformers model folder not found: {model}")
        super().__init__(model=model, device=device, revision=revision)  # type: ignore[misc]
        self.version = f"{model}@transformers {self.version}"  # type: ignore[has-type]

    def _load(self) -> Any:
        from transformers import pipeline

        s = self.settings  # type: ignore[attr-defined]
        model = str(Path(s["model"]).expanduser()) if s["model"].startswith(("~",)) else s["model"]
        kwargs: dict[str, Any] = {"model": model, "device": _device(s.get("device"))}
        if s.get("revision"):
            kwargs["revision"] = s["revision"]
        pipe = pipeline(self.task, **kwargs)
        self.labels = [pipe.model.config.id2label[i] for i in sorted(pipe.model.config.id2label)]
        return pipe

    def cache_settings(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model": self.settings["model"],
            "revision": str(self.settings.get("revision")),
        }  # type: ignore[attr-defined]


class TransformersTextEmotion(_HFBackend, TextEmotionBackend):
    """A ``text-classification`` pipeline (e.g. ``j-hartmann/emotion-english-distilroberta-base``).

    Settings: ``model`` (hub id or local folder; required), ``device`` (``"cpu"``), ``revision``.
    """

    name = "transformers"
    task: ClassVar[str] = "text-classification"

    def __init__(self, model: str | Path | None = None, *, device: Any = "cpu", revision: str | None = None) -> None:
        self._init(model, device, revision)

    def classify(self, text: str) -> EmotionScores:
        if not isinstance(text, str) or not text.strip():
            raise MediaError("empty text")
        with self._lock:
            pipe = self.model
            output = pipe(text, top_k=None, truncation=True)
        return self._stamp(EmotionScores(scores=_scores(output)))  # type: ignore[return-value]


class TransformersAudioEmotion(_HFBackend, AudioEmotionBackend):
    """An ``audio-classification`` pipeline (e.g. a wav2vec2 speech-emotion model).

    Settings: ``model`` (hub id or local folder; required), ``device`` (``"cpu"``), ``revision``.
    """

    name = "transformers"
    task: ClassVar[str] = "audio-classification"

    def __init__(self, model: str | Path | None = None, *, device: Any = "cpu", revision: str | None = None) -> None:
        self._init(model, device, revision)

    def classify_audio(self, audio: Audio) -> EmotionScores:
        audio = Audio.coerce(audio)
        pipe = self.model
        rate = int(getattr(pipe.feature_extractor, "sampling_rate", SAMPLE_RATE) or SAMPLE_RATE)
        if audio.sample_rate != rate:
            audio = audio.resampled(rate)
        audio.check()
        with self._lock:
            pipe = self.model  # the one this call holds the lock for
            output = pipe({"raw": audio.samples, "sampling_rate": rate}, top_k=len(self.labels))
        return self._stamp(EmotionScores(scores=_scores(output)))  # type: ignore[return-value]
