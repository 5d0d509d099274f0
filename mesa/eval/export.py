"""Export a labelled corpus as SMES-format chat fine-tuning data (JSONL of chat messages).

Each line is ``{"messages": [system, user/assistant history..., user, assistant]}``
in the OpenAI / Hugging Face chat format. The final assistant message is the
SMES sequential output for the system turn: the user's emotion, the strategy,
the system's emotion, then the response, as JSON (``target="json"``) or as
tagged lines (``target="tagged"``). Earlier turns appear as plain messages
(consecutive messages of one speaker merged), annotated with their gold labels
when ``annotate_history`` is on. When the system spoke several times in a row,
its earlier utterances of that run come as one assistant message before the target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from mesa.eval.datasets import Example
from mesa.taxonomy import MESC, Taxonomy, get_taxonomy

__all__ = ["example_to_chat", "export_chat", "smes_system_prompt"]


def smes_system_prompt(taxonomy: Taxonomy) -> str:
    """The instruction shown as the system message: the SMES steps and the label sets."""
    return (
        "You are an emotional-support conversation agent. For the user's latest message, in order: "
        "(1) recognise the user's emotion, (2) choose a support strategy, (3) choose your own emotion, "
        "(4) write the response.\n\n"
        f"User emotions:\n{taxonomy.describe('user_emotion')}\n\n"
        f"Strategies:\n{taxonomy.describe('strategy')}\n\n"
        f"System emotions:\n{taxonomy.describe('system_emotion')}"
    )


def _target(example: Example, target: str) -> str:
    if target == "json":
        return json.dumps(
            {
                "user_emotion": example.user_emotion,
                "strategy": example.strategy,
                "system_emotion": example.system_emotion,
                "response": example.reply,
            },
            ensure_ascii=False,
        )
    lines = [f"User emotion: {example.user_emotion or 'unknown'}", f"Strategy: {example.strategy or 'unknown'}"]
    if example.system_emotion is not None:
        lines.append(f"System emotion: {example.system_emotion}")
    lines.append(f"Response: {example.reply}")
    return "\n".join(lines)


def example_to_chat(
    example: Example,
    taxonomy: Taxonomy | str = MESC,
    *,
    history_window: int | None = 8,
    target: Literal["json", "tagged"] = "json",
    annotate_history: bool = False,
    clues: bool = True,
) -> dict[str, Any]:
    """One example as ``{"messages": [...], "id": ...}``."""
    tax = get_taxonomy(taxonomy)
    messages: list[dict[str, str]] = [{"role": "system", "content": smes_system_prompt(tax)}]
    after = example.after_user
    before = example.history[: len(example.history) - after] if after else list(example.history)
    run = example.history[len(example.history) - after :] if after else []
    if history_window is not None:
        before = before[-history_window:] if history_window > 0 else []

    def add(role: str, content: str) -> None:
        # Chat formats want alternation; merge consecutive messages of one role.
        if len(messages) > 1 and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content
        else:
            messages.append({"role": role, "content": content})

    for message in before:
        content = message.text
        if annotate_history and message.role == "user" and message.emotion:
            content = f"[emotion: {message.emotion}] {content}"
        if annotate_history and message.role == "assistant" and message.strategy:
            content = f"[strategy: {message.strategy}] {content}"
        if clues and message.clues:
            content += "\n(clues: " + " ".join(message.clues) + ")"
        add(message.role, content)
    add(
        "user",
        example.text + ("\n(clues: " + " ".join(example.text_clues) + ")" if clues and example.text_clues else ""),
    )
    if run:  # the system already spoke after this user turn: its earlier utterances, then the target
        add("assistant", "\n".join(m.text for m in run))
    messages.append({"role": "assistant", "content": _target(example, target)})
    return {"id": example.id, "messages": messages}


def export_chat(
    examples: Iterable[Example],
    path: str | Path,
    taxonomy: Taxonomy | str = MESC,
    **kwargs: Any,
) -> int:
    """Write ``examples`` as chat fine-tuning JSONL to ``path``; returns the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            if not example.reply:
                continue
            handle.write(json.dumps(example_to_chat(example, taxonomy, **kwargs), ensure_ascii=False) + "\n")
            count += 1
    return count
