"""The node functions of the SMES graphs. All public, so you can reuse or replace any of them.

Each node is ``async def node(state: SupportState, runtime: Runtime[SupportContext]) -> dict``
and returns a partial state update. Stage results also go out as custom stream
events (``stream_mode="custom"``) through :func:`emit`:
``{"type": "stage", "stage": "user_emotion", "prediction": {...}}``,
``{"type": "safety", ...}``, ``{"type": "perception", ...}`` and
``{"type": "token", "text": "..."}`` for the reply, and
``{"type": "step_failed", "step": "strategy", "error": "..."}`` when a step gave no answer.

A label step that gives no valid answer (invalid answers through every re-ask, an answer cut by
``max_tokens``, a deadline) leaves its label ``None``, notes why in ``state.failed_steps``, and the
turn goes on without it; ``SupportContext(strict=True)`` raises instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from pydantic import BaseModel, BeforeValidator, Field, create_model

from mesa.errors import LLMError, LLMTimeoutError
from mesa.graphs.context import SupportContext
from mesa.prompts import PromptSet
from mesa.state import (
    STATE_WINDOW_MIN,
    Message,
    PerceptionResult,
    Prediction,
    SafetyAssessment,
    SupportState,
    check_text_size,
)
from mesa.taxonomy import LABEL_SETS, LabelSetName, Taxonomy, system_emotion_rule

__all__ = [
    "assess_safety",
    "choose_system_emotion",
    "crisis_response",
    "emit",
    "finish_turn",
    "fused_model",
    "fused_turn",
    "perceive",
    "recognize_emotion",
    "render_clues",
    "render_history",
    "respond",
    "route_after_safety",
    "select_strategy",
    "settle_system_emotion",
    "step_model",
    "tokens_unheard",
    "user_text",
]

log = logging.getLogger("mesa.graphs")

STEP_TITLES: dict[LabelSetName, str] = {"user_emotion": "UserEmotion", "strategy": "Strategy", "system_emotion": "SystemEmotion"}
REPLY_MAX_TOKENS = 160
STEP_MAX_TOKENS = 160
RATIONALE_MAX = 240
REPLY_MAX_CHARS = 1200


# -- small helpers --------------------------------------------------------------------------------


def emit(event: dict[str, Any]) -> None:
    """Send a custom stream event (a no-op when nobody streams ``custom``)."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run
        return
    writer(event)


def _announce(predictions: dict[str, Prediction]) -> dict[str, Prediction]:
    """Send one stage event per decided label, in order; returns ``predictions``."""
    for which, prediction in predictions.items():
        emit({"type": "stage", "stage": which, "prediction": prediction.model_dump()})
    return predictions


