"""Label sets with definitions: MESC, ESConv and user-defined taxonomies.

A :class:`Taxonomy` names three label sets: the user's emotions, the support
strategies and the system's own emotions. Every predicted label is checked
against the active taxonomy by the output type itself
(:meth:`Taxonomy.label_type` builds a ``Literal`` of the labels), so a label
outside the set can never enter the graph state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ESCONV",
    "MESC",
    "Label",
    "SystemEmotionRule",
    "Taxonomy",
    "get_taxonomy",
    "register_system_emotion_rule",
    "register_taxonomy",
    "system_emotion_rule",
    "taxonomy_names",
]

LabelSetName = Literal["user_emotion", "strategy", "system_emotion"]
"""The three label sets of a taxonomy (and the three label steps), declared once."""
LABEL_SETS: tuple[LabelSetName, ...] = get_args(LabelSetName)


class Label(BaseModel):
    """One label and the definition the prompts show the model."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    definition: str = ""


def _labels(items: Iterable[Label | str | tuple[str, str]] | Mapping[str, str]) -> tuple[Label, ...]:
    if isinstance(items, Mapping):
        items = list(items.items())
    out = []
    for item in items:
        if isinstance(item, Label):
            out.append(item)
        elif isinstance(item, str):
            out.append(Label(name=item))
        else:
            name, definition = item
            out.append(Label(name=name, definition=definition))
    return tuple(out)


class Taxonomy(BaseModel):
    """The three label sets of an emotional-support corpus.

    Build a custom one with :meth:`Taxonomy.custom`, or take a built-in one by
    name with :func:`get_taxonomy` (``"mesc"``, ``"esconv"``).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    user_emotions: tuple[Label, ...]
    strategies: tuple[Label, ...]
    system_emotions: tuple[Label, ...]

    @model_validator(mode="after")
    def _check_sets(self) -> Taxonomy:
        for set_name in ("user_emotions", "strategies", "system_emotions"):
            labels = getattr(self, set_name)
            if not labels:
                raise ValueError(f"taxonomy {self.name!r}: {set_name} is empty")
            names = [label.name for label in labels]
            if len(set(names)) != len(names):
                raise ValueError(f"taxonomy {self.name!r}: {set_name} has duplicate labels")
        return self

    @classmethod
    def custom(
        cls,
        name: str,
        *,
        user_emotions: Iterable[Label | str | tuple[str, str]] | Mapping[str, str],
        strategies: Iterable[Label | str | tuple[str, str]] | Mapping[str, str],
        system_emotions: Iterable[Label | str | tuple[str, str]] | Mapping[str, str] | None = None,
    ) -> Taxonomy:
        """A user-defined taxonomy; labels given as names, ``(name, definition)`` pairs or a mapping.

        ``system_emotions`` defaults to the user emotions.
        """
        users = _labels(user_emotions)
        return cls(
            name=name,
            user_emotions=users,
            strategies=_labels(strategies),
            system_emotions=_labels(system_emotions) if system_emotions is not None else users,
        )

    def labels(self, which: LabelSetName) -> tuple[Label, ...]:
        """The labels of one set: ``"user_emotion"``, ``"strategy"`` or ``"system_emotion"``."""
        return {
            "user_emotion": self.user_emotions,
            "strategy": self.strategies,
            "system_emotion": self.system_emotions,
        }[which]

    def names(self, which: LabelSetName) -> list[str]:
        """The label names of one set, in taxonomy order."""
        return [label.name for label in self.labels(which)]

    def label_type(self, which: LabelSetName) -> type:
        """A ``Literal[...]`` of one set's names, for a Pydantic field that rejects anything else."""
        return Literal[tuple(self.names(which))]  # type: ignore[return-value]

    def normalize(self, which: LabelSetName, value: str) -> str | None:
        """The label that ``value`` names, ignoring case and spacing; ``None`` when none does."""
        wanted = " ".join(value.split()).casefold()
        for name in self.names(which):
            if name.casefold() == wanted:
                return name
        return None

    def describe(self, which: LabelSetName) -> str:
        """A bullet list of one set's labels with their definitions, for prompts."""
        lines = []
        for label in self.labels(which):
            lines.append(f"- {label.name}: {label.definition}" if label.definition else f"- {label.name}")
        return "\n".join(lines)


