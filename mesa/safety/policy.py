"""The safety policy: layered assessment, the crisis reply, escalation hooks, AI disclosure."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from mesa.bridge import run_sync
from mesa.prompts import PromptSet
from mesa.safety.contacts import CrisisContact, LocaleContacts, load_contact_table, locale_entry, resolve_locale
from mesa.safety.counters import EscalationCounters
from mesa.safety.patterns import RiskPattern
from mesa.safety.rules import LEVELS, RuleEngine, normalize
from mesa.state import Message, RiskCategory, RiskLevel, SafetyAssessment

if TYPE_CHECKING:
    from mesa.llm import LLM

__all__ = [
    "REQUIRED_ELEMENTS",
    "EscalationEvent",
    "EscalationHook",
    "SafetyJudgement",
    "SafetyPolicy",
    "missing_crisis_elements",
]

log = logging.getLogger("mesa.safety")

_RANK = {name: i for i, name in enumerate(LEVELS)}


_RISK_WORD = re.compile(
    r"\b(?:die|dead|death|kill|suicid\w*|end|ending|live|living|alive|life|hurt|harm|pain|gone|disappear|burden|goodbye|pills?|"
    r"cut|bleed|jump|bridge|rope|gun|knife|hit|hits|beat|abuse|scared|afraid|threat\w*|safe|unsafe|point|anymore|over)\b"
)
"""Words one of which a quote must hold to ground an LLM crisis verdict the rules did not see."""

JUDGEMENT_MAX_TOKENS = 96
"""Output cap of the LLM judgement: level and category, then a short quote."""


class SafetyJudgement(BaseModel):
    """The LLM layer's structured answer.

    Level and category come first, so a small model that rambles in ``evidence`` is cut
    there (``JUDGEMENT_MAX_TOKENS``) without losing the verdict.
    """

    level: RiskLevel = Field(description="none, low, elevated or imminent")
    category: RiskCategory = Field(description="what kind of risk")
    evidence: str = Field(default="", description="the user's own words that show the risk, quoted exactly; empty if none")


class EscalationEvent(BaseModel):
    """What an escalation hook receives when a turn is routed to the crisis protocol."""

    thread_id: str | None
    level: str
    category: str
    evidence: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    text: str = Field(default="", description="the user's message that triggered the escalation")
    locale: str = "US"
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))


EscalationHook = Callable[[EscalationEvent], Any] | Callable[[EscalationEvent], Awaitable[Any]]

# -- required elements of a crisis reply ----------------------------------------------------------

REQUIRED_ELEMENTS: dict[str, str] = {
    "acknowledgement": "acknowledges the distress without judgement",
    "safety_question": "asks about (or confirms) the person's safety, as a question",
    "human_help": "encourages reaching a real person now (someone trusted, a crisis line, emergency services)",
    "crisis_contact": "gives at least one crisis contact of the configured locale",
    "ai_disclosure": "says plainly that the user is talking to an AI",
    "open_door": "keeps the conversation open",
}
"""Every crisis reply must have all of these (``SafetyPolicy.check_crisis_reply`` names the ones missing)."""

_ACK = re.compile(
    r"\b(?:sounds? (?:like|really|so|incredibly|very|unbearabl|overwhelm|painful|frighten|scary|hard|exhausting)|"
    r"i(?:'m| am) (?:so |really |very |truly )?(?:sorry|glad you (?:told|reached|shared|said)|grateful you)|"
    r"thank you for (?:telling|sharing|trusting|reaching|letting)|that (?:sounds|must (?:be|feel))|must (?:be|feel) "
    r"(?:so |really |incredibly )?(?:hard|painful|overwhelming|frightening|scary|exhausting|heavy|lonely)|i hear (?:you|how|that)|"
    r"(?:carrying|going through|dealing with|facing) (?:so much|a lot|something (?:really |so )?(?:hard|painful|heavy))|"
    r"in (?:so much|a lot of) pain|makes sense (?:that|you)|not alone|your feelings (?:matter|are valid))"
)
_SAFETY_Q = re.compile(
    r"(?:are you (?:safe|somewhere safe|in (?:immediate )?danger|thinking (?:about|of)|having thoughts|okay right now|hurt|injured|able to stay safe)|"
    r"is (?:anyone|someone|somebody) (?:in danger|with you|nearby|around)|have you (?:already )?(?:taken|hurt|done|harmed|made a plan|got)|"
    r"do you (?:have a plan|feel safe|have (?:the )?(?:means|pills|a weapon))|can you (?:stay|keep yourself|get somewhere) safe|"
    r"(?:are|is) (?:you|anyone) safe|how safe)[^?]{0,200}\?"
)
_HUMAN_HELP = re.compile(
    r"\b(?:call|text|reach(?: out)?(?: to)?|contact|talk to|talk with|speak (?:to|with)|tell|go to|be with|get in touch with|ring|phone|message|visit)\b"
    r"[^.?!]{0,120}\b(?:someone|somebody|a person|person|friend|family|crisis|counsell?or|professional|doctor|gp|emergency|helpline|lifeline|hotline|line|"
    r"trusted|people who|988|services?|hospital|police|human|neighbou?r|relative|partner|therapist)"
)
_NOW = re.compile(r"\b(?:now|right away|immediately|today|tonight|straight away|at once|as soon as you can|this moment|urgent(?:ly)?)\b")
_AI = re.compile(
    r"\b(?:i(?:'m| am) (?:just |only )?(?:an? )?(?:ai|a\.i\.|artificial intelligence|chatbot|chat bot|bot|computer program|language model|automated|virtual assistant|machine)|"
    r"as an ai|i(?:'m| am) not (?:a )?(?:human|real person|person|counsell?or|therapist|doctor)(?: but| - | — |,)? ?(?:an? )?(?:ai)?|"
    r"(?:you(?:'re| are) (?:talking|chatting|speaking) (?:to|with) (?:an? )?(?:ai|chatbot|bot|computer|machine)))"
)
_OPEN = re.compile(
    r"\b(?:i(?:'m| am) (?:still )?here|i(?:'ll| will) (?:stay|keep|be here|still be here)|(?:keep|keep on) talking|we can (?:keep|continue|talk|stay)|"
    r"you can (?:keep|tell me|talk|come back|write|message)|i(?:'m| am) (?:happy|glad|willing|ready) to (?:keep|stay|listen|talk|hear)|"
    r"i(?:'m| am) (?:listening|not going anywhere)|(?:want|would you like) to (?:tell|talk|share)|if you want to (?:talk|keep|tell))\b"
)
_JUDGEMENT = re.compile(
    r"\b(?:selfish|stupid|cowardly|coward|attention[- ]seeking|overreact\w*|dramatic|calm down|get over it|snap out of it|just cheer up|"
    r"shouldn't feel|should be ashamed|a sin|sinful|you're being silly|it's not that bad|others have it worse|man up)\b"
)
_HUMAN_CLAIM = re.compile(
    r"\b(?:i(?:'m| am) (?:a |an )?(?:real )?(?:human|person|real person|your friend,? not an? ai|not an? (?:ai|bot|chatbot|machine|program))|"
    r"i(?:'m| am) not (?:an? )?(?:ai|bot|chatbot|machine|program)|i promise (?:not to tell|to keep (?:this|it) (?:a )?secret))\b"
)


_METHOD = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:mg|milligrams?|mcg|micrograms?|g|grams?|ml|millilit(?:er|re)s?|pills|tablets|capsules|units|doses|storeys|stories|floors|"
    r"feet|ft|metres|meters|m)\b|"
    r"\b(?:lethal|fatal|deadly|toxic|dangerous|overdose|killing) (?:dose|doses|amount|amounts|level|levels|quantity|threshold|height|heights)\b|"
    r"\b(?:lethality|ld50|most lethal|least painful|most painless|painless(?:ly)?|quickest|fastest|surest|most (?:effective|reliable|certain))\b|"
    r"\b(?:how to|way to|ways to|method(?:s)? (?:to|of|for)) (?:tie|hang|cut|overdose|jump|shoot|poison|drown|suffocate|bleed|die|kill)\b|"
    r"\b(?:noose|ligature|carbon monoxide|exit bag|helium|nitrogen|charcoal|cyanide|nitrite|vertical(?:ly)? (?:cut|cuts)|(?:cut|cutting|cuts) (?:deep|deeper|vertically|along|down))\b|"
    r"\b(?:high enough|enough (?:pills|tablets|to (?:die|kill|be fatal)))\b"
)
"""Method, dose or lethality content: never in a crisis reply (a model's wording with it is replaced by the template)."""


def missing_crisis_elements(text: str, contacts: Sequence[CrisisContact] = (), emergency: str | None = None) -> list[str]:
    """The required elements a crisis reply lacks (empty: it has them all), plus violations, for any contacts.

    :meth:`SafetyPolicy.check_crisis_reply` is this with the policy's own locale contacts.

    Violations are named ``judgemental``, ``claims_to_be_human`` and ``method_content`` (a method,
    dose, amount or lethality). ``contacts``
    (and the ``emergency`` number) are what the reply must quote at least one of;
    without them any phone number or crisis-service URL counts.
    """
    body = normalize(text)
    raw = text or ""
    missing: list[str] = []
    if not _ACK.search(body):
        missing.append("acknowledgement")
    if not _SAFETY_Q.search(body):
        missing.append("safety_question")
    if not (_HUMAN_HELP.search(body) and _NOW.search(body)):
        missing.append("human_help")
    if not _has_contact(raw, contacts, emergency):
        missing.append("crisis_contact")
    if not _AI.search(body) or _HUMAN_CLAIM.search(body):
        missing.append("ai_disclosure")
    if not _OPEN.search(body):
        missing.append("open_door")
    if _JUDGEMENT.search(body):
        missing.append("judgemental")
    if _HUMAN_CLAIM.search(body):
        missing.append("claims_to_be_human")
    if _METHOD.search(_without_contacts(body)):
        missing.append("method_content")
    return missing


def _without_contacts(body: str) -> str:
    """The reply without phone numbers and addresses (so "988" or "116 123" never reads as an amount)."""
    return re.sub(r"https?://\S+|www\.\S+|\+?\d[\d\s\-]{1,14}\d(?!\s*(?:mg|g|ml|pills|tablets|feet|floors))|\b\d{3}\b(?!\s*(?:mg|g|ml|pills|tablets))", " ", body)


def _has_contact(text: str, contacts: Sequence[CrisisContact], emergency: str | None) -> bool:
    digits_in_text = re.sub(r"(?<=\d)[\s\-.]+(?=\d)", "", text)
    lowered = text.lower()
    if not contacts:
        return bool(re.search(r"\b\d{3}\b|\b\d[\d\s\-]{4,}\d\b|https?://|www\.", text))
    for contact in contacts:
        for way in contact.reach():
            if way.startswith("http"):
                host = re.sub(r"^https?://(?:www\.)?", "", way).rstrip("/").lower()
                if host and host in lowered:
                    return True
            else:
                digits = re.sub(r"\D", "", way)
                if len(digits) >= 3 and re.search(rf"(?<!\d){digits}(?!\d)", digits_in_text):
                    return True
    return False


# -- templates -----------------------------------------------------------------------------------

_OPENINGS = {
    "suicide": "It sounds like you're carrying an enormous amount of pain right now, and I'm really glad you told me. You don't have to go through this alone.",
    "self_harm": "It sounds like you're going through something really painful right now, and I'm glad you told me. There's no judgement here.",
    "harm_to_others": "It sounds like you're feeling overwhelmed by really intense feelings right now, and I'm glad you said it out loud instead of keeping it in.",
    "abuse": "What you're describing sounds frightening, and I'm really sorry you're going through it. It is not your fault.",
    "other": "It sounds like you're going through something really hard right now, and I'm glad you told me.",
}
_QUESTIONS = {
    "suicide": "Can I ask you directly: are you safe right now, or are you thinking about ending your life?",
    "self_harm": "Are you safe right now? Have you hurt yourself, or are you thinking about hurting yourself?",
    "harm_to_others": "Is anyone in danger right now, including you?",
    "abuse": "Are you safe right now, where you are?",
    "other": "Are you safe right now?",
}
_HUMAN = {
    "suicide": "Please reach out to someone right now: a person you trust, or a crisis line. They are real people, there to talk, any time.",
    "self_harm": "Please reach out to someone right now: a person you trust, or a crisis line, where real people can help you through this.",
    "harm_to_others": "Please talk to someone right now: put some distance between you and the person, and call a crisis line or someone you trust.",
    "abuse": "Please reach out to someone right now: a crisis line, someone you trust, or the police if you are in danger.",
    "other": "Please reach out to someone right now: a person you trust, or a crisis line.",
}
_AI_LINE = "I'm an AI, not a person or a counsellor, so I can't be there with you or call for help myself, but the people at these services can."
_OPEN_LINE = "I'm still here, and you can keep talking to me while you reach out."
DISCLOSURE_TEXT = "Just so you know: I'm an AI, not a human or a therapist. I can listen and offer support, but I can't replace professional help."


def _history_lines(history: Sequence[Message], n: int = 6) -> str:
    lines = [f"{'User' if m.role == 'user' else 'Assistant'}: {m.text}" for m in list(history)[-n:]]
    return "\n".join(lines)


def _max(a: str, b: str) -> str:
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b


# -- the policy ----------------------------------------------------------------------------------


class SafetyPolicy:
    """Crisis detection and the crisis protocol. Put one in ``SupportContext(safety=...)``.

    Args:
        locale: country for crisis contacts (``"US"``, ``"en_GB"``, ``"DE"``; unknown → international list).
        rules: run the rule layer. Turning it off is allowed only explicitly and logs a warning:
            then only the model layers can detect risk.
        llm_assessment: ask the LLM for a structured judgement (when an ``llm`` is passed).
        llm_wording: let the LLM word the crisis reply (checked; vetted template fallback).
        moderation_model: a LiteLLM moderation model name (``"omni-moderation-latest"``) or a
            callable ``text -> dict[category, bool | float]``; ``None``: no moderation layer.
        extra_patterns: more rules (regex strings, ``(regex, category[, level])`` tuples, ``RiskPattern``).
        contacts: overrides of the contact table: ``{locale: [contact dicts]}`` or ``{locale: {"emergency": ..., "contacts": [...]}}``;
            a plain list replaces the contacts of ``locale``.
        on_escalation: hook(s) called with an :class:`EscalationEvent` (sync or async).
        disclosure_every: repeat the AI disclosure after this many turns (``None``: only the first turn).
        llm_escalation: ``"grounded"`` (default): an LLM verdict of crisis counts only when the rules saw at
            least a signal, or the LLM quoted the user's own risk words verbatim (else it is kept as ``low``);
            ``"trusted"``: always (for strong models). The moderation layer is always trusted.
        llm_every_turn: ask the LLM on every turn. By default (``False``, grounded mode) a turn with no
            rule signal and no risk word skips the call, because no verdict could route it to the
            protocol (see :meth:`llm_verdict_can_count`); the assessment then reads ``none`` where the
            model might have said ``low``.
        hook_timeout: seconds a hook (sync or async) may run before it is abandoned (logged). Hooks run off the
            reply path: the crisis reply never waits for them.
        semantic: the embedding layer (``True``: load it at first use when the ``safety`` extra is installed,
            else warn once and go on with rules + LLM; ``"default"``: the same; ``"large"``: the opt-in pair, the
            default reader with the larger reader's second opinion (all-mpnet-base-v2) on the turns it flags
            (``safety-large`` extra and its weights; without them, warn once and use the default reader);
            ``False``: off; or a ready :class:`~mesa.safety.semantic.SemanticLayer`).
        judgement_timeout: seconds the LLM safety judgement may take; on expiry the rules/semantic result stands.
        wording_timeout: seconds the LLM may take to word the crisis reply; on expiry the vetted template is used.
        disclosure_interval: repeat the AI disclosure when this much time has passed since the last one
            (SB 243 / New York: at least every 3 hours), besides ``disclosure_every`` turns.
        clock: ``() -> datetime`` (UTC) for the disclosure clock and the counters; tests inject one.
        prompts: a :class:`~mesa.prompts.PromptSet` whose ``safety_assess`` and ``crisis_reply`` templates the
            LLM layers use (default: the built-in ones). A crisis reply is still checked whatever the prompt says.
    """

    def __init__(
        self,
        locale: str = "US",
        rules: bool = True,
        llm_assessment: bool = True,
        llm_wording: bool = True,
        moderation_model: str | Callable[[str], Mapping[str, Any]] | None = None,
        extra_patterns: Iterable[RiskPattern | str | Sequence[str]] = (),
        contacts: Mapping[str, Any] | Sequence[Any] | None = None,
        on_escalation: EscalationHook | Sequence[EscalationHook] | None = None,
        disclosure_every: int | None = 20,
        *,
        llm_escalation: Literal["grounded", "trusted"] = "grounded",
        llm_every_turn: bool = False,
        hook_timeout: float | None = 30.0,
        semantic: Any = True,
        judgement_timeout: float | None = 5.0,
        wording_timeout: float | None = 5.0,
        disclosure_interval: timedelta | None = timedelta(hours=3),
        clock: Callable[[], datetime] | None = None,
        prompts: PromptSet | None = None,
    ) -> None:
        self.prompts = prompts or PromptSet.default()
        self.locale = resolve_locale(locale)
        self.rules = bool(rules)
        if not self.rules:
            log.warning(
                "mesa.safety: the rule layer is OFF (SafetyPolicy(rules=False)); crisis detection now depends "
                "on the semantic, LLM and moderation layers only. Do not deploy this to real users."
            )
        self.llm_assessment = llm_assessment
        self.llm_wording = llm_wording
        self.moderation_model = moderation_model
        self.engine = RuleEngine(extra_patterns)
        if contacts is not None and not isinstance(contacts, Mapping):
            contacts = {self.locale: list(contacts)}
        self.contact_table: dict[str, LocaleContacts] = load_contact_table(contacts)
        self.hooks: list[EscalationHook] = []
        if on_escalation is not None:
            for hook in on_escalation if isinstance(on_escalation, Sequence) else [on_escalation]:
                self.add_hook(hook)
        if disclosure_every is not None and disclosure_every < 1:
            raise ValueError("disclosure_every must be >= 1 or None")
        self.disclosure_every = disclosure_every
        if llm_escalation not in ("grounded", "trusted"):
            raise ValueError("llm_escalation must be 'grounded' or 'trusted'")
        self.llm_escalation = llm_escalation
        self.llm_every_turn = llm_every_turn
        self.hook_timeout = hook_timeout
        self.judgement_timeout = judgement_timeout
        self.wording_timeout = wording_timeout
        self.disclosure_interval = disclosure_interval
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.counters = EscalationCounters(self.clock)
        if isinstance(semantic, str):
            from mesa.safety.semantic import READERS

            if semantic not in READERS:
                raise ValueError(f"semantic={semantic!r}: one of {sorted(READERS)}, True, False or a SemanticLayer")
            semantic = True if semantic == "default" else semantic
        self._semantic_choice = semantic
        self._semantic: Any = None
        self._semantic_lock = threading.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    @classmethod
    def default(cls) -> SafetyPolicy:
        """The default policy: US contacts, every layer on, AI disclosure every 20 turns."""
        return cls()

    def __repr__(self) -> str:
        return (
            f"SafetyPolicy(locale={self.locale!r}, rules={self.rules}, llm_assessment={self.llm_assessment}, "
            f"llm_wording={self.llm_wording}, moderation_model={self.moderation_model!r}, hooks={len(self.hooks)})"
        )

    # -- contacts ------------------------------------------------------------------------------------

    @property
    def locale_contacts(self) -> LocaleContacts:
        return locale_entry(self.locale, self.contact_table)

    def contacts(self, category: str | None = None) -> list[CrisisContact]:
        """The crisis contacts of this policy's locale (category-specific ones first)."""
        entry = self.locale_contacts
        own = [c for c in entry.contacts if c.serves(category)]
        return [c for c in own if c.categories] + [c for c in own if not c.categories]

    # -- assessment ------------------------------------------------------------------------------------

    def assess_rules(self, text: str, history: Sequence[Message] = ()) -> SafetyAssessment:
        """The rule layer (with this policy's extra patterns), plus the answer to a crisis check-in."""
        if not self.rules:
            return SafetyAssessment(level="none", category="none", evidence=[], sources=[])
        result = self.engine.assess(text)
        follow = self._follow_up(text, history)
        if follow is not None and _RANK[follow.level] > _RANK[result.level]:
            result = SafetyAssessment(
                level=follow.level, category=follow.category, evidence=follow.evidence + result.evidence, sources=["rules"]
            )
        return result

    # -- the semantic layer ------------------------------------------------------------------------------

    @property
    def semantic(self) -> Any:
        """The semantic layer, loaded at first use (``None`` when off or its extra is missing)."""
        if self._semantic is None and self._semantic_choice is not False:
            with self._semantic_lock:
                if self._semantic is None:
                    self._semantic = self._load_semantic()
        return self._semantic or None

    def _load_semantic(self) -> Any:
        choice = self._semantic_choice
        if choice is not True and choice != "large":
            return choice
        from mesa.safety.semantic import load_semantic_layer

        if choice == "large":
            try:
                return load_semantic_layer("large")
            except ImportError as exc:
                log.warning("mesa.safety: the larger reader is not running (%s); using the default reader.", exc)
        try:
            return load_semantic_layer()
        except ImportError as exc:
            log.warning(
                "mesa.safety: the semantic layer is not running (%s); risk is assessed by the rules and the LLM only.", exc
            )
            return False  # falsy, not None: do not try again

    def assess_local(self, text: str, history: Sequence[Message] = ()) -> SafetyAssessment:
        """The layers that need no model call: rules (with the check-in follow-up), then the semantic layer.

        CPU-bound (tens of milliseconds at most for a chat message); :meth:`aassess` runs it in a worker thread.
        The semantic layer may raise the level, never lower it; when it does not run, ``sources`` says so.
        """
        result = self.assess_rules(text, history)
        if self._semantic_choice is False:
            return result
        layer = self.semantic
        if layer is None:
            return result.model_copy(update={"sources": [*result.sources, "semantic:unavailable"]})
        signal = layer.assess(text)
        return self._merge_semantic(result, signal)

    def _merge_semantic(self, base: SafetyAssessment, signal: Any) -> SafetyAssessment:
        sources = list(dict.fromkeys([*base.sources, "semantic"]))
        if signal is None or _RANK[signal.level] <= _RANK[base.level]:
            noted = signal is not None and signal.level != "none"  # a "none" window is not evidence of anything
            evidence = [*base.evidence, signal.as_evidence()] if noted else base.evidence
            return base.model_copy(update={"sources": sources, "evidence": evidence})
        category = signal.category if base.category in ("none", "other") or base.level == "none" else base.category
        return SafetyAssessment(level=signal.level, category=category, evidence=[*base.evidence, signal.as_evidence()], sources=sources)

    def _follow_up(self, text: str, history: Sequence[Message]) -> SafetyAssessment | None:
        """A short answer to our own crisis check-in keeps the protocol on unless it is a clear 'I'm safe'."""
        last = next((m for m in reversed(list(history)) if m.role == "assistant"), None)
        if last is None or not self._looks_like_crisis_reply(last.text):
            return None
        body = normalize(text)
        if len(body.split()) > 14:
            return None
        if re.search(r"\b(?:i'm|i am|i feel|i'll be|feeling) (?:safe|okay|ok|fine|alright|better)\b|\bnot (?:going to|gonna) (?:do|hurt|kill|act)\b|\bi'm not in danger\b|\bi wasn't serious\b", body) and not re.search(r"\bnot (?:safe|okay|ok|fine)\b", body):
            return None
        if re.search(r"^(?:yes|yeah|yep|yea|ya|mhm|i am|i do|i have|kind of|kinda|sort of|maybe|a little|sometimes|i think so|probably|no|nope|not really|idk|i don't know|i'm not sure|don't know|not sure|i guess|who cares|does it matter|whatever)\b|\bnot (?:safe|okay|ok|fine)\b|\bi (?:already )?(?:did|have)\b", body):
            lowered = last.text.lower()
            category = (
                "abuse" if "where you are" in lowered or "not your fault" in lowered
                else "harm_to_others" if "anyone in danger" in lowered
                else "self_harm" if "hurting yourself" in lowered and "ending your life" not in lowered
                else "suicide"
            )
            return SafetyAssessment(
                level="elevated",
                category=category,
                evidence=[f"rules:follow_up: answer to a crisis check-in: \"{body[:80]}\""],
                sources=["rules"],
            )
        return None

    def _looks_like_crisis_reply(self, text: str) -> bool:
        missing = set(missing_crisis_elements(text, self.contacts(None) + self.contacts("abuse")))
        return not ({"safety_question", "crisis_contact"} & missing)

    def _llm_messages(self, text: str, history: Sequence[Message]) -> list[dict[str, str]]:
        context = _history_lines(history)
        user = (f"Conversation so far:\n{context}\n\n" if context else "") + f"User's last message:\n\"\"\"\n{text}\n\"\"\""
        return [{"role": "system", "content": self.prompts.render("safety_assess")}, {"role": "user", "content": user}]

    def _merge(self, base: SafetyAssessment, level: str, category: str, evidence: str, source: str, text: str) -> SafetyAssessment:
        """Add a model layer's verdict: it may raise the level, never lower it."""
        sources = list(dict.fromkeys([*base.sources, source]))
        if level not in _RANK:
            return base.model_copy(update={"sources": sources})
        if evidence.strip().strip("\"'.").lower() in ("none", "n/a", "na", "null", "no", "nothing", "empty", ""):
            evidence = ""
        note = f"{source}: {level} {category}" + (f": \"{evidence[:160]}\"" if evidence else "")
        if source == "llm" and _RANK[level] >= _RANK["elevated"] and self.llm_escalation == "grounded" and not self._grounded(base, evidence, text):
            level = "low"
            note = f"{source} (unconfirmed, capped at low): " + note.split(": ", 1)[1]
        evidence_list = [*base.evidence, note] if level != "none" else base.evidence
        if _RANK[level] > _RANK[base.level]:
            new_category = category if category != "none" else (base.category if base.category != "none" else "other")
            return SafetyAssessment(level=level, category=new_category, evidence=evidence_list, sources=sources)
        return SafetyAssessment(level=base.level, category=base.category, evidence=evidence_list, sources=sources)

    def _grounded(self, base: SafetyAssessment, evidence: str, text: str) -> bool:
        """An LLM crisis verdict is grounded by a rule signal, or by a quote of the user's own risk words
        (whole words, not in a sentence about fiction or games)."""
        if _RANK[base.level] >= _RANK["low"]:
            return True
        quote = normalize(evidence).strip(" \"'.")
        if len(quote.split()) < 3 or not _RISK_WORD.search(quote):
            return False
        normalized = normalize(text)
        found = re.search(r"(?<!\w)" + re.escape(quote) + r"(?!\w)", normalized)
        return found is not None and not self.engine.in_fiction(normalized, *found.span())

    def llm_verdict_can_count(self, rules: SafetyAssessment, text: str) -> bool:
        """Whether an LLM judgement of this turn could change where it is routed.

        Under ``llm_escalation="grounded"`` a crisis verdict counts only with a rule signal or a
        verbatim quote holding a risk word; a turn with neither can at most be rated ``low``, which
        routes nowhere. Such turns skip the LLM call unless ``llm_every_turn=True``.
        """
        if self.llm_every_turn or self.llm_escalation == "trusted" or _RANK[rules.level] >= _RANK["low"]:
            return True
        return _RISK_WORD.search(normalize(text)) is not None

    @staticmethod
    def _call_kwargs(method: Any) -> dict[str, Any]:
        """A token cap for the judgement when the LLM accepts extra keyword arguments (mesa's ``LLM`` does)."""
        try:
            params = inspect.signature(method).parameters.values()
        except (TypeError, ValueError):
            return {}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "max_tokens" for p in params):
            return {"max_tokens": JUDGEMENT_MAX_TOKENS}
        return {}

    def _judgement_from(self, answer: Any) -> SafetyJudgement:
        if isinstance(answer, SafetyJudgement):
            return answer
        if isinstance(answer, BaseModel):
            return SafetyJudgement.model_validate(answer.model_dump())
        return SafetyJudgement.model_validate(answer)

    async def aassess(self, text: str, history: Sequence[Message] = (), llm: LLM | None = None) -> SafetyAssessment:
        """Rules, then the LLM judgement (if enabled and ``llm`` given), then moderation (if configured).

        Model layers may raise the rules' level, never lower it; a failing model layer is
        logged and skipped (the result so far stands).
        """
        # rules + semantic layer off the event loop: other conversations' turns go on meanwhile
        result = await asyncio.to_thread(self.assess_local, text, history)
        if llm is not None and self.llm_assessment and self.llm_verdict_can_count(result, text):
            try:
                call = llm.astructured(
                    self._llm_messages(text, history), SafetyJudgement, max_retries=1, **self._call_kwargs(llm.astructured)
                )
                answer = await asyncio.wait_for(call, self.judgement_timeout)
                judgement = self._judgement_from(answer)
                result = self._merge(result, judgement.level, judgement.category, judgement.evidence, "llm", text)
            except TimeoutError:
                log.warning("mesa.safety: LLM assessment took over %ss, keeping the rule/semantic result", self.judgement_timeout)
                result = result.model_copy(update={"sources": [*result.sources, "llm:timeout"]})
            except Exception as exc:  # noqa: BLE001 - a model failure must never break the safety layer
                log.warning("mesa.safety: LLM assessment failed, keeping the rule result: %s: %s", type(exc).__name__, exc)
        if self.moderation_model is not None:
            try:
                flags = await self._amoderate(text)
                result = self._merge_moderation(result, flags, text)
            except Exception as exc:  # noqa: BLE001
                log.warning("mesa.safety: moderation failed, keeping the result so far: %s: %s", type(exc).__name__, exc)
        return result

    def assess(self, text: str, history: Sequence[Message] = (), llm: LLM | None = None) -> SafetyAssessment:
        """Sync twin of :meth:`aassess` (its body, on mesa's shared loop thread: the same deadlines)."""
        return run_sync(self.aassess(text, history, llm))

    # -- moderation --------------------------------------------------------------------------------------

    async def _amoderate(self, text: str) -> dict[str, Any]:
        if callable(self.moderation_model):
            out = self.moderation_model(text)
            if inspect.isawaitable(out):
                out = await out
            return dict(out)
        from mesa.llm import import_litellm

        response = await import_litellm().amoderation(input=text, model=self.moderation_model)
        return _moderation_categories(response)

    def _merge_moderation(self, base: SafetyAssessment, flags: Mapping[str, Any], text: str) -> SafetyAssessment:
        def on(*names: str) -> bool:
            for name in names:
                for key in (name, name.replace("-", "_").replace("/", "_")):
                    value = flags.get(key)
                    if value is True or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0.5):
                        return True
            return False

        level, category = "none", "none"
        if on("self-harm/intent"):
            level = "elevated"
            category = base.category if base.category in ("suicide", "self_harm") else "self_harm"
        elif on("self-harm", "self-harm/instructions"):
            level, category = "low", "self_harm"
        elif on("violence", "harassment/threatening", "hate/threatening", "violence/graphic"):
            level, category = "low", "harm_to_others"
        flagged = ", ".join(k for k, v in flags.items() if v is True)
        return self._merge(base, level, category, flagged, "moderation", text) if level != "none" else base.model_copy(
            update={"sources": list(dict.fromkeys([*base.sources, "moderation"]))}
        )

    # -- the crisis reply ------------------------------------------------------------------------------

    def check_crisis_reply(self, text: str, category: str | None = None) -> list[str]:
        """The required elements ``text`` lacks for this policy's locale (see :data:`REQUIRED_ELEMENTS`)."""
        contacts = self.contacts(category) if category else self.locale_contacts.contacts
        return missing_crisis_elements(text, contacts)

    def template_reply(self, assessment: SafetyAssessment) -> str:
        """The vetted crisis reply for ``assessment`` (used whenever the LLM wording misses anything)."""
        category = assessment.category if assessment.category in _OPENINGS else "other"
        if category == "none":
            category = "other"
        entry = self.locale_contacts
        contacts = self.contacts(category)[:3]
        follow_up = any(e.startswith("rules:follow_up") for e in assessment.evidence)
        opening = (
            "Thank you for answering me. It sounds like things are still really hard, and I'm taking what you've said seriously."
            if follow_up
            else _OPENINGS[category]
        )
        lines = [opening, _QUESTIONS[category]]
        if assessment.level == "imminent":
            lines.append(
                f"If you have already hurt yourself or you are in immediate danger, please call emergency services ({entry.emergency}) "
                "right now or go to the nearest emergency department."
            )
        lines.append(_HUMAN[category])
        listed = "; ".join(c.render() for c in contacts)
        lines.append(f"Crisis lines ({entry.country}): {listed}." if entry.locale != "INTERNATIONAL" else f"You can find a free, confidential crisis line near you here: {listed}.")
        if assessment.level != "imminent":
            lines.append(f"If you are in immediate danger, call {entry.emergency}.")
        lines.append(_AI_LINE)
        lines.append(_OPEN_LINE)
        return " ".join(lines)

    def _reply_messages(self, text: str, assessment: SafetyAssessment, history: Sequence[Message]) -> list[dict[str, str]]:
        entry = self.locale_contacts
        contacts = self.contacts(assessment.category)[:3]
        system = self.prompts.render(
            "crisis_reply",
            category=assessment.category.replace("_", " "),
            level=assessment.level,
            contacts="\n".join(f"   - {c.render()}" for c in contacts),
            emergency=f"call {entry.emergency}",
        )
        context = _history_lines(history)
        user = (f"Conversation so far:\n{context}\n\n" if context else "") + f"User's last message:\n\"\"\"\n{text}\n\"\"\"\n\nYour reply:"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _accept(self, reply: str | None, assessment: SafetyAssessment) -> str:
        if reply:
            missing = self.check_crisis_reply(reply, assessment.category)
            if not missing:
                return reply.strip()
            log.info("mesa.safety: LLM crisis reply lacked %s; using the vetted template", ", ".join(missing))
        return self.template_reply(assessment)

    async def acrisis_reply(self, text: str, assessment: SafetyAssessment, history: Sequence[Message] = (), llm: LLM | None = None) -> str:
        """The crisis reply: LLM-worded when allowed and complete, else the vetted template."""
        reply = None
        if llm is not None and self.llm_wording and not _model_timed_out(assessment):
            try:
                reply = await asyncio.wait_for(llm.atext(self._reply_messages(text, assessment, history)), self.wording_timeout)
            except TimeoutError:
                log.warning("mesa.safety: LLM crisis wording took over %ss, using the template", self.wording_timeout)
            except Exception as exc:  # noqa: BLE001
                log.warning("mesa.safety: LLM crisis wording failed, using the template: %s: %s", type(exc).__name__, exc)
        return self._accept(reply, assessment)

    def crisis_reply(self, text: str, assessment: SafetyAssessment, history: Sequence[Message] = (), llm: LLM | None = None) -> str:
        """Sync twin of :meth:`acrisis_reply` (its body, on mesa's shared loop thread)."""
        return run_sync(self.acrisis_reply(text, assessment, history, llm))

    # -- escalation ---------------------------------------------------------------------------------------

    def add_hook(self, hook: EscalationHook) -> None:
        """Register an escalation hook (sync or async callable taking an :class:`EscalationEvent`)."""
        if not callable(hook):
            raise TypeError(f"escalation hook {hook!r} is not callable")
        self.hooks.append(hook)

    def _event(self, thread_id: str | None, assessment: SafetyAssessment, text: str) -> EscalationEvent:
        return EscalationEvent(
            thread_id=thread_id,
            level=assessment.level,
            category=assessment.category,
            evidence=list(assessment.evidence),
            sources=list(assessment.sources),
            text=text,
            locale=self.locale,
        )

    async def aescalate(self, thread_id: str | None, assessment: SafetyAssessment, text: str) -> None:
        """Count the escalation and start every hook in the background; returns at once.

        Hooks run off the reply path, each with ``hook_timeout``: async hooks as tasks on this loop,
        sync hooks in their own daemon threads (a hanging sync hook holds only its thread, never the
        loop, the reply or the default executor). Failures and timeouts are logged, never raised.
        On a loop that is about to close (``asyncio.run(policy.aescalate(...))``), ``await
        policy.adrain_hooks()`` first, or async hooks are cancelled with it.
        """
        self.counters.record(assessment.category, assessment.level, self.clock())
        if not self.hooks:
            return
        event = self._event(thread_id, assessment, text)
        loop = asyncio.get_running_loop()
        for hook in self.hooks:
            # sync hooks start now, in their own thread, so they run even if this loop closes right after
            started = None if _is_async(hook) else _start_thread(hook, event)
            task = loop.create_task(self._supervise(hook, event, started))
            self._background.add(task)  # a strong reference until it ends
            task.add_done_callback(self._background.discard)

    async def adrain_hooks(self) -> None:
        """Wait for the hooks started so far on this loop to end or time out (for tests and orderly shutdown)."""
        loop = asyncio.get_running_loop()
        while mine := [task for task in self._background if task.get_loop() is loop]:
            await asyncio.gather(*mine, return_exceptions=True)

    async def _supervise(self, hook: EscalationHook, event: EscalationEvent, started: Future[Any] | None = None) -> None:
        """Wait for one hook within ``hook_timeout``; log a failure or a timeout, never raise."""
        name = getattr(hook, "__name__", repr(hook))
        try:
            if _is_async(hook):
                await asyncio.wait_for(hook(event), self.hook_timeout)
            else:
                future = started if started is not None else _start_thread(hook, event)
                result = await asyncio.wait_for(asyncio.wrap_future(future), self.hook_timeout)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, self.hook_timeout)
        except TimeoutError:
            log.error("mesa.safety: escalation hook %s took over %ss; abandoned", name, self.hook_timeout)
        except Exception as exc:  # noqa: BLE001 - a hook must never break the crisis protocol
            log.error("mesa.safety: escalation hook %s failed: %s: %s", name, type(exc).__name__, exc)

    def escalate(self, thread_id: str | None, assessment: SafetyAssessment, text: str) -> None:
        """Sync twin of :meth:`aescalate` (returns at once; the hooks run on mesa's shared loop thread)."""
        run_sync(self.aescalate(thread_id, assessment, text))

    # -- AI disclosure ------------------------------------------------------------------------------------

    def disclosure(
        self,
        turn_index: int,
        disclosed_at: int | None,
        disclosed_at_time: datetime | None = None,
        now: datetime | None = None,
    ) -> str | None:
        """The AI-disclosure sentence when it is due, else ``None``.

        Due on the first turn, then every ``disclosure_every`` turns, and whenever ``disclosure_interval``
        (3 hours by default) has passed since ``disclosed_at_time``, the time of the last disclosure.
        ``now`` defaults to the policy's clock.
        """
        if disclosed_at is None or turn_index == 0:
            return DISCLOSURE_TEXT
        if self.disclosure_every is not None and turn_index - disclosed_at >= self.disclosure_every:
            return DISCLOSURE_TEXT
        if self.disclosure_interval is not None and disclosed_at_time is not None:
            current = now or self.clock()
            if _aware(current) - _aware(disclosed_at_time) >= self.disclosure_interval:
                return DISCLOSURE_TEXT
        return None


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (so stored and injected times compare)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_async(hook: Any) -> bool:
    call = type(hook).__call__ if not inspect.isfunction(hook) and not inspect.ismethod(hook) else None
    return inspect.iscoroutinefunction(hook) or (call is not None and inspect.iscoroutinefunction(call))


