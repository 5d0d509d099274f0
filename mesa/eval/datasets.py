"""Dataset loaders: MESC, ESConv and a user's own corpus, as turn-level examples.

Every loader returns :class:`Example` objects, one per system (therapist /
supporter) turn that has at least one user turn before it:

- ``text`` is the last user utterance before the system turn and ``history``
  the rest of the dialogue before the system turn, in order (when the system
  speaks several times in a row, the earlier system utterances stay in the
  history after the user's turn, so nothing the agent could know is lost);
- the gold labels are the last user turn's emotion (``user_emotion``), the
  system turn's ``strategy`` and ``system_emotion``, and its text (``reply``).

ESConv has only a conversation-level ``emotion_type``: it is the user emotion of
every turn of that conversation, and ESConv has no system emotion (``None``).

Layouts understood (:func:`load_dialogues` sniffs them):

- MESC CSV (``mesc_train_val.csv`` / ``MESC.csv``): one utterance per row,
  ``Utterance,Speaker,Emotion,Strategy,Dialogue_ID,Utterance_ID,...[,split]``;
- dialogue JSON: a JSON list or JSONL of ``{"dialog": [{"text", "speaker",
  "emotion"?, "strategy"?}], "emotion_type"?, "problem_type"?, "situation"?}``
  (MESC ``val.json``, ESConv ``train.jsonl``/``valid.jsonl``, your own corpus);
- the original ``ESConv.json``: ``{"dialog": [{"speaker": "seeker"|"supporter",
  "content", "annotation": {"strategy"}}], ...}``.

MESC's JSON texts carry machine-written audio/video "emotion clues" after the
utterance; :func:`split_clues` separates them into :attr:`mesa.state.Message.clues`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mesa.state import Message
from mesa.taxonomy import ESCONV, MESC, Taxonomy, get_taxonomy

__all__ = [
    "Dialogue",
    "Example",
    "Utterance",
    "dialogues_to_examples",
    "download",
    "esconv_split",
    "load_corpus",
    "load_dialogues",
    "load_esconv",
    "load_mesc",
    "split_clues",
    "taxonomy_from_examples",
]

CorpusName = Literal["mesc", "esconv", "custom"]

USER_SPEAKERS = {"usr", "user", "seeker", "client", "patient", "human"}
SYSTEM_SPEAKERS = {"sys", "system", "supporter", "therapist", "assistant", "bot", "counselor"}

#: Public sources (downloaded on demand, cached under ``$MESA_CACHE_DIR/datasets``).
SOURCES: dict[str, str] = {
    "mesc/MESC.csv": "https://raw.githubusercontent.com/chuyq/MESC/main/MESC.csv",
    "mesc/train.json": "https://raw.githubusercontent.com/chuyq/MESC/main/train.json",
    "mesc/val.json": "https://raw.githubusercontent.com/chuyq/MESC/main/val.json",
    "mesc/test.json": "https://raw.githubusercontent.com/chuyq/MESC/main/test.json",
    "esconv/ESConv.json": "https://raw.githubusercontent.com/thu-coai/Emotional-Support-Conversation/main/ESConv.json",
}


class Utterance(BaseModel):
    """One utterance of a dialogue, speaker normalised to ``user`` / ``system``."""

    speaker: Literal["user", "system"]
    text: str
    emotion: str | None = None
    strategy: str | None = None
    clues: list[str] = Field(default_factory=list)
    emotion_from_dialogue: bool = Field(
        default=False,
        description="the emotion is the conversation-level label (ESConv), not an annotation of this utterance",
    )


class Dialogue(BaseModel):
    """A whole conversation."""

    id: str
    utterances: list[Utterance]
    split: str | None = None
    emotion_type: str | None = None
    problem_type: str | None = None
    situation: str | None = None


class Example(BaseModel):
    """One system turn to predict, with what came before it and the gold answers."""

    id: str
    corpus: str
    split: str | None = None
    dialogue_id: str
    turn_index: int = Field(description="index of the system utterance in its dialogue")
    text: str = Field(description="the last user utterance before the system turn")
    history: list[Message] = Field(default_factory=list, description="everything else before the system turn, in order")
    after_user: int = Field(
        default=0,
        description="how many of the last history messages came after `text` (earlier system utterances of this run)",
    )
    user_emotion: str | None = None
    strategy: str | None = None
    system_emotion: str | None = None
    reply: str = ""
    text_clues: list[str] = Field(default_factory=list)
    situation: str | None = None
    user_index: int | None = Field(default=None, description="index of the `text` utterance in its dialogue")
    history_index: list[int] = Field(
        default_factory=list, description="index in the dialogue of each history message (same order as `history`)"
    )

    def gold(self, which: str) -> str | None:
        """The gold label of ``user_emotion``, ``strategy`` or ``system_emotion``."""
        return getattr(self, which)


# --------------------------------------------------------------------------- helpers

_CLUE_START = re.compile(r"\s*(?=The speaker(?:'s)?\b)")


def split_clues(text: str) -> tuple[str, list[str]]:
    """Split a MESC JSON text into the utterance and its audio/video clue (``"The speaker ..."``)."""
    match = _CLUE_START.search(text)
    if not match or match.start() == 0 and not text[: match.start()].strip():
        if match and match.start() == 0:
            return "", [text.strip()]
        return text.strip(), []
    return text[: match.start()].strip(), [text[match.end() :].strip()]


def _speaker(value: str) -> Literal["user", "system"]:
    key = str(value).strip().casefold()
    if key in USER_SPEAKERS:
        return "user"
    if key in SYSTEM_SPEAKERS:
        return "system"
    raise ValueError(f"unknown speaker {value!r}; expected one of {sorted(USER_SPEAKERS | SYSTEM_SPEAKERS)}")


def _label(taxonomy: Taxonomy | None, which: str, value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text or text.casefold() in {"undefined", "none", "null", "nan", ""}:
        return None
    if taxonomy is not None:
        return taxonomy.normalize(which, text) or text  # type: ignore[arg-type]
    return text


# --------------------------------------------------------------------------- readers


def _read_mesc_csv(path: Path, taxonomy: Taxonomy | None) -> list[Dialogue]:
    by_id: dict[str, list[tuple[int, dict[str, str]]]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            by_id.setdefault(row["Dialogue_ID"], []).append((int(row.get("Utterance_ID") or 0), row))
    dialogues = []
    for dialogue_id, rows in by_id.items():
        rows.sort(key=lambda pair: pair[0])
        utterances = []
        for _, row in rows:
            speaker = _speaker(row["Speaker"])
            emotion_set = "user_emotion" if speaker == "user" else "system_emotion"
            utterances.append(
                Utterance(
                    speaker=speaker,
                    text=" ".join((row.get("Utterance") or "").split()),
                    emotion=_label(taxonomy, emotion_set, row.get("Emotion")),
                    strategy=_label(taxonomy, "strategy", row.get("Strategy")) if speaker == "system" else None,
                )
            )
        split = rows[0][1].get("split") or None
        dialogues.append(Dialogue(id=str(dialogue_id), utterances=utterances, split=split))
    return dialogues


def _read_json_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of dialogues")
        return data
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _dialogue_from_record(
    record: dict[str, Any], dialogue_id: str, split: str | None, taxonomy: Taxonomy | None, clues: bool
) -> Dialogue:
    conversation_emotion = _label(taxonomy, "user_emotion", record.get("emotion_type"))
    utterances = []
    for turn in record.get("dialog") or record.get("dialogue") or record.get("turns") or []:
        speaker = _speaker(turn.get("speaker") or turn.get("role") or "")
        raw = turn.get("text", turn.get("content", "")) or ""
        text, turn_clues = split_clues(raw) if clues else (" ".join(raw.split()), [])
        text = " ".join(text.split())
        annotation = turn.get("annotation") or {}
        strategy = turn.get("strategy", annotation.get("strategy"))
        emotion_set = "user_emotion" if speaker == "user" else "system_emotion"
        emotion = _label(taxonomy, emotion_set, turn.get("emotion"))
        inherited = emotion is None and speaker == "user" and conversation_emotion is not None
        if inherited:
            emotion = conversation_emotion
        utterances.append(
            Utterance(
                speaker=speaker,
                text=text,
                emotion=emotion,
                strategy=_label(taxonomy, "strategy", strategy) if speaker == "system" else None,
                clues=turn_clues,
                emotion_from_dialogue=inherited,
            )
        )
    return Dialogue(
        id=str(record.get("id", record.get("dialogue_id", dialogue_id))),
        utterances=utterances,
        split=record.get("split", split),
        emotion_type=conversation_emotion,
        problem_type=record.get("problem_type"),
        situation=record.get("situation"),
    )


def _looks_like_clues(records: list[dict[str, Any]]) -> bool:
    sample = [t.get("text", "") for r in records[:5] for t in (r.get("dialog") or [])[:20]]
    return bool(sample) and sum("The speaker" in (s or "") for s in sample) > len(sample) / 2


def load_dialogues(
    path: str | Path,
    *,
    taxonomy: Taxonomy | str | None = None,
    split: str | None = None,
    clues: bool | None = None,
) -> list[Dialogue]:
    """Read a corpus file (any layout above) into dialogues.

    ``split`` keeps only that split when the file says (the MESC CSV's ``split``
    column); for single-split files it labels the dialogues. ``clues`` splits
    MESC-style audio/video clues off the texts (default: detected).
    """
    path = Path(path)
    tax = get_taxonomy(taxonomy) if taxonomy is not None else None
    if path.suffix.lower() in {".csv", ".tsv"}:
        dialogues = _read_mesc_csv(path, tax)
        if split is not None and any(d.split for d in dialogues):
            dialogues = [d for d in dialogues if _same_split(d.split, split)]
        elif split is not None:
            for d in dialogues:
                d.split = split
        return dialogues
    records = _read_json_records(path)
    use_clues = _looks_like_clues(records) if clues is None else clues
    name = split or path.stem
    return [_dialogue_from_record(r, f"{name}-{i}", split, tax, use_clues) for i, r in enumerate(records)]


def _same_split(a: str | None, b: str) -> bool:
    aliases = {"val": "valid", "validation": "valid", "dev": "valid"}
    return aliases.get((a or "").lower(), (a or "").lower()) == aliases.get(b.lower(), b.lower())


# --------------------------------------------------------------------------- examples


def dialogues_to_examples(
    dialogues: Iterable[Dialogue],
    *,
    corpus: str,
    window: int | None = None,
    system_emotion: bool = True,
) -> list[Example]:
    """One :class:`Example` per system utterance that has a user utterance before it.

    ``window`` keeps only the last ``window`` history messages (``None``: all;
    the graph applies its own ``history_window`` anyway). ``system_emotion=False``
    drops the system-emotion gold (ESConv has none).
    """
    examples = []
    for dialogue in dialogues:
        messages = [
            Message(
                role="user" if u.speaker == "user" else "assistant",
                text=u.text,
                # A conversation-level emotion (ESConv) is the gold of every turn but not an annotation of
                # earlier messages: the history would hand the answer to any model that reads it.
                emotion=None
                if u.emotion_from_dialogue
                else (u.emotion if (u.speaker == "user" or system_emotion) else None),
                strategy=u.strategy,
                clues=list(u.clues),
            )
            for u in dialogue.utterances
        ]
        last_user: int | None = None
        for index, utterance in enumerate(dialogue.utterances):
            if utterance.speaker == "user":
                last_user = index
                continue
            if last_user is None or not utterance.text:
                continue
            history = messages[:last_user] + messages[last_user + 1 : index]
            positions = [*range(last_user), *range(last_user + 1, index)]
            if window is not None:
                history = history[-window:] if window > 0 else []
                positions = positions[-window:] if window > 0 else []
            user = dialogue.utterances[last_user]
            examples.append(
                Example(
                    id=f"{corpus}:{dialogue.split or 'all'}:{dialogue.id}:{index}",
                    corpus=corpus,
                    split=dialogue.split,
                    dialogue_id=dialogue.id,
                    turn_index=index,
                    text=user.text,
                    history=history,
                    after_user=min(index - last_user - 1, len(history)),
                    user_emotion=user.emotion,
                    strategy=utterance.strategy,
                    system_emotion=utterance.emotion if system_emotion else None,
                    reply=utterance.text,
                    text_clues=list(user.clues),
                    situation=dialogue.situation,
                    user_index=last_user,
                    history_index=positions,
                )
            )
    return examples


# --------------------------------------------------------------------------- downloads


def _datasets_dir() -> Path:
    from mesa.cache import default_cache_dir

    return default_cache_dir() / "datasets"


def _fetch(url: str, destination: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mesa-esc"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_suffix(destination.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, destination)


def download(
    name: str, *, cache_dir: str | Path | None = None, fetch: Callable[[str, Path], None] | None = None
) -> Path:
    """The local path of a public corpus file (a key of :data:`SOURCES`), downloading it once.

    Cached under ``cache_dir`` (default ``$MESA_CACHE_DIR/datasets``); a cached
    file is never fetched again. ``fetch(url, destination)`` replaces the HTTP
    download (tests, mirrors).
    """
    if name not in SOURCES:
        raise KeyError(f"unknown corpus file {name!r}; known: {', '.join(SOURCES)}")
    destination = Path(cache_dir) if cache_dir is not None else _datasets_dir()
    destination = destination / name
    if not destination.exists():
        (fetch or _fetch)(SOURCES[name], destination)
        if not destination.exists():
            raise FileNotFoundError(f"fetching {SOURCES[name]} did not create {destination}")
    return destination


# --------------------------------------------------------------------------- corpora


def esconv_split(dialogues: Sequence[Dialogue], split: str, *, seed: int = 13) -> list[Dialogue]:
    """The train/valid/test split of the ESConv authors (``random.seed(13)``, shuffle, 15 % / 15 % / 70 %)."""
    import random

    data = list(dialogues)
    random.Random(seed).shuffle(data)
    size = int(0.15 * len(data))
    parts = {"valid": data[:size], "test": data[size : 2 * size], "train": data[2 * size :]}
    key = {"val": "valid", "validation": "valid", "dev": "valid"}.get(split, split)
    for d in parts[key]:
        d.split = key
    return parts[key]


def _find(directory: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        candidate = directory / name
        if candidate.exists():
            return candidate
    return None


def load_mesc(
    path: str | Path | None = None,
    split: str = "val",
    *,
    window: int | None = None,
    cache_dir: str | Path | None = None,
    fetch: Callable[[str, Path], None] | None = None,
) -> list[Example]:
    """MESC examples of one split (``train``, ``val``, ``test``).

    ``path``: the CSV (``mesc_train_val.csv``/``MESC.csv`` with a ``split``
    column), a ``{split}.json`` with clues, or a directory holding them (the CSV
    is preferred: clean texts). ``None`` downloads ``{split}.json`` from the
    public repository (github chuyq/MESC) into the cache.
    """
    split = {"valid": "val", "validation": "val", "dev": "val"}.get(split, split)
    if path is None:
        file = download(f"mesc/{split}.json", cache_dir=cache_dir, fetch=fetch)
    else:
        file = Path(path)
        if file.is_dir():
            found = _find(file, ["mesc_train_val.csv", "MESC.csv", f"{split}.json", f"{split}.txt"])
            if found is None:
                raise FileNotFoundError(f"no MESC file for split {split!r} in {file}")
            file = found
    dialogues = load_dialogues(file, taxonomy=MESC, split=split)
    if not dialogues:
        raise ValueError(f"{file}: no dialogues for split {split!r}")
    return dialogues_to_examples(dialogues, corpus="mesc", window=window)


def load_esconv(
    path: str | Path | None = None,
    split: str = "valid",
    *,
    window: int | None = None,
    cache_dir: str | Path | None = None,
    fetch: Callable[[str, Path], None] | None = None,
) -> list[Example]:
    """ESConv examples of one split (``train``, ``valid``, ``test``).

    ``path``: a split file (``valid.jsonl``), a directory holding
    ``{split}.jsonl``/``{split}.txt`` or ``ESConv.json``, or ``ESConv.json``
    itself (split as the authors did, :func:`esconv_split`). ``None`` downloads
    ``ESConv.json`` (github thu-coai/Emotional-Support-Conversation).
    """
    split = {"val": "valid", "validation": "valid", "dev": "valid"}.get(split, split)
    if path is None:
        file = download("esconv/ESConv.json", cache_dir=cache_dir, fetch=fetch)
    else:
        file = Path(path)
        if file.is_dir():
            found = _find(file, [f"{split}.jsonl", f"{split}.json", f"{split}.txt", "ESConv.json"])
            if found is None:
                raise FileNotFoundError(f"no ESConv file for split {split!r} in {file}")
            file = found
    if file.name == "ESConv.json":
        dialogues = esconv_split(load_dialogues(file, taxonomy=ESCONV, clues=False), split)
    else:
        dialogues = load_dialogues(file, taxonomy=ESCONV, split=split, clues=False)
    return dialogues_to_examples(dialogues, corpus="esconv", window=window, system_emotion=False)


def load_corpus(
    corpus: CorpusName | str,
    path: str | Path | None = None,
    split: str = "val",
    *,
    taxonomy: Taxonomy | str | None = None,
    window: int | None = None,
    cache_dir: str | Path | None = None,
    fetch: Callable[[str, Path], None] | None = None,
) -> list[Example]:
    """Examples of ``corpus`` (``mesc``, ``esconv`` or ``custom``; custom needs ``path``).

    A custom corpus is a CSV in the MESC layout or dialogue JSON/JSONL; a
    directory is searched for ``{split}.jsonl``/``.json``/``.csv``.
    """
    name = corpus.lower()
    if name == "mesc":
        return load_mesc(path, split, window=window, cache_dir=cache_dir, fetch=fetch)
    if name == "esconv":
        return load_esconv(path, split, window=window, cache_dir=cache_dir, fetch=fetch)
    if path is None:
        raise ValueError("a custom corpus needs a path")
    file = Path(path)
    if file.is_dir():
        aliases = [split, {"val": "valid", "valid": "val"}.get(split, split)]
        names = [f"{s}{ext}" for s in aliases for ext in (".jsonl", ".json", ".txt", ".csv")]
        found = _find(file, names)
        if found is None:
            raise FileNotFoundError(f"no file for split {split!r} in {file}")
        file = found
    dialogues = load_dialogues(file, taxonomy=taxonomy, split=split)
    has_system_emotion = any(u.emotion for d in dialogues for u in d.utterances if u.speaker == "system")
    return dialogues_to_examples(
        dialogues, corpus=file.stem if name == "custom" else name, window=window, system_emotion=has_system_emotion
    )


def corpus_fingerprint(path: str | Path) -> str:
    """A short content hash of a corpus file (for cache keys)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def taxonomy_from_examples(examples: Sequence[Example], name: str = "custom") -> Taxonomy:
    """A taxonomy with the labels that occur in ``examples`` (for a corpus with its own labels)."""
    from collections import Counter

    def names(which: str) -> list[str]:
        counts = Counter(v for e in examples if (v := e.gold(which)) is not None)
        for e in examples:
            for m in e.history:
                value = m.strategy if which == "strategy" else m.emotion
                role = "assistant" if which != "user_emotion" else "user"
                if value is not None and m.role == role:
                    counts[value] += 0
        return [label for label, _ in counts.most_common()]

    users, strategies, systems = names("user_emotion"), names("strategy"), names("system_emotion")
    if not users or not strategies:
        raise ValueError("the corpus has no user-emotion or strategy labels")
    return Taxonomy.custom(name, user_emotions=users, strategies=strategies, system_emotions=systems or None)