def _clamp_confidence(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.5
    if math.isnan(number):
        return 0.5
    return min(1.0, max(0.0, number))


def _short(value: Any) -> str:
    return str(value or "")[:RATIONALE_MAX]


def _cut_reply(value: Any) -> str:
    """At most ``REPLY_MAX_CHARS``; a reply cut mid-sentence ends at its last full sentence."""
    text = " ".join(str(value or "").split())[:REPLY_MAX_CHARS]
    if text and text[-1] not in ".!?\"')":
        last = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
        if last > 0:
            text = text[: last + 1]
    return text


# Lengths are enforced by cutting, not by maxLength in the schema: long repetitions in a
# llama.cpp grammar are slow to build and have crashed it.
Confidence = Annotated[float, BeforeValidator(_clamp_confidence)]
Rationale = Annotated[str, BeforeValidator(_short)]
ReplyText = Annotated[str, BeforeValidator(_cut_reply)]  # not `Reply`: that is mesa.Reply, the whole turn's result


@lru_cache(maxsize=64)
def step_model(taxonomy: Taxonomy, which: LabelSetName) -> type[BaseModel]:
    """The output type of one step: ``label`` is a ``Literal`` of the taxonomy's labels.

    A label outside the set fails validation, so it is re-asked and never stored.
    """
    return create_model(
        STEP_TITLES[which],
        label=(taxonomy.label_type(which), Field(description=f"one {which.replace('_', ' ')} label")),
        confidence=(Confidence, Field(default=0.5, description="0 to 1")),
        rationale=(Rationale, Field(default="", description="one short sentence")),
    )


@lru_cache(maxsize=64)
def fused_model(taxonomy: Taxonomy) -> type[BaseModel]:
    """The output type of the fused step: emotion, strategy, system emotion, then the response, in that order."""
    return create_model(
        "FusedTurn",
        user_emotion=(taxonomy.label_type("user_emotion"), ...),
        strategy=(taxonomy.label_type("strategy"), ...),
        system_emotion=(taxonomy.label_type("system_emotion"), ...),
        response=(ReplyText, Field(description="the reply to the user")),
    )


def user_text(state: SupportState) -> str:
    """The user's words this turn: the typed text, else the transcript of their speech."""
    if state.turn.text:
        return state.turn.text
    transcript = state.perception.get("transcript")
    if transcript is not None and transcript.ok:
        return str(transcript.data.get("text", "")).strip()
    return ""


def render_history(history: list[Message], window: int) -> str:
    """The last ``window`` messages as ``User: ...`` / ``Counsellor: ...`` lines."""
    recent = history[-window:] if window > 0 else []
    if not recent:
        return "(this is the start of the conversation)"
    return "\n".join(f"{'User' if m.role == 'user' else 'Counsellor'}: {m.text}" for m in recent)


def render_clues(perception: dict[str, PerceptionResult]) -> str:
    """What perception found, as short clue lines for the prompts (transcripts are the text itself)."""
    lines = [f"- {r.cue}: {r.clue}" for r in perception.values() if r.ok and r.clue and r.cue != "transcript"]
    return "Clues from the user's voice and face:\n" + "\n".join(lines) if lines else ""


def _context(runtime: Runtime[SupportContext]) -> SupportContext:
    if runtime.context is None:
        return SupportContext()  # it fills its own defaults (MESA_MODEL, MESA_TAXONOMY)
    return runtime.context


def _prompts(ctx: SupportContext) -> PromptSet:
    return ctx.prompts  # SupportContext fills in the built-in prompts when none are given


def _demonstrations(ctx: SupportContext, text: str, history: list[Message]) -> str:
    if ctx.demonstrations is None or ctx.n_demonstrations <= 0:
        return ""
    demos = ctx.demonstrations.retrieve(text, history, ctx.n_demonstrations)
    if not demos:
        return ""
    lines = ["", "Similar labelled examples:"]
    for demo in demos:
        labels = ", ".join(
            f"{name}: {value}"
            for name, value in (("user emotion", demo.user_emotion), ("strategy", demo.strategy), ("counsellor emotion", demo.system_emotion))
            if value
        )
        lines.append(f'- "{demo.context[-300:]}" -> {labels}')
    return "\n".join(lines) + "\n"


def _prior(ctx: SupportContext, which: LabelSetName, text: str, history: list[Message]) -> str:
    if ctx.classifier is None or ctx.classifier_use != "prior" or not ctx.classifier.supports(which):
        return ""
    dist = _valid_distribution(ctx, which, ctx.classifier.predict_distribution(which, text, history))
    top = sorted(dist.items(), key=lambda kv: kv[1], reverse=True)[:3]
    if not top:
        return ""
    shown = ", ".join(f"{label} ({p:.2f})" for label, p in top)
    return f"\nA classifier trained on labelled conversations suggests: {shown}. Use it as a hint, not a rule.\n"


def _system_message(ctx: SupportContext) -> dict[str, str]:
    return {"role": "system", "content": _prompts(ctx).render("system")}


def _elapsed(state: SupportState, step: str, start: float) -> dict[str, float]:
    return {**state.timings, step: round(time.perf_counter() - start, 4)}


def _valid_distribution(ctx: SupportContext, which: LabelSetName, dist: Any) -> dict[str, float]:
    """The classifier's probabilities for labels of the taxonomy only; anything else is dropped (logged)."""
    known = set(ctx.taxonomy.names(which))
    items = dict(dist).items() if isinstance(dist, dict) else ()
    valid = {label: p for label, p in items if isinstance(label, str) and label in known}
    if len(valid) < len(items):
        log.warning("classifier gave %s labels outside the taxonomy: %s", which, sorted(map(str, set(dict(items)) - set(valid)))[:5])
    return valid


def _classifier_prediction(ctx: SupportContext, which: LabelSetName, text: str, history: list[Message], *, always: bool = False) -> Prediction | None:
    """The classifier's decision when it is used as the step (or ``always``), or ``None`` (then the LLM step decides).

    Its top label must be a label of the taxonomy, as an LLM's must: a classifier whose best guess is
    anything else ("hacked", a label of another taxonomy) is not trusted for this turn (logged).
    """
    if ctx.classifier is None or not (always or ctx.classifier_use == "step") or not ctx.classifier.supports(which):
        return None
    try:
        dist = dict(ctx.classifier.predict_distribution(which, text, history))
        label, p = max(dist.items(), key=lambda kv: _clamp_confidence(kv[1]))
    except Exception as exc:  # noqa: BLE001 - a broken classifier falls back to the LLM step
        log.warning("classifier failed on %s (%s: %s); asking the LLM", which, type(exc).__name__, exc)
        return None
    if label not in ctx.taxonomy.names(which):
        log.warning("classifier's %s label %r is not in the taxonomy; asking the LLM", which, str(label)[:80])
        return None
    return Prediction(label=label, confidence=_clamp_confidence(p), rationale="supervised classifier", source="classifier")


async def _llm_prediction(state: SupportState, ctx: SupportContext, which: LabelSetName, text: str, values: dict[str, Any]) -> Prediction:
    prompt = _prompts(ctx).render(
        which,
        labels=ctx.taxonomy.describe(which),
        history=render_history(state.history, ctx.history_window),
        text=text,
        clues=render_clues(state.perception),
        demonstrations=_demonstrations(ctx, text, state.history) if which != "system_emotion" else "",
        prior=_prior(ctx, which, text, state.history),
        **values,
    )
    answer = await ctx.llm.astructured(
        [_system_message(ctx), {"role": "user", "content": prompt}], step_model(ctx.taxonomy, which), max_tokens=STEP_MAX_TOKENS
    )
    return Prediction(label=answer.label, confidence=answer.confidence, rationale=answer.rationale, source="llm")


def _failed(state: SupportState, step: str, exc: Exception) -> dict[str, str]:
    """``state.failed_steps`` plus this step, announced and logged."""
    why = f"{type(exc).__name__}: {str(exc)[:RATIONALE_MAX]}"
    log.warning("step %s gave no answer; the turn goes on without it: %s", step, why)
    emit({"type": "step_failed", "step": step, "error": why})
    return {**state.failed_steps, step: why}


async def _label_step(
    state: SupportState, runtime: Runtime[SupportContext], which: LabelSetName, *, settle: Any = None, classifier_decides: bool = False, **values: Any
) -> dict[str, Any]:
    start = time.perf_counter()
    ctx = _context(runtime)
    text = user_text(state)
    prediction = _classifier_prediction(ctx, which, text, state.history, always=classifier_decides)
    if prediction is None:
        try:
            prediction = await _llm_prediction(state, ctx, which, text, values)
        except LLMError as exc:
            if ctx.strict:
                raise
            return {which: None, "failed_steps": _failed(state, which, exc), "timings": _elapsed(state, which, start)}
    if settle is not None:
        prediction = settle(ctx, prediction)
    _announce({which: prediction})
    return {which: prediction, "timings": _elapsed(state, which, start)}


def _safety_policy(ctx: SupportContext):
    return ctx.safety  # SupportContext fills in the default policy when none is given


# -- nodes ----------------------------------------------------------------------------------------


async def finish_turn(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """End the turn: the user's message and the reply go into the history, annotated with the chain's labels.

    With a store (``SupportAgent`` gives one), messages beyond the state's window move to the store, so the
    checkpoint a turn writes stays the same size however long the conversation is.
    """
    user = Message(
        role="user",
        text=user_text(state),
        emotion=state.user_emotion.label if state.user_emotion else None,
        clues=[f"{r.cue}: {r.clue}" for r in state.perception.values() if r.ok and r.clue and r.cue != "transcript"],
    )
    assistant = Message(
        role="assistant",
        text=state.response or "",
        emotion=state.system_emotion.label if state.system_emotion else None,
        strategy=state.strategy.label if state.strategy else None,
    )
    update: dict[str, Any] = {"history": [user, assistant], "turn_index": state.turn_index + 1}
    return update | await _archive_overflow(state, [user, assistant], runtime)


async def _archive_overflow(state: SupportState, new: list[Message], runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Move the oldest messages beyond the window to the store; ``{}`` when nothing moves (or there is no store)."""
    from langgraph.config import get_config
    from langgraph.types import Overwrite

    from mesa.memory import archive_messages

    thread_id = get_config().get("configurable", {}).get("thread_id")
    keep = max(STATE_WINDOW_MIN, _context(runtime).history_window)
    window = [*state.history, *new]
    if runtime.store is None or thread_id is None or len(window) <= keep:
        return {}
    moved = window[:-keep]
    await archive_messages(runtime.store, str(thread_id), state.archived, moved)
    return {"history": Overwrite(window[-keep:]), "archived": state.archived + len(moved)}


async def perceive(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Run the configured perception backends over the turn's media, concurrently; never fails the turn."""
    start = time.perf_counter()
    ctx = _context(runtime)
    check_text_size(state.turn.text, ctx.max_input_chars)  # before any model call (SupportAgent checks even earlier)
    results: dict[str, PerceptionResult] = {}
    media = [m for m in state.turn.modalities() if m != "text"]
    if ctx.perception is not None and (media or getattr(ctx.perception, "has_text_backend", False)):
        results = await ctx.perception.aperceive(state.turn, ctx.taxonomy)
        for result in results.values():
            emit({"type": "perception", "cue": result.cue, "result": result.model_dump()})
    else:
        for modality in media:
            results[modality] = PerceptionResult(
                cue=modality, modality=modality, backend="none", error="no perception backends configured (SupportAgent(perception=...))"
            )
    return {"perception": results, "timings": _elapsed(state, "perceive", start)}


async def assess_safety(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Assess risk with the safety policy (rules always, models on top). Runs before any strategy is chosen."""
    start = time.perf_counter()
    ctx = _context(runtime)
    assessment: SafetyAssessment = await _safety_policy(ctx).aassess(user_text(state), state.history, ctx.llm)
    emit({"type": "safety", "safety": assessment.model_dump()})
    return {"safety": assessment, "timings": _elapsed(state, "assess_safety", start)}


def route_after_safety(state: SupportState) -> Literal["crisis", "ok"]:
    """``"crisis"`` when the assessment calls for the escalation protocol, else ``"ok"``."""
    return "crisis" if state.safety is not None and state.safety.crisis else "ok"


async def recognize_emotion(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Decide the user's emotion (a label of the taxonomy)."""
    return await _label_step(state, runtime, "user_emotion")


async def select_strategy(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Decide the support strategy, conditioned on the user's emotion."""
    emotion = state.user_emotion.label if state.user_emotion else "unknown"
    return await _label_step(state, runtime, "strategy", user_emotion=emotion)


def settle_system_emotion(ctx: SupportContext, prediction: Prediction) -> Prediction:
    """The counsellor's emotion after the taxonomy's rule (:func:`mesa.taxonomy.system_emotion_rule`).

    A proposed non-default emotion (a tiny model mirroring the user's fear, say) becomes the
    rule's default (``neutral``) unless it was confident and counsellors of the corpus show it;
    the proposal is kept in the rationale. Taxonomies without a rule keep the model's label.
    """
    rule = system_emotion_rule(ctx.taxonomy)
    if rule is None or rule.default not in ctx.taxonomy.names("system_emotion"):
        return prediction
    label, why = rule.settle(prediction.label, prediction.confidence)
    if why is None:
        return prediction
    said = f"{prediction.confidence:.2f}" if prediction.confidence is not None else "no confidence"
    rationale = f"counsellor rule: the {prediction.source} proposed {prediction.label!r} ({said}); {why}"
    return Prediction(label=label, confidence=rule.base_rates.get(label), rationale=rationale[:RATIONALE_MAX], source="rule")


async def choose_system_emotion(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Decide the emotion the reply carries, conditioned on the user's emotion and the strategy.

    A supervised classifier that predicts it decides (whatever ``classifier_use``: it learned the
    corpus's base rates); else the LLM. Either way the taxonomy's rule settles it
    (:func:`settle_system_emotion`): a counsellor is not made fearful by a fearful user.
    """
    return await _label_step(
        state,
        runtime,
        "system_emotion",
        settle=settle_system_emotion,
        classifier_decides=True,
        user_emotion=state.user_emotion.label if state.user_emotion else "unknown",
        strategy=state.strategy.label if state.strategy else "unknown",
    )


def _chat_messages(ctx: SupportContext, state: SupportState, system: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}]
    recent = state.history[-ctx.history_window :] if ctx.history_window > 0 else []
    messages += [{"role": m.role, "content": m.text} for m in recent]
    messages.append({"role": "user", "content": user_text(state)})
    return messages


def _reply_prompt(ctx: SupportContext, state: SupportState, predictions: dict[str, Prediction]) -> str:
    """The respond step's system prompt; a label left absent by its step is left to the model."""
    decided = {which: predictions.get(which) or getattr(state, which) for which in LABEL_FIELDS}
    strategy = decided["strategy"].label if decided["strategy"] else ""
    definitions = {label.name: label.definition for label in ctx.taxonomy.strategies}
    return _prompts(ctx).render(
        "respond",
        user_emotion=decided["user_emotion"].label if decided["user_emotion"] else "unknown",
        strategy=strategy or "whichever fits best",
        strategy_definition=definitions.get(strategy, "" if strategy else "no strategy was decided this turn"),
        system_emotion=decided["system_emotion"].label if decided["system_emotion"] else "neutral",
        clues=render_clues(state.perception),
    )


async def _stream_reply(ctx: SupportContext, state: SupportState, predictions: dict[str, Prediction]) -> tuple[str, LLMError | None]:
    """Stream a reply that follows the decided strategy and system emotion, at most ``REPLY_MAX_CHARS``.

    Returns the text streamed and, when the stream broke off (deadline, provider error) after some
    text was shown, why (the text is kept, as the user saw it). With nothing shown, or ``strict``, it raises.
    """
    messages = _chat_messages(ctx, state, _reply_prompt(ctx, state, predictions))
    stream = ctx.llm.astream_text(messages, max_tokens=REPLY_MAX_TOKENS)
    shown = ""
    try:
        async for piece in stream:
            piece = piece[: REPLY_MAX_CHARS - len(shown)]  # providers may ignore max_tokens: cap what is shown
            shown += piece
            emit({"type": "token", "text": piece})
            if len(shown) >= REPLY_MAX_CHARS:
                log.info("reply reached %d characters; stopped there", REPLY_MAX_CHARS)
                break
    except LLMError as exc:
        if ctx.strict or not shown.strip():
            raise
        return shown.strip(), exc
    finally:
        await stream.aclose()
    return shown.strip(), None


def _disclose(ctx: SupportContext, state: SupportState) -> str | None:
    """The AI-disclosure sentence when it is due this turn (streamed first), else ``None``."""
    disclosure = _safety_policy(ctx).disclosure(state.turn_index, state.disclosed_ai_at_turn, state.disclosed_ai_at)
    if disclosure:
        emit({"type": "token", "text": disclosure + " "})
    return disclosure


def _reply_update(state: SupportState, disclosure: str | None, text: str, now: datetime | None = None) -> dict[str, Any]:
    """The reply (after the disclosure when one was due) and, if so, the turn and time it was disclosed at."""
    if not disclosure:
        return {"response": text}
    when = now or datetime.now(UTC)
    return {"response": f"{disclosure} {text}", "disclosed_ai_at_turn": state.turn_index, "disclosed_ai_at": when}


async def respond(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """Generate the reply, streaming tokens, following the chosen strategy and system emotion."""
    start = time.perf_counter()
    ctx = _context(runtime)
    disclosure = _disclose(ctx, state)
    text, broke = await _stream_reply(ctx, state, {})
    update = {**_reply_update(state, disclosure, text), "timings": _elapsed(state, "respond", start)}
    if broke is not None:
        update["failed_steps"] = _failed(state, "respond", broke)
    return update


LABEL_FIELDS: tuple[LabelSetName, ...] = LABEL_SETS


class _UnsettledAnswer(Exception):
    """The streamed fused answer broke off or held a label outside the taxonomy before the reply began."""


def _fused_predictions(ctx: SupportContext, labels: dict[str, Any]) -> dict[str, Prediction]:
    """The fused answer's three labels as predictions, the counsellor's emotion settled by the taxonomy's rule."""
    predictions = {which: Prediction(label=labels[which], source="fused") for which in LABEL_FIELDS}
    predictions["system_emotion"] = settle_system_emotion(ctx, predictions["system_emotion"])
    return predictions


def _settled(ctx: SupportContext, labels: dict[str, Any]) -> dict[str, Prediction]:
    """The three labels as predictions, announced once; :class:`_UnsettledAnswer` when one is missing."""
    missing = [which for which in LABEL_FIELDS if which not in labels]
    if missing:
        raise _UnsettledAnswer(f"the response began before the labels {missing}")
    return _announce(_fused_predictions(ctx, labels))


def _check_label(ctx: SupportContext, which: str, value: Any) -> Any:
    """A label the moment it completes: outside the taxonomy, the answer is dropped before anything is shown."""
    if not isinstance(value, str) or value not in ctx.taxonomy.names(which):
        raise _UnsettledAnswer(f"{which} label outside the taxonomy: {str(value)[:80]!r}")
    return value


async def _stream_fused(ctx: SupportContext, state: SupportState, messages: list[dict[str, str]]) -> tuple[dict[str, Prediction], str, str | None, Exception | None]:
    """Stream the fused answer: the three labels, once all are valid and the reply begins, then the reply as it grows.

    The raw JSON is read as it comes (``LLM.astream_fields``): each label is checked the moment it is
    complete and the reply text is passed on as written, with no partial object validated per piece
    (that cost most of a fused turn's CPU); the whole answer is validated once, at its end.
    Returns the predictions, the reply text streamed (at most ``REPLY_MAX_CHARS``), the disclosure sent
    before it and, when the stream broke off (or the whole answer failed validation) after the reply
    began, why. Raises :class:`_UnsettledAnswer` when nothing of the turn was shown yet (the caller asks again).
    """
    labels: dict[str, Any] = {}
    predictions: dict[str, Prediction] = {}
    reply = _ShownReply(ctx, state)
    broke: Exception | None = None
    stream = ctx.llm.astream_fields(messages, fused_model(ctx.taxonomy), text_field="response", max_tokens=STEP_MAX_TOKENS + REPLY_MAX_TOKENS)
    try:
        async for kind, name, value in stream:
            if kind == "field" and name in LABEL_FIELDS:
                labels[name] = _check_label(ctx, name, value)
            elif name == "response" and not predictions:
                predictions = _settled(ctx, labels)
            if kind == "text" and reply.show(value):
                break
    except _UnsettledAnswer:
        raise
    except Exception as exc:  # nothing shown yet: ask again; else keep what was shown
        if not predictions:
            raise _UnsettledAnswer(str(exc)) from exc
        log.warning("fused answer broke off after the reply began; keeping the %d characters streamed: %s", len(reply.text), exc)
        broke = exc
    finally:
        await stream.aclose()
    if not predictions:
        raise _UnsettledAnswer("the answer ended before the response began")
    return predictions, " ".join(reply.text.split()), reply.disclosure, broke


class _ShownReply:
    """The fused reply as the user sees it: leading blanks dropped, the disclosure first, at most ``REPLY_MAX_CHARS``."""

    def __init__(self, ctx: SupportContext, state: SupportState) -> None:
        self.ctx, self.state = ctx, state
        self.text = ""
        self.disclosure: str | None = None

    def show(self, piece: str) -> bool:
        """Stream ``piece``; ``True`` once the reply is as long as it may be."""
        piece = (piece if self.text else piece.lstrip())[: REPLY_MAX_CHARS - len(self.text)]
        if piece:
            if not self.text:
                self.disclosure = _disclose(self.ctx, self.state)
            emit({"type": "token", "text": piece})
            self.text += piece
        return len(self.text) >= REPLY_MAX_CHARS


async def _ask_fused(ctx: SupportContext, state: SupportState, messages: list[dict[str, str]], why: _UnsettledAnswer | None) -> tuple[dict[str, Prediction], str]:
    """Ask the fused question as one structured call (with re-asks); the labels and reply it gave.

    ``why``: the streamed answer that could not be used, if one was tried. After a deadline the model
    is not asked again (it would likely hang again).
    """
    if why is not None:
        if isinstance(why.__cause__, LLMTimeoutError):
            raise why.__cause__
        log.info("fused stream unusable (%s); asking again without streaming", why)
    answer = await ctx.llm.astructured(messages, fused_model(ctx.taxonomy), max_tokens=STEP_MAX_TOKENS + REPLY_MAX_TOKENS)
    return _fused_predictions(ctx, {which: getattr(answer, which) for which in LABEL_FIELDS}), answer.response.strip()


_tokens_heard: ContextVar[bool] = ContextVar("mesa_tokens_heard", default=True)


@contextmanager
def tokens_unheard() -> Iterator[None]:
    """Graph runs started inside send their custom stream events (the reply's tokens) to no one.

    ``SupportAgent.respond`` / ``arespond`` run their turns inside it (``ainvoke`` streams nothing), so
    :func:`fused_turn` asks its answer in one structured call instead of reading it as a stream: the
    same labels and reply, without the CPU of handling every streamed chunk (about half of a fused
    turn's CPU, which is what limits how many turns one process answers at once). Runs outside it
    (``stream`` / ``astream``, LangGraph Server) stream as ever.
    """
    token = _tokens_heard.set(False)
    try:
        yield
    finally:
        _tokens_heard.reset(token)


async def _fused_answer(ctx: SupportContext, state: SupportState, messages: list[dict[str, str]]) -> tuple[dict[str, Prediction], str, str | None, Exception | None, dict[str, str]]:
    """The fused decisions and reply: streamed when someone hears the tokens, else (or when the stream is unusable) in one call.

    Returns the predictions, the reply, the disclosure sent, why a shown reply broke off, and ``failed_steps``.
    """
    why: _UnsettledAnswer | None = None
    if _tokens_heard.get():
        try:
            return *await _stream_fused(ctx, state, messages), state.failed_steps
        except _UnsettledAnswer as unsettled:
            why = unsettled
    try:
        predictions, text = await _ask_fused(ctx, state, messages, why)
        failed = state.failed_steps
    except LLMError as exc:
        if ctx.strict:
            raise
        predictions, text, failed = {}, "", _failed(state, "fused_turn", exc)
    _announce(predictions)
    disclosure = _disclose(ctx, state)
    for word in text.split(" ") if text else ():
        emit({"type": "token", "text": word + " "})
    return predictions, text, disclosure, None, failed


def _fused_prompt(ctx: SupportContext, state: SupportState) -> list[dict[str, str]]:
    text = user_text(state)
    tax = ctx.taxonomy
    prompt = _prompts(ctx).render(
        "fused",
        user_emotions=", ".join(tax.names("user_emotion")),
        strategies=tax.describe("strategy"),
        system_emotions=", ".join(tax.names("system_emotion")),
        history=render_history(state.history, ctx.history_window),
        text=text,
        clues=render_clues(state.perception),
        demonstrations=_demonstrations(ctx, text, state.history),
        prior=_prior(ctx, "strategy", text, state.history),
    )
    return [_system_message(ctx), {"role": "user", "content": prompt}]


async def fused_turn(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """One structured call that decides emotion, strategy, system emotion and writes the response, in order.

    The answer is streamed: the three stage events come as soon as the labels are settled and valid,
    the reply tokens as the model writes them (inside :func:`tokens_unheard`, where nobody receives
    them, it is asked in one structured call instead). A stream that breaks off or holds an invalid label
    before the reply began is asked again as one structured call (with re-asks), so an invalid label
    is never shown or stored. A reply left empty is written from the decided labels. When no valid
    answer comes at all, the labels are left absent (noted in ``failed_steps``) and the reply is
    written without them, unless ``strict``.
    """
    start = time.perf_counter()
    ctx = _context(runtime)
    messages = _fused_prompt(ctx, state)
    predictions, text, disclosure, broke, failed = await _fused_answer(ctx, state, messages)
    if not text:  # the model decided but wrote nothing: write the reply from its decisions
        if disclosure is None:  # not sent yet, or not due (then asking again sends nothing)
            disclosure = _disclose(ctx, state)
        text, broke = await _stream_reply(ctx, state, predictions)
    if broke is not None:
        failed = {**failed, **_failed(state, "respond", broke)}
    update = {**predictions, **_reply_update(state, disclosure, text), "timings": _elapsed(state, "fused_turn", start)}
    return {**update, "failed_steps": failed} if failed != state.failed_steps else update


async def crisis_response(state: SupportState, runtime: Runtime[SupportContext]) -> dict[str, Any]:
    """The escalation protocol: a checked crisis reply, the escalation hook, the conversation kept open."""
    start = time.perf_counter()
    ctx = _context(runtime)
    policy = _safety_policy(ctx)
    assessment = state.safety or SafetyAssessment(level="elevated", category="other")
    text = user_text(state)
    # counted, and the hooks started in the background (each with its timeout): the reply never waits for them
    await policy.aescalate(ctx.thread_id, assessment, text)
    reply = await policy.acrisis_reply(text, assessment, state.history, ctx.llm)  # bounded by wording_timeout
    emit({"type": "token", "text": reply})
    # The crisis reply always states that the user is talking to an AI.
    return {
        "response": reply,
        "disclosed_ai_at_turn": state.turn_index,
        "disclosed_ai_at": policy.clock(),
        "timings": _elapsed(state, "crisis_response", start),
    }