def _start_thread(function: Callable[..., Any], *args: Any) -> Future[Any]:
    """Run ``function(*args)`` in a new daemon thread; its future holds the result or the exception.

    Not the loop's default executor: a call that never returns would hold one of its few threads
    for good and make ``asyncio.run`` wait for it at exit.
    """
    future: Future[Any] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            future.set_exception(exc)

    threading.Thread(target=run, name="mesa-safety-call", daemon=True).start()
    return future


def _model_timed_out(assessment: SafetyAssessment) -> bool:
    """The model already missed its deadline on this turn's judgement: a crisis reply does not wait on it twice."""
    return "llm:timeout" in assessment.sources


def _moderation_categories(response: Any) -> dict[str, Any]:
    """``{category: bool}`` from a LiteLLM/OpenAI moderation response."""
    results = getattr(response, "results", None)
    if results is None and isinstance(response, Mapping):
        results = response.get("results")
    if not results:
        return {}
    first = results[0]
    categories = getattr(first, "categories", None)
    if categories is None and isinstance(first, Mapping):
        categories = first.get("categories")
    if categories is None:
        return {}
    if hasattr(categories, "model_dump"):
        categories = categories.model_dump(by_alias=True)
    elif not isinstance(categories, Mapping):
        categories = dict(vars(categories))
    return {str(k): v for k, v in dict(categories).items()}
