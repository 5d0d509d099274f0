"""Text folding before every safety layer: the tricks people (and attackers) use to hide risk words.

:func:`fold` undoes, in one linear pass each:

- Unicode compatibility forms (NFKC: fullwidth ``ｋｉｌｌ``, math alphanumerics ``𝐤𝐢𝐥𝐥``, ligatures);
- look-alike letters from other scripts (Cyrillic ``кіll``, Greek ``κιλλ``…) and accents (``kíll``);
- invisible characters (zero-width spaces and joiners, soft hyphens, bidi marks);
- letters split by separators (``k i l l``, ``k.i.l.l``, ``k-i-l-l``, ``s_u_i_c_i_d_e``).

Digits and symbols for letters (``k1ll``, ``$uicide``) are mapped per word by the rule layer's
normaliser, which knows which tokens are words. The original text is never changed: layers quote it
as evidence.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold"]

# Characters that render as nothing (or nearly) and split words for a matcher.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
        "\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0",
    ),
    None,
)

# Look-alike letters NFKC keeps as they are: the common Cyrillic, Greek and IPA homoglyphs of Latin letters.
_LOOKALIKE_PAIRS = (
    "аa бb вb гr дd еe ёe жx иu йu кk лn мm нh оo пn рp сc тt уy фf хx цu чy шw щw ъb ыbl ьb эe юo яr "
    "іi їi јj ѕs ԁd ԛq ԝw ӏl һh ґr єe ҫc ӧo ӱy "
    "αa βb γy δd εe ζz ηn θo ιi κk λl μu νv ξe οo πn ρp σo ςc τt υu φf χx ψw ωw ϲc ϳj "
    "ɑa ɡg ɩi ɪi ʏy ᴀa ᴄc ᴅd ᴇe ᴋk ᴍm ᴏo ᴘp ᴛt ᴜu ᴠv ᴡw ᴢz ℓl ȷj"
)


def _lookalike_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for pair in _LOOKALIKE_PAIRS.split():
        source, target = pair[0], pair[1:]
        table[ord(source)] = target
        upper = source.upper()
        if upper != source and len(upper) == 1:
            table[ord(upper)] = target
    table[ord("ı")] = "i"
    table[ord("ү")] = "y"
    return table


_LOOKALIKES = _lookalike_table()

# Three or more single letters (or digits standing for letters) split by one repeated separator:
# "k i l l", "k.i.l.l", "k-i-l-l", "k_i_l_l", "k*i*l*l". Two-letter runs ("a b") stay as they are.
_SPACED = re.compile(
    r"(?<![\w.])[a-z0-9$@!](?P<sep>[ .\-_*·•~+/\\|]{1,2})(?:[a-z0-9$@!](?P=sep))+[a-z0-9$@!](?![\w])", re.IGNORECASE
)
_SEPARATORS = re.compile(r"[ .\-_*·•~+/\\|]")
_RUN_MIN_LETTERS = 3
# Words a spaced-out run is split back into when it is made of them only ("k i l l m y s e l f").
_RUN_WORDS = frozenset(
    [
        "i",
        "me",
        "my",
        "myself",
        "want",
        "to",
        "wanna",
        "kill",
        "die",
        "dead",
        "end",
        "it",
        "all",
        "life",
        "suicide",
        "suicidal",
        "self",
        "harm",
        "cut",
        "cutting",
        "hang",
        "overdose",
        "jump",
        "off",
        "going",
        "gonna",
        "am",
        "will",
        "take",
        "pills",
        "tonight",
        "now",
        "him",
        "her",
        "them",
        "you",
        "your",
        "yourself",
        "kms",
        "kys",
        "unalive",
    ]
)


def _split_words(letters: str) -> str | None:
    """``"killmyself"`` → ``"kill myself"`` when the run is made of :data:`_RUN_WORDS` only (shortest split)."""
    lower = letters.lower()
    best: list[list[str] | None] = [[]] + [None] * len(lower)
    for end in range(1, len(lower) + 1):
        for start in range(max(0, end - 9), end):
            if best[start] is not None and lower[start:end] in _RUN_WORDS:
                candidate = [*best[start], lower[start:end]]
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    return " ".join(best[-1]) if best[-1] else None


def _strip_accents(text: str) -> str:
    """``kíll`` → ``kill``: drop combining marks (only where the text has any: most text is plain ASCII)."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _join_spaced(match: re.Match[str]) -> str:
    run = match.group(0)
    letters = _SEPARATORS.sub("", run)
    if len(letters) < _RUN_MIN_LETTERS:
        return run
    # runs are short (a spaced word or two); very long ones are not split into words (keeps it linear)
    words = _split_words(letters) if len(letters) <= 40 else None
    return words or letters


def fold(text: str) -> str:
    """The text with compatibility forms, look-alikes, accents, invisible characters and spaced letters undone.

    Linear in the length of the text. Case is kept (the rule layer lower-cases).
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    if not text.isascii():
        text = _strip_accents(text.translate(_LOOKALIKES))
    return _SPACED.sub(_join_spaced, text)
