"""History protocols: what the earlier turns of an example carry when it is evaluated.

- ``"predicted"`` (the live protocol, the default): earlier USER turns carry the
  user-emotion labels the evaluated predictor itself gave them, as in a running
  chat, where nobody annotates the user's messages. The examples of one dialogue
  are therefore evaluated in dialogue order (dialogues still run concurrently).
  System turns keep their gold strategy, emotion and text: the system knows what
  it said and why.
- ``"gold"``: earlier turns carry the dataset's gold labels (the optimistic
  protocol of the papers).

A user turn that no evaluated example predicted (one of several user messages in
a row, or an example left out of the subset) takes the label given to the user
message that closed its run of user messages; if there is none yet, it carries no
label. A gold user label never reaches the predictor under ``"predicted"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from mesa.eval.datasets import Example

__all__ = ["HISTORY_PROTOCOLS", "HistoryProtocol", "by_dialogue", "check_protocol", "with_predicted_history"]

HistoryProtocol = Literal["predicted", "gold"]
HISTORY_PROTOCOLS: tuple[str, ...] = ("predicted", "gold")


def check_protocol(history: str) -> HistoryProtocol:
    """``history`` if it names a protocol, else a clear error."""
    if history not in HISTORY_PROTOCOLS:
        from mesa.errors import MesaError

        raise MesaError(f"unknown history protocol {history!r}; choose from {', '.join(HISTORY_PROTOCOLS)}")
    return history  # type: ignore[return-value]


def by_dialogue(examples: Sequence[Example]) -> list[list[Example]]:
    """The examples grouped by dialogue, each group in dialogue order (groups in first-seen order)."""
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.dialogue_id, []).append(example)
    return [sorted(group, key=lambda e: e.turn_index) for group in groups.values()]


def with_predicted_history(example: Example, labels: dict[int, str | None]) -> Example:
    """A copy of ``example`` whose earlier user messages carry ``labels`` instead of gold.

    ``labels`` maps the dialogue index of a user utterance to the user emotion
    the predictor gave it. Messages whose position is unknown (an example built
    by hand, without ``history_index``) lose their user label.
    """
    positions = example.history_index if len(example.history_index) == len(example.history) else None
    if positions is None:
        history = [m.model_copy(update={"emotion": None}) if m.role == "user" else m for m in example.history]
        return example.model_copy(update={"history": history})
    roles = dict(zip(positions, (m.role for m in example.history), strict=True))
    if example.user_index is not None:
        roles[example.user_index] = "user"

    def label_of(position: int) -> str | None:
        # Its own label, else that of the message closing its run of user messages.
        while position in roles and roles[position] == "user":
            if labels.get(position) is not None:
                return labels[position]
            position += 1
        return None

    history = [
        m.model_copy(update={"emotion": label_of(p)}) if m.role == "user" else m
        for p, m in zip(positions, example.history, strict=True)
    ]
    return example.model_copy(update={"history": history})
