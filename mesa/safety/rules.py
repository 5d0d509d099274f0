"""The rule layer: deterministic, high-recall risk detection on one message.

:func:`assess_rules` normalises the text (case, apostrophes, shorthand,
leetspeak, misspellings, stretched letters), masks figures of speech ("this
exam is killing me"), runs every :class:`~mesa.safety.patterns.RiskPattern`,
and checks each match's context (negation, subject, distant past, fiction or
quoted speech, hyperbole, safe look-alikes, a joke the writer says was not
meant). A match that fails a check becomes ``low`` evidence:
it is kept as a signal but never makes a crisis on its own.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from mesa.safety import patterns as P
from mesa.safety.patterns import RiskPattern
from mesa.safety.textfold import fold
from mesa.state import RISK_LEVELS, SafetyAssessment

__all__ = ["LEVELS", "Finding", "RuleEngine", "assess_rules", "normalize", "to_pattern"]

LEVELS = RISK_LEVELS  # lowest first
_RANK = {name: i for i, name in enumerate(LEVELS)}
_CATEGORY_PRIORITY = {"suicide": 0, "self_harm": 1, "harm_to_others": 2, "abuse": 3, "other": 4, "none": 5}

_TOKEN = re.compile(r"[a-z0-9$@*'/_-]+")
_RUN3 = re.compile(r"([a-z])\1{2,}")
_LETTER = re.compile(r"[a-z]")
_CLAUSE_BREAK = re.compile(r"[.!?;:,\n()]|\s-\s|\s—\s|\b(?:but|and|because|so|although|though|however|yet|or)\b")
_SENTENCE_BREAK = re.compile(r"[.!?;\n]|\bbut\b|\bhowever\b")
_CONTEXT_REACH = 400
"""How far (characters) a match's clause and sentence may reach each way: keeps context checks constant-time
per match, so the rule layer is linear in the text however long a sentence runs."""
_TOLD_TIME = re.compile(r"\b(?:at (?:the )?(?:age (?:of )?)?(\d{1,2})(?! ?(?:am|pm|o'?clock|:))|aged? (\d{1,2})|in (?:year|grade|form) (\d{1,2})|in (?:my )?(\d{1,2})(?:st|nd|rd|th) (?:class|grade|standard))\b")
_NOW_TIME = re.compile(r"\b(?:i'm|i am) (?:only |just |now )?(\d{1,2})\b(?! ?(?:years? ago|mins?|minutes|hours|am|pm))|\b(?:i'm|i am) (?:\w+ ){0,2}in (?:my )?(?:(?:year|grade|form) (\d{1,2})|(\d{1,2})(?:st|nd|rd|th) (?:class|grade|standard))\b")
_DENIED_BEFORE = re.compile(r"\b(?:not|no|isn't|wasn't|ain't|never)\b[^.!?]{0,12}$")
_QUOTED = re.compile(r"\"[^\"]{2,400}\"|(?:(?<=\s)|^)'[^']{3,300}'(?=[\s.,!?]|$)")


def _rank(level: str) -> int:
    return _RANK.get(level, 0)


def _damerau(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment), stopping early past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


_KNOWN_NEAR_MISSES = {"himself", "herself", "itself", "oneself", "thyself", "yourself", "suicides", "overdoses", "overdosed"}


@lru_cache(maxsize=4096)
def _fix_token(token: str) -> str:
    if token in P.SPELLING:
        return P.SPELLING[token]
    word = token
    # leetspeak: only for tokens mixing letters with digits/symbols ("k1ll", "$uicide", "d!e")
    if _LETTER.search(word) and re.search(r"[0-9$@]", word) and not re.fullmatch(r"\d+[a-z]{1,2}", word):
        word = word.translate(P.LEET)
    # censored words: "s*icide", "k*ll"
    if "*" in word:
        pattern = re.compile("^" + re.escape(word).replace(r"\*", "[a-z]") + "$")
        for target in ("suicide", "suicidal", "kill", "myself", "die", "dead", "overdose", "self-harm"):
            if pattern.match(target):
                return target
    # stretched letters: "diiiie" -> "die", "killlll" -> "kill"
    if _RUN3.search(word):
        squeezed = _RUN3.sub(r"\1", word)
        doubled = _RUN3.sub(r"\1\1", word)
        for candidate in (squeezed, doubled):
            if candidate in P.SPELLING:
                return P.SPELLING[candidate]
        word = doubled if doubled in ("kill", "killing", "killed", "free", "feel", "sorry", "need") else squeezed
    if word in P.SPELLING:
        return P.SPELLING[word]
    # small edit distance to the key words
    if len(word) >= 5 and word not in _KNOWN_NEAR_MISSES and word not in P.FUZZY_TARGETS:
        best: tuple[int, str] | None = None
        for target in P.FUZZY_TARGETS:
            limit = 1 if len(target) <= 6 else 2
            if word[0] == target[0]:
                distance = _damerau(word, target, limit)
                if distance <= limit and (best is None or distance < best[0]):
                    best = (distance, target)
        if best:
            return best[1]
    return word


def normalize(text: str) -> str:
    """Fold look-alikes and spacing tricks, lower-case, straighten quotes, expand shorthand, repair key words.

    Linear in the length of the text; the last few results are cached because every layer of one turn
    normalises the same message.
    """
    return _normalize(text or "")


@lru_cache(maxsize=8)
def _normalize(text: str) -> str:
    text = fold(text)
    text = (
        text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").replace("\u00b4", "'")
        .replace("\u201c", '"').replace("\u201d", '"').replace("\u201e", '"').replace("\u00ab", '"').replace("\u00bb", '"')
    )
    text = text.lower()
    text = re.sub(r"\bmy\s+self\b", "myself", text)
    text = re.sub(r"\bun\s*-\s*alive", "unalive", text)
    text = re.sub(r"\bk\s*\.?\s*m\s*\.?\s*s\b\.?", "kms", text)
    text = re.sub(r"\bi\s+m\b", "i'm", text)
    text = re.sub(r"\b(want|wanna|need|going|have|got|ready|like|deserve|wish|hope|trying|try) 2\b", r"\1 to", text)
    text = re.sub(r"\bself\s*[-_ ]\s*harm", "self-harm", text)
    text = re.sub(r"\bsewer\s*[-_]?\s*slide", "sewer slide", text)
    text = re.sub(r"\bun\s*alive", "unalive", text)
    text = _TOKEN.sub(lambda m: _fix_token(m.group(0)), text)
    return re.sub(r"[ \t]+", " ", text).strip()


class _Breaks:
    """The positions of clause or sentence breaks in one text, found once, looked up by bisection."""

    def __init__(self, text: str, breaker: re.Pattern[str]) -> None:
        spans = [m.span() for m in breaker.finditer(text)]
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        self.length = len(text)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The clause/sentence around ``text[start:end]``, at most :data:`_CONTEXT_REACH` characters each way."""
        i = bisect.bisect_right(self.ends, start) - 1
        left = self.ends[i] if i >= 0 else 0
        j = bisect.bisect_left(self.starts, end)
        right = self.starts[j] if j < len(self.starts) else self.length
        return max(left, start - _CONTEXT_REACH), min(right, end + _CONTEXT_REACH)