_EMOTIONS_7 = (
    Label(name="neutral", definition="no marked emotion; calm, matter-of-fact"),
    Label(name="depression", definition="hopelessness, emptiness, low mood, exhaustion, feeling worthless"),
    Label(name="anger", definition="irritation, frustration, resentment, hostility"),
    Label(name="disgust", definition="revulsion, contempt, strong disapproval"),
    Label(name="joy", definition="happiness, relief, pleasure, amusement"),
    Label(name="sadness", definition="sorrow, grief, disappointment, hurt"),
    Label(name="fear", definition="worry, anxiety, dread, feeling threatened"),
)

# The counsellor's own emotion: the same seven names, defined for the one who speaks. MESC's therapists
# are neutral in 97.8 % of their turns; a counsellor does not mirror a client's fear or despair.
_COUNSELLOR_EMOTIONS = (
    Label(
        name="neutral",
        definition="the counsellor's usual tone: calm, warm, attentive (97.8 % of MESC therapist turns); "
        "the right choice unless the reply itself plainly expresses another emotion",
    ),
    Label(name="depression", definition="almost never a counsellor's own emotion; do not mirror the user's despair"),
    Label(name="anger", definition="rare: indignation on the user's behalf at a clear wrong done to them"),
    Label(name="disgust", definition="almost never a counsellor's own emotion"),
    Label(name="joy", definition="sharing the user's good news or relief, congratulating"),
    Label(name="sadness", definition="rare: sharing sorrow about a loss the user told of"),
    Label(name="fear", definition="almost never a counsellor's own emotion; do not mirror the user's anxiety"),
)

MESC = Taxonomy(
    name="mesc",
    user_emotions=_EMOTIONS_7,
    strategies=_labels(
        [
            ("Open question", "invites detailed answers with no preset options; encourages self-reflection"),
            ("Approval", "positive recognition or acceptance of the client or their actions; affirms self-worth, acknowledges emotions"),
            ("Self-disclosure", "the therapist reveals own feelings, thoughts or experiences"),
            ("Restatement", "rephrases the client's statements to check understanding and show concern"),
            ("Interpretation", "helps the client see deeper meanings or subconscious factors behind behaviour, feelings, thoughts or dreams"),
            ("Communication Skills", "small talk, simple phrases, listening cues that build a positive atmosphere"),
            ("Advisement", "guidance, advice or possible solutions"),
            ("Structuring the therapy", "sets goals, duration, activities, rules of the therapy"),
            ("Guiding the Pace and Depth of the Conversation", "regulates pace and depth, e.g. shifts topic when the client is unstable, brings the talk back to key themes"),
            ("Others", "anything else"),
        ]
    ),
    system_emotions=_COUNSELLOR_EMOTIONS,
)
"""MESC (Chu et al. 2024): 7 emotions for user and system, 10 therapist strategies."""

ESCONV = Taxonomy(
    name="esconv",
    user_emotions=_labels(
        [
            ("anxiety", "worry and unease about what may happen"),
            ("depression", "persistent low mood, hopelessness, loss of interest"),
            ("sadness", "sorrow, grief, disappointment"),
            ("anger", "irritation, frustration, resentment"),
            ("fear", "feeling threatened or in danger"),
            ("shame", "feeling exposed, humiliated or unworthy"),
            ("disgust", "revulsion or strong disapproval"),
            ("nervousness", "tension and jitteriness before something"),
            ("guilt", "feeling responsible for a wrong"),
            ("jealousy", "resentment of someone's advantage or fear of losing someone"),
            ("pain", "emotional hurt or suffering"),
        ]
    ),
    strategies=_labels(
        [
            ("Question", "asks for information related to the problem to help the seeker articulate it"),
            ("Restatement or Paraphrasing", "a simple, more concise rephrasing of the seeker's statements"),
            ("Reflection of feelings", "articulates and describes the seeker's feelings"),
            ("Self-disclosure", "shares similar experiences or emotions of the supporter to express empathy"),
            ("Affirmation and Reassurance", "affirms the seeker's strengths, motivation and capabilities and provides reassurance"),
            ("Providing Suggestions", "suggests ways forward, careful not to overstep"),
            ("Information", "provides useful information, e.g. data, facts, opinions, resources"),
            ("Others", "exchanges pleasantries and uses other support strategies"),
        ]
    ),
    system_emotions=_COUNSELLOR_EMOTIONS,
)
"""ESConv (Liu et al. 2021): 8 strategies, 11 conversation-level emotions; system emotions as MESC."""

