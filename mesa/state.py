"""Typed state of the SMES graph: the turn, perception, predictions, safety, the reply.

All of these are Pydantic models. They travel through the LangGraph state
(:class:`SupportState`), come back from a checkpointer as models (see
:func:`mesa.memory.serializer`), and make up the :class:`Reply` that
``SupportAgent.respond`` returns. Media is kept as references
(:class:`MediaRef`: a path or URL plus a content hash), never as raw bytes.
"""

from __future__ import annotations

import hashlib
import operator
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from mesa.errors import InputTooLargeError

__all__ = [
    "MAX_TEXT_CHARS",
    "STATE_WINDOW_MIN",
    "MediaRef",
    "Message",
    "PerceptionResult",
    "Prediction",
    "Reply",
    "SafetyAssessment",
    "SupportState",
    "Turn",
    "append_history",
]

Modality = Literal["text", "audio", "video", "image"]
RiskLevel = Literal["none", "low", "elevated", "imminent"]
"""The safety levels, lowest first; declared once (the rules, the LLM judgement and the state use this)."""
RISK_LEVELS: tuple[RiskLevel, ...] = get_args(RiskLevel)
RiskCategory = Literal["none", "suicide", "self_harm", "harm_to_others", "abuse", "other"]

MAX_TEXT_CHARS = 16_000
"""Default limit on the user's text per turn, in characters (``SupportAgent(max_input_chars=...)``)."""


def check_text_size(text: str | None, limit: int | None) -> None:
    """Raise :class:`~mesa.errors.InputTooLargeError` when ``text`` is over ``limit`` characters (``None``: no limit)."""
    if text and limit is not None and len(text) > limit:
        raise InputTooLargeError(len(text), limit)


def _sha256_of(path: Path, limit: int = 200 * 1024 * 1024, chunk: int = 1 << 20) -> str | None:
    """SHA-256 of a regular file of at most ``limit`` bytes, else ``None`` (perception checks the file later).

    Checked before it is opened: ``/dev/zero`` or a named pipe would never end, and opening a device can act.
    """
    checked = os.stat(path)
    if not stat.S_ISREG(checked.st_mode) or checked.st_size > limit:
        return None
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:
        opened = os.fstat(descriptor)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            return None  # replaced between the check and the open
        digest = hashlib.sha256()
        while block := handle.read(chunk):
            digest.update(block)
            limit -= len(block)
            if limit < 0:  # grew while being read
                return None
    return digest.hexdigest()


class MediaRef(BaseModel):
    """A reference to a media file: a local path or a URL, and its content hash when known."""

    model_config = ConfigDict(frozen=True)

    uri: str
    sha256: str | None = None

    @classmethod
    def from_source(cls, source: str | Path | MediaRef, *, hash_now: bool = True) -> MediaRef:
        """A reference to ``source``; a readable regular local file gets its SHA-256 now, unless ``hash_now``
        is false: then nothing is opened, and perception hashes the file once its MediaPolicy allowed it."""
        if isinstance(source, MediaRef):
            return source
        text = str(source)
        if "://" in text and not text.startswith("file://"):
            return cls(uri=text)
        path = Path(text.removeprefix("file://")).expanduser()
        if not hash_now:
            return cls(uri=str(path))
        try:
            return cls(uri=str(path), sha256=_sha256_of(path))
        except OSError:
            # Missing or unreadable: keep the reference; perception records the error.
            return cls(uri=str(path))

    @property
    def is_url(self) -> bool:
        return "://" in self.uri


class Turn(BaseModel):
    """One user turn: text and/or references to audio, video, image."""

    text: str | None = None
    audio: MediaRef | None = None
    video: MediaRef | None = None
    image: MediaRef | None = None

    @classmethod
    def from_inputs(
        cls,
        text: str | None = None,
        *,
        audio: str | Path | MediaRef | None = None,
        video: str | Path | MediaRef | None = None,
        image: str | Path | MediaRef | None = None,
        max_chars: int | None = MAX_TEXT_CHARS,
        hash_media: bool = True,
    ) -> Turn:
        """A turn from user-facing arguments; at least one input is required.

        Text over ``max_chars`` characters raises :class:`~mesa.errors.InputTooLargeError` before anything
        else is done (``None``: no limit). ``hash_media=False``: local media files are not opened here
        (perception checks them against its media policy, then hashes them).
        """
        if not any(x is not None and x != "" for x in (text, audio, video, image)):
            raise ValueError("a turn needs text, audio, video or an image")
        check_text_size(text, max_chars)
        return cls(
            text=text,
            audio=MediaRef.from_source(audio, hash_now=hash_media) if audio is not None else None,
            video=MediaRef.from_source(video, hash_now=hash_media) if video is not None else None,
            image=MediaRef.from_source(image, hash_now=hash_media) if image is not None else None,
        )

    def modalities(self) -> list[Modality]:
        """The modalities this turn carries."""
        present: list[Modality] = []
        if self.text:
            present.append("text")
        for name in ("audio", "video", "image"):
            if getattr(self, name) is not None:
                present.append(name)  # type: ignore[arg-type]
        return present