class _Context:
    """What the context checks need of one message, computed once: break positions, quotes, message flags."""

    def __init__(self, masked: str, flags: dict[str, bool]) -> None:
        self.flags = flags
        self.clauses = _Breaks(masked, _CLAUSE_BREAK)
        self.sentences = _Breaks(masked, _SENTENCE_BREAK)
        spans = [m.span() for m in _QUOTED.finditer(masked)]  # non-overlapping, in order
        self._quote_starts = [a for a, _ in spans]
        self._quote_ends = [b for _, b in spans]
        self._once: dict[str, bool] = {}

    def once(self, key: str, compute: Callable[[], bool]) -> bool:
        """A whole-message check, computed at its first use and kept (so a message with many matches is read once)."""
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    def quoted(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` lies inside one quotation."""
        i = bisect.bisect_right(self._quote_starts, start) - 1
        return i >= 0 and end <= self._quote_ends[i]


@dataclass(frozen=True)
class Finding:
    """One rule match and what the context checks made of it."""

    pattern: str
    category: str
    level: str
    snippet: str
    reason: str | None = None  # why it was downgraded to "low", if it was

    def as_evidence(self) -> str:
        note = f" ({self.reason})" if self.reason else ""
        return f"rules:{self.pattern}{note}: \"{self.snippet}\""


def to_pattern(spec: RiskPattern | str | Sequence[str], index: int = 0) -> RiskPattern:
    """A :class:`RiskPattern` from a user's ``extra_patterns`` entry.

    Accepted: a ``RiskPattern``; a regular expression string (category ``"other"``,
    level ``"elevated"``); a tuple ``(regex, category)`` or ``(regex, category, level)``.
    """
    if isinstance(spec, RiskPattern):
        pattern = spec
    elif isinstance(spec, str):
        pattern = RiskPattern(f"custom_{index}", spec, "other")
    else:
        parts = list(spec)
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"extra pattern {spec!r}: expected (regex, category[, level])")
        regex, category, level = (parts + ["other", "elevated"][len(parts) - 1 :])[:3]
        pattern = RiskPattern(f"custom_{index}", regex, category, level)
    if pattern.category not in _CATEGORY_PRIORITY:
        raise ValueError(f"extra pattern {pattern.id}: unknown category {pattern.category!r}")
    if pattern.level not in _RANK or pattern.level == "none":
        raise ValueError(f"extra pattern {pattern.id}: level must be low, elevated or imminent")
    re.compile(pattern.regex)
    return pattern


class RuleEngine:
    """The compiled rule layer. ``RuleEngine().assess(text)`` → :class:`SafetyAssessment`."""

    def __init__(self, extra_patterns: Iterable[RiskPattern | str | Sequence[str]] = ()) -> None:
        extra = [to_pattern(spec, i) for i, spec in enumerate(extra_patterns)]
        self.patterns: tuple[RiskPattern, ...] = tuple(extra) + P.PATTERNS
        self._compiled = [(p, re.compile(p.regex)) for p in self.patterns]
        self._idioms = re.compile("|".join(f"(?:{x})" for x in P.IDIOMS))
        self._negator = re.compile(P.NEGATORS + r"$")
        self._fillers = frozenset(P.NEGATION_FILLERS)
        self._past = re.compile(P.DISTANT_PAST)
        self._again = re.compile(P.PRESENT_AGAIN)
        self._past_intent = re.compile(P.PAST_INTENT)
        self._past_verb = re.compile(P.PAST_VERB)
        self._story_past = re.compile(P.STORY_PAST)
        self._recovered = re.compile(P.RECOVERED)
        self._recent = re.compile(P.RECENT)
        self._lookalikes = {
            pattern_id: tuple((re.compile(says), re.compile(context_says), scope) for says, context_says, scope in checks)
            for pattern_id, checks in P.LOOKALIKES.items()
        }
        self._fiction = re.compile(P.FICTION)
        self._reported = re.compile(P.REPORTED_SPEECH)
        self._subject = re.compile(f"(?P<first>{P.FIRST_PERSON_SUBJECT})|(?P<third>{P.THIRD_PARTY_SUBJECT})")
        self._hyperbole = re.compile(P.HYPERBOLE)
        self._imminence = re.compile(P.IMMINENCE)
        self._reality = re.compile(P.REALITY)
        self._not_serious = re.compile(P.NOT_SERIOUS)
        self._not_serious_undone = re.compile(P.NOT_SERIOUS_UNDONE)

    # -- context -----------------------------------------------------------------------------------

    def _speaker_is_subject(self, prefix: str, snippet: str) -> bool:
        """The match is about the writer: it names them ("myself", "my life") or the clause's last subject is "I"."""
        if re.search(r"\b(?:myself|my (?:own )?life|i|i'm|i'll|me)\b", snippet):
            return True
        last = None
        for m in self._subject.finditer(prefix):
            last = m
        return bool(last and last.group("first"))

    def _frame_cancels(self, prefix: str, snippet: str, sentence: str, message: str) -> bool:
        """A fiction/hypothetical/"for a friend" frame cancels a match, unless the writer's own plan, means or
        time shows through it (a first-person match with a time, means or plan, or a "for real" marker)."""
        if not self._fiction.search(sentence):
            return False
        if not self._speaker_is_subject(prefix, snippet):
            return True
        return not (self._imminence.search(sentence) or self._reality.search(message))

    def _past_story(self, prefix: str, snippet: str, sentence: str, message: str, context: _Context) -> bool:
        """A match told as the writer's own past: a past verb in its clause, no recent time in its sentence, and
        either a time of life that is over in the sentence ("at 15", "a few years back") or, in the message, a time
        that is over and the writer saying they are safe now ("that was 2019 ... i'm well now")."""
        if not self._past_verb.search(" ".join(f"{prefix} {snippet}".split())) or self._recent.search(sentence):
            return False
        if context.once("in that time now", lambda: self._still_in_that_time(message)):
            return False
        if self._story_past.search(sentence):
            return True
        return context.once("told as over", lambda: bool(
            (self._past.search(message) or self._story_past.search(message)) and self._recovered.search(message)))

    @staticmethod
    def _still_in_that_time(message: str) -> bool:
        """The writer is now at the age or in the school year the story names ("i took an overdose at 15. i'm 15"):
        the story is not over."""
        told = {int(n) for m in _TOLD_TIME.finditer(message) for n in m.groups() if n}
        now = {int(n) for m in _NOW_TIME.finditer(message) for n in m.groups() if n}
        return bool(told & now)

    @staticmethod
    def _said_plainly(regex: re.Pattern[str], text: str) -> bool:
        """``regex`` occurs in ``text`` and is not denied just before ("not for a swing")."""
        return any(not _DENIED_BEFORE.search(text[max(0, m.start() - 16) : m.start()]) for m in regex.finditer(text))

    def _negated(self, prefix: str) -> bool:
        words = prefix.split()
        for word in reversed(words):
            if self._negator.search(word):
                return True
            if word.strip(",") not in self._fillers:
                return False
        return False

    def _third_person(self, prefix: str, snippet: str) -> bool:
        if re.match(r"(?:i|i'm|i've|i'll|i'd|i am)\b", snippet):  # the match names its own subject: the writer
            return False
        if re.match(r"(?:wants|needs|plans|tries|wishes|deserves|hopes|thinks|is|was|has|does)\b", snippet):
            head = self._subject.findall(prefix)
            return not head or not head[-1][0]
        last = None
        for m in self._subject.finditer(prefix):
            last = m
        return bool(last and last.group("third"))

    def _check(self, pattern: RiskPattern, masked: str, match: re.Match[str], context: _Context) -> str | None:
        """Why this match does not count (``None``: it counts)."""
        start, end = match.span()
        message_flags = context.flags
        c_start, _ = context.clauses.span(start, end)
        s_start, s_end = context.sentences.span(start, end)
        prefix = masked[c_start:start]
        sentence = masked[s_start:s_end]
        snippet = match.group(0).strip()
        if pattern.negatable and self._negated(prefix):
            return "negated"
        if pattern.first_person and self._third_person(prefix, snippet):
            return "not about the speaker"
        if re.search(r"\b(?:told|tell|tells|telling|said|says|asked|want|wants|wanted|make|makes|made) (?:me|you) to\s*$", prefix) and pattern.category in ("suicide", "self_harm"):
            return "someone else's words"
        if pattern.fiction_sensitive:
            if message_flags["reported"] and context.quoted(start, end):
                return "quoted"
            if pattern.level != "imminent" and self._frame_cancels(prefix, snippet, sentence, masked):
                return "fiction or hypothetical"
        if pattern.past_sensitive and not message_flags["again"]:
            if self._past.search(sentence):
                return "past"
            if pattern.category == "harm_to_others" and self._past_intent.search(snippet):
                return "past"
            if pattern.category in ("suicide", "self_harm") and self._past_intent.search(snippet) and re.search(r"\b(?:when|then|that (?:day|night|time|year)|before)\b", sentence):
                return "past"
            if self._past_story(prefix, snippet, sentence, masked, context):
                return "past"
        for says, context_says, scope in self._lookalikes.get(pattern.id, ()):
            if not says.search(snippet):
                continue
            if scope == "sentence":
                plain = self._said_plainly(context_says, sentence)
            else:
                plain = context.once(context_says.pattern, lambda regex=context_says: self._said_plainly(regex, masked))
            if plain:
                return "a safe look-alike"
        if pattern.level != "imminent" and pattern.category in ("suicide", "self_harm", "harm_to_others"):
            after = masked[end : end + 90]
            said = self._not_serious.search(after)
            if said and not self._not_serious_undone.search(after[max(0, said.start() - 12) : said.end() + 30]) and not context.once(
                    "real or planned", lambda: bool(self._reality.search(masked) or self._imminence.search(masked))):
                return "not meant"
        if pattern.category == "harm_to_others" and pattern.level != "imminent" and message_flags["hyperbole"]:
            return "hyperbole"
        return None

    # -- public --------------------------------------------------------------------------------------

    def in_fiction(self, normalized: str, start: int, end: int) -> bool:
        """Whether ``normalized[start:end]`` (a span of :func:`normalize`'d text) sits in a sentence about
        fiction, games or hypotheticals."""
        s_start, s_end = _Breaks(normalized, _SENTENCE_BREAK).span(start, end)
        return self._fiction.search(normalized[s_start:s_end]) is not None

    def _masked(self, text: str) -> str:
        """The normalised text with figures of speech blanked out (same length, so positions hold)."""
        return self._idioms.sub(lambda m: "_" * len(m.group(0)), normalize(text))

    def findings(self, text: str) -> list[Finding]:
        """Every rule match in ``text`` with the outcome of its context checks."""
        return self._findings(self._masked(text))

    def _findings(self, masked: str) -> list[Finding]:
        flags = {
            "again": bool(self._again.search(masked)),
            "reported": bool(self._reported.search(masked) or self._fiction.search(masked)),
            "hyperbole": bool(self._hyperbole.search(masked)),
        }
        context = _Context(masked, flags)
        found: list[Finding] = []
        seen: set[tuple[str, int]] = set()
        for pattern, regex in self._compiled:
            for match in regex.finditer(masked):
                if not match.group(0).strip() or (pattern.id, match.start()) in seen:
                    continue
                seen.add((pattern.id, match.start()))
                reason = None if pattern.level == "low" else self._check(pattern, masked, match, context)
                level = "low" if reason else pattern.level
                found.append(Finding(pattern.id, pattern.category, level, match.group(0).strip()[:120], reason))
        return found

    def assess(self, text: str) -> SafetyAssessment:
        """The rule layer's assessment of one message."""
        masked = self._masked(text)
        found = self._findings(masked)
        if not found:
            return SafetyAssessment(level="none", category="none", evidence=[], sources=["rules"])
        if any(f.level == "elevated" and f.category in ("suicide", "self_harm", "harm_to_others") for f in found):
            means = self._imminence.search(masked)
            if means:
                found = [
                    Finding(f.pattern, f.category, "imminent", f.snippet, None)
                    if f.level == "elevated" and f.category in ("suicide", "self_harm", "harm_to_others") else f
                    for f in found
                ]
                found.append(Finding("imminence", found[0].category, "low", means.group(0)))
        found.sort(key=lambda f: (-_rank(f.level), _CATEGORY_PRIORITY.get(f.category, 9)))
        top = found[0]
        evidence: list[str] = []
        for f in found:
            line = f.as_evidence()
            if line not in evidence:
                evidence.append(line)
        return SafetyAssessment(level=top.level, category=top.category, evidence=evidence[:6], sources=["rules"])


@lru_cache(maxsize=1)
def _default_engine() -> RuleEngine:
    return RuleEngine()


def assess_rules(text: str, extra_patterns: Iterable[RiskPattern | str | Sequence[str]] = ()) -> SafetyAssessment:
    """The pure rule layer on one message (no model, no history)."""
    extra = tuple(extra_patterns)
    engine = RuleEngine(extra) if extra else _default_engine()
    return engine.assess(text)
