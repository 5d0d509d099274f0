"""The backend registry: backends by kind and name, including third-party ones from entry points.

A third-party package declares its backends under the entry-point group
``mesa.tools``, naming each ``"<kind>.<name>"``::

    [project.entry-points."mesa.tools"]
    "face.my-face" = "my_package.face:MyFaceBackend"

The object is called with the user's settings (``get_backend("face",
"my-face", threshold=0.3)``) and must return an object that follows the kind's
protocol (see :mod:`mesa.tools.conformance`). An entry named with a plain name
is accepted when the object has a ``kind`` attribute.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any

from mesa.tools.base import KINDS, BackendError, BackendNotFoundError, MissingExtraError

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "available_backends",
    "get_backend",
    "register_backend",
]

ENTRY_POINT_GROUP = "mesa.tools"
_ALIASES = {
    "stt": "speech",
    "asr": "speech",
    "transcript": "speech",
    "facial_expression": "face",
    "video": "face",
    "prosody": "voice",
    "text": "text_emotion",
    "audio": "audio_emotion",
    "speech_emotion": "audio_emotion",
}

# name -> "module:attribute" (imported on first use) or a factory
_BUILTINS: dict[str, dict[str, str]] = {
    "speech": {
        "faster-whisper": "mesa.tools.backends.whisper:FasterWhisperSpeech",
        "openai-whisper": "mesa.tools.backends.whisper:OpenAIWhisperSpeech",
    },
    "face": {
        "fer": "mesa.tools.backends.fer_lite:FERLiteFace",
        "deepface": "mesa.tools.backends.deepface:DeepFaceFace",
    },
    "voice": {"prosody": "mesa.tools.backends.prosody:ProsodyVoice"},
    "text_emotion": {"transformers": "mesa.tools.backends.hf:TransformersTextEmotion"},
    "audio_emotion": {"transformers": "mesa.tools.backends.hf:TransformersAudioEmotion"},
}
_NAME_ALIASES = {"fer-lite": "fer", "fer-tflite": "fer", "whisper": "openai-whisper", "librosa": "prosody"}

logger = logging.getLogger(__name__)
Factory = Callable[..., Any]
_lock = threading.Lock()
_registry: dict[str, dict[str, Factory | str]] = {kind: dict(names) for kind, names in _BUILTINS.items()}
_entry_points_loaded = False


def _kind(kind: str) -> str:
    key = kind.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in KINDS:
        raise BackendNotFoundError(f"unknown backend kind {kind!r}; kinds: {', '.join(KINDS)}")
    return key


def register_backend(kind: str, name: str, factory: Factory | str, *, replace: bool = True) -> None:
    """Register ``factory`` (a class, a callable, or ``"module:attribute"``) as backend ``name`` of ``kind``."""
    key = _kind(kind)
    with _lock:
        if not replace and name in _registry[key]:
            raise BackendError(f"a {key} backend named {name!r} is already registered")
        _registry[key][name] = factory


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    with _lock:
        if _entry_points_loaded:
            return
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            kind_name = entry.name.replace(":", ".")
            if "." in kind_name:
                kind, name = kind_name.split(".", 1)
                try:
                    key = _kind(kind)
                except BackendNotFoundError:
                    continue
                _registry[key].setdefault(name, entry)  # type: ignore[arg-type]
            else:
                _registry.setdefault("_untyped", {})[entry.name] = entry  # type: ignore[arg-type]
        _entry_points_loaded = True


def _reload_entry_points() -> None:
    """Forget entry points found so far and read them again (for tests and plug-in development)."""
    global _entry_points_loaded
    with _lock:
        for kind in list(_registry):
            for name, value in list(_registry[kind].items()):
                if _is_entry_point(value):
                    del _registry[kind][name]
        _registry.pop("_untyped", None)
        _entry_points_loaded = False
    _load_entry_points()


def _untyped(key: str) -> dict[str, Any]:
    """Entry points named without a kind, resolved by the loaded object's ``kind`` attribute."""
    found: dict[str, Any] = {}
    for name, entry in list(_registry.get("_untyped", {}).items()):
        try:
            obj = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break the others
            logger.warning("mesa.tools: could not load the perception plug-in %r: %s", name, exc)
            continue
        if getattr(obj, "kind", None) == key:
            found[name] = obj
    return found


def available_backends() -> dict[str, list[str]]:
    """The registered backend names of each kind (built-in, registered and entry points)."""
    _load_entry_points()
    out = {kind: sorted(_registry[kind]) for kind in KINDS}
    for kind in KINDS:
        extra = _untyped(kind)
        if extra:
            out[kind] = sorted(set(out[kind]) | set(extra))
    return out


def _is_entry_point(value: Any) -> bool:
    # Duck-typed: the EntryPoint class can come from another copy of importlib.metadata
    # (importlib_metadata, or a re-imported module), so isinstance is not reliable.
    return callable(getattr(value, "load", None)) and hasattr(value, "group") and hasattr(value, "value")


def _resolve(value: Any) -> Factory:
    if _is_entry_point(value):
        return value.load()
    if isinstance(value, str):
        module, _, attribute = value.partition(":")
        return getattr(importlib.import_module(module), attribute)
    return value


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``"name:model"`` → (name, settings). ``"transformers:org/model"`` sets ``model``."""
    name, sep, model = spec.partition(":")
    name = name.strip()
    return (name, {"model": model.strip()} if sep and model.strip() else {})


def get_backend(kind: str, name: str, **settings: Any) -> Any:
    """Build backend ``name`` of ``kind`` with ``settings``.

    ``name`` may carry a model: ``"faster-whisper:/models/small"``,
    ``"transformers:j-hartmann/emotion-english-distilroberta-base"``.
    Raises :class:`BackendNotFoundError` for an unknown name and
    :class:`MissingExtraError` (with the ``pip install`` line) when the
    backend's extra is not installed.
    """
    key = _kind(kind)
    _load_entry_points()
    base, from_spec = parse_spec(name)
    settings = {**from_spec, **settings}
    base = _NAME_ALIASES.get(base, base)
    value = _registry[key].get(base)
    if value is None:
        value = _untyped(key).get(base)
    if value is None:
        known = ", ".join(available_backends()[key]) or "none"
        raise BackendNotFoundError(
            f"unknown {key} backend {base!r}; available: {known}. "
            f"Third-party backends register under the entry-point group {ENTRY_POINT_GROUP!r} as '{key}.<name>'."
        )
    try:
        factory = _resolve(value)
    except MissingExtraError:
        raise
    except Exception as exc:
        raise BackendError(f"could not load the {key} backend {base!r}: {type(exc).__name__}: {exc}") from exc
    backend = factory(**settings)
    if not getattr(backend, "name", None):
        try:
            backend.name = base
        except AttributeError:  # pragma: no cover - frozen objects
            pass
    return backend
