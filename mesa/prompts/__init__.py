"""Prompt templates, one file per step, shipped in the wheel and overridable.

Templates are Markdown files with ``{placeholders}`` filled by
``str.format``-style substitution (unknown placeholders are left as they are,
so a custom template may omit any of them). Override some or all of them::

    PromptSet.default().with_overrides(strategy="Pick a strategy for: {text}\\n{labels}")
    PromptSet.from_dir("my_prompts/")        # files named like the built-in ones
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["PROMPT_NAMES", "PromptSet"]

PROMPT_NAMES = ("system", "user_emotion", "strategy", "system_emotion", "respond", "fused", "safety_assess", "crisis_reply")
"""The steps that have a prompt template (``<name>.md`` in this package); the last two are the safety
policy's (its LLM judgement and its crisis wording: ``SafetyPolicy(prompts=...)``)."""


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _builtin(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class PromptSet:
    """The templates a graph uses, by step name."""

    templates: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls) -> PromptSet:
        """The built-in templates."""
        return cls({name: _builtin(name) for name in PROMPT_NAMES})

    @classmethod
    def from_dir(cls, directory: str | Path) -> PromptSet:
        """Built-in templates, replaced by any ``<name>.md`` found in ``directory``."""
        directory = Path(directory)
        if not directory.is_dir():
            raise NotADirectoryError(f"no prompt directory at {directory}")
        found = {p.stem: p.read_text(encoding="utf-8") for p in directory.glob("*.md") if p.stem in PROMPT_NAMES}
        return cls.default().with_overrides(**found)

    def with_overrides(self, **templates: str) -> PromptSet:
        """A copy with some templates replaced."""
        unknown = set(templates) - set(PROMPT_NAMES)
        if unknown:
            raise KeyError(f"unknown prompt(s) {sorted(unknown)}; known: {', '.join(PROMPT_NAMES)}")
        return PromptSet({**self.templates, **templates})

    def render(self, name: str, **values: Any) -> str:
        """Template ``name`` with ``values`` filled in."""
        template = self.templates.get(name) or _builtin(name)
        return string.Formatter().vformat(template, (), _Missing(values)).strip()
