"""Map a backend's emotion labels onto the active taxonomy, where they correspond.

Backends speak their own label sets (FER-2013: angry, disgust, fear, happy,
sad, surprise, neutral; text models: joy, sadness, anger, love, ...). A
backend label maps onto a taxonomy label when the names match (ignoring case)
or when both belong to the same emotion family below. Labels with no
counterpart (e.g. "surprise" in MESC) are left out of the mapped distribution;
their mass is reported as ``unmapped``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mesa.taxonomy import Taxonomy

__all__ = ["EMOTION_FAMILIES", "map_to_taxonomy"]

EMOTION_FAMILIES: dict[str, frozenset[str]] = {
    "anger": frozenset({"anger", "angry", "annoyance", "annoyed", "rage", "frustration", "frustrated", "ang"}),
    "disgust": frozenset({"disgust", "disgusted", "contempt", "dis"}),
    "fear": frozenset({"fear", "fearful", "afraid", "scared", "terror", "fea"}),
    "anxiety": frozenset({"anxiety", "anxious", "worry", "worried", "nervousness", "nervous"}),
    "joy": frozenset({"joy", "happy", "happiness", "joyful", "amusement", "excitement", "hap", "pleased"}),
    "sadness": frozenset({"sadness", "sad", "grief", "sorrow", "disappointment", "sad_", "unhappy"}),
    "neutral": frozenset({"neutral", "neu", "calm", "none", "no emotion"}),
    "surprise": frozenset({"surprise", "surprised", "sur"}),
    "depression": frozenset({"depression", "depressed", "hopeless"}),
    "love": frozenset({"love", "caring", "affection"}),
    "shame": frozenset({"shame", "embarrassment", "ashamed"}),
    "guilt": frozenset({"guilt", "remorse", "guilty"}),
}


def _family(label: str) -> str | None:
    key = " ".join(label.replace("_", " ").split()).casefold()
    for family, words in EMOTION_FAMILIES.items():
        if key in words or key == family:
            return family
    return None


def map_to_taxonomy(scores: Mapping[str, float], taxonomy: Taxonomy) -> dict[str, object]:
    """``{"labels": {taxonomy label: score}, "mapping": {backend label: taxonomy label}, "unmapped": mass}``.

    Several backend labels mapping to one taxonomy label add up.
    """
    targets = taxonomy.names("user_emotion")
    by_name = {name.casefold(): name for name in targets}
    by_family: dict[str, str] = {}
    for name in targets:
        family = _family(name)
        if family is not None:
            by_family.setdefault(family, name)
    mapped: dict[str, float] = {}
    mapping: dict[str, str] = {}
    unmapped = 0.0
    for label, score in scores.items():
        target = by_name.get(label.casefold())
        if target is None:
            family = _family(label)
            target = by_family.get(family) if family else None
        if target is None:
            unmapped += float(score)
            continue
        mapping[label] = target
        mapped[target] = mapped.get(target, 0.0) + float(score)
    labels = {name: round(mapped[name], 4) for name in targets if name in mapped}
    return {"taxonomy": taxonomy.name, "labels": labels, "mapping": mapping, "unmapped": round(unmapped, 4)}