class PerceptionResult(BaseModel):
    """What one perception backend made of one modality of a turn (or why it could not).

    ``clue`` is the short text the prompts show (as MESC carries audio and video
    into a text model); ``data`` keeps the numbers (distributions, features,
    transcript segments).
    """

    cue: str = Field(description="what was perceived: transcript, face, voice, text_emotion, ...")
    modality: Modality
    backend: str
    backend_version: str | None = None
    clue: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Prediction(BaseModel):
    """One decision of the chain: a label of the active taxonomy, with confidence and rationale."""

    label: str
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    rationale: str = ""
    source: str = Field(default="llm", description="where it came from: llm, fused, classifier, policy, scripted, rule")


class SafetyAssessment(BaseModel):
    """Risk assessment of a user turn. ``crisis`` routes the turn to the escalation protocol."""

    level: RiskLevel = "none"
    category: RiskCategory = "none"
    evidence: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list, description="layers that contributed: rules, llm, moderation")

    @property
    def crisis(self) -> bool:
        return self.level in ("elevated", "imminent")


class Message(BaseModel):
    """One entry of the dialogue history, with the chain's annotations when it has them."""

    role: Literal["user", "assistant"]
    text: str
    emotion: str | None = None
    strategy: str | None = None
    clues: list[str] = Field(default_factory=list)
    unanswered: bool = Field(default=False, description="a user message whose turn failed before a reply was stored")


STATE_WINDOW_MIN = 20
"""Fewest recent messages a thread's state keeps (more when the prompts' ``history_window`` asks for more);
``finish_turn`` moves older ones to the memory's store, so a checkpoint does not grow with the conversation."""


def append_history(left: list[Message] | None, right: list[Message] | Message | None) -> list[Message]:
    """History reducer: appends new messages; never drops or rewrites earlier ones.

    Only ``finish_turn`` shortens the history, after archiving what it drops (a LangGraph ``Overwrite``).
    """
    left = list(left or [])
    if right is None:
        return left
    if isinstance(right, Message):
        right = [right]
    return left + [m if isinstance(m, Message) else Message.model_validate(m) for m in right]


CHAT_MESSAGES_KEPT = 100
"""Most recent ``messages`` (chat-UI copies of the conversation) a thread's state keeps."""


def append_chat_messages(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``messages`` reducer: appends, keeping the last :data:`CHAT_MESSAGES_KEPT` so a checkpoint stays bounded."""
    return (list(left or []) + list(right or []))[-CHAT_MESSAGES_KEPT:]


class SupportState(BaseModel):
    """The LangGraph state of one conversation thread.

    Per-turn fields are reset by the graph's first node at every new turn;
    ``history`` accumulates across turns through :func:`append_history`. When the graph has a store
    (``SupportAgent`` always gives it one), ``history`` is the recent window and the ``archived``
    earlier messages are in the store (``SupportAgent.history`` returns them all, in order).
    """

    turn: Turn = Field(default_factory=Turn)
    history: Annotated[list[Message], append_history] = Field(default_factory=list)
    archived: int = Field(default=0, description="earlier messages of the thread moved to the store, before history")
    perception: dict[str, PerceptionResult] = Field(default_factory=dict)
    safety: SafetyAssessment | None = None
    user_emotion: Prediction | None = None
    strategy: Prediction | None = None
    system_emotion: Prediction | None = None
    response: str | None = None
    disclosed_ai_at_turn: int | None = None
    disclosed_ai_at: datetime | None = Field(
        default=None, description="when the AI disclosure was last given (UTC); repeated at least every 3 hours"
    )
    turn_index: int = 0
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per step of the current turn")
    failed_steps: dict[str, str] = Field(
        default_factory=dict, description="steps of the current turn that gave no answer (step → why); their label is absent"
    )
    extras: Annotated[dict[str, Any], operator.or_] = Field(
        default_factory=dict, description="room for user nodes (retrieved passages, reviewer notes, ...)"
    )
    messages: Annotated[list[dict[str, Any]], append_chat_messages] = Field(
        default_factory=list,
        description='the conversation as LangChain message dicts ({"type": "human"|"ai", "content": ...}) for chat UIs'
        " built for LangGraph; filled by the LangGraph Server graphs (mesa.graphs.server); the last 100 are kept",
    )


class Reply(BaseModel):
    """What ``SupportAgent.respond`` returns for one turn."""

    text: str
    user_emotion: Prediction | None
    strategy: Prediction | None
    system_emotion: Prediction | None
    safety: SafetyAssessment | None = None
    perception: dict[str, PerceptionResult] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    failed_steps: dict[str, str] = Field(
        default_factory=dict, description="steps that gave no answer this turn (step → why): their label is None, the turn still answered"
    )
    thread_id: str | None = None
    mode: str = "stepwise"
    interrupts: list[Any] = Field(
        default_factory=list, description="values a node passed to interrupt(): the turn is paused; resume with SupportAgent.resume"
    )

    @property
    def crisis(self) -> bool:
        return bool(self.safety and self.safety.crisis)