_REGISTRY: dict[str, Taxonomy] = {"mesc": MESC, "esconv": ESCONV}


class SystemEmotionRule(BaseModel):
    """How the counsellor's own emotion is settled after a model proposed one.

    A model (an LLM, even a small classifier) proposes a label; a counsellor's stance is
    ``default`` unless the proposal is confident (``min_confidence``) and the label is one
    counsellors of the corpus actually show (``base_rates[label] >= min_base_rate``). So
    a tiny model that mirrors a user's fear or despair does not make the counsellor
    fearful or despairing, and a capable model can still share a user's joy.
    """

    model_config = ConfigDict(frozen=True)

    default: str = "neutral"
    base_rates: dict[str, float] = Field(default_factory=dict)
    min_confidence: float = Field(default=0.9, ge=0.0, le=1.0)
    min_base_rate: float = Field(default=0.005, ge=0.0, le=1.0)

    def settle(self, label: str, confidence: float | None) -> tuple[str, str | None]:
        """The label to keep and, when the proposal was overruled, why (``None`` when kept)."""
        if label == self.default:
            return label, None
        rate = self.base_rates.get(label, 0.0)
        if rate < self.min_base_rate:
            return self.default, f"{label!r} is {rate:.2%} of counsellor turns; the counsellor stays {self.default}"
        if confidence is None or confidence < self.min_confidence:
            shown = "no confidence" if confidence is None else f"confidence {confidence:.2f}"
            return self.default, f"{label!r} proposed with {shown} (< {self.min_confidence}); stays {self.default}"
        return label, None


# MESC's therapist emotions over all 10,326 therapist utterances (the dataset's counts). ESConv has
# no system-emotion annotation; its supporters are counsellors too, so MESC's shares stand in.
_COUNSELLOR_BASE_RATES = {
    "neutral": 10099 / 10326,
    "anger": 98 / 10326,
    "joy": 57 / 10326,
    "sadness": 56 / 10326,
    "depression": 12 / 10326,
    "fear": 2 / 10326,
    "disgust": 2 / 10326,
}
_COUNSELLOR_RULE = SystemEmotionRule(default="neutral", base_rates=_COUNSELLOR_BASE_RATES)
_RULES: dict[str, SystemEmotionRule] = {"mesc": _COUNSELLOR_RULE, "esconv": _COUNSELLOR_RULE}


def system_emotion_rule(taxonomy: Taxonomy | str) -> SystemEmotionRule | None:
    """The rule that settles the counsellor's emotion for ``taxonomy`` (``None``: the model's label stands)."""
    name = taxonomy.name if isinstance(taxonomy, Taxonomy) else taxonomy
    return _RULES.get(name.lower())


def register_system_emotion_rule(taxonomy: Taxonomy | str, rule: SystemEmotionRule | None) -> None:
    """Set (or with ``None`` remove) the system-emotion rule of a taxonomy, by its name."""
    name = (taxonomy.name if isinstance(taxonomy, Taxonomy) else taxonomy).lower()
    if rule is None:
        _RULES.pop(name, None)
    else:
        _RULES[name] = rule


def register_taxonomy(taxonomy: Taxonomy, *, replace: bool = False) -> None:
    """Make a taxonomy available by name (for ``get_taxonomy`` and ``--taxonomy``)."""
    key = taxonomy.name.lower()
    if key in _REGISTRY and not replace:
        raise ValueError(f"a taxonomy named {taxonomy.name!r} is already registered (pass replace=True)")
    _REGISTRY[key] = taxonomy


def taxonomy_names() -> list[str]:
    """Names of the registered taxonomies."""
    return sorted(_REGISTRY)


def get_taxonomy(name_or_taxonomy: str | Taxonomy) -> Taxonomy:
    """A taxonomy by registered name (case-insensitive), or the taxonomy itself.

    A path to a JSON file with the fields of :class:`Taxonomy` also works.
    """
    if isinstance(name_or_taxonomy, Taxonomy):
        return name_or_taxonomy
    key = name_or_taxonomy.lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key.endswith(".json"):
        from pathlib import Path

        return Taxonomy.model_validate_json(Path(name_or_taxonomy).read_text(encoding="utf-8"))
    raise KeyError(f"unknown taxonomy {name_or_taxonomy!r}; known: {', '.join(taxonomy_names())}")
