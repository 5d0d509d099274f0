"""Crisis contacts by locale: a maintained table (``contacts.json``) with an international fallback."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["CrisisContact", "LocaleContacts", "crisis_contacts", "load_contact_table", "resolve_locale"]

_ALIASES = {"UK": "GB", "EN": "GB", "USA": "US", "INT": "INTERNATIONAL", "WORLD": "INTERNATIONAL", "": "INTERNATIONAL"}


class CrisisContact(BaseModel):
    """One crisis service: how to reach it and when."""

    name: str
    phone: str | None = None
    sms: str | None = None
    sms_keyword: str | None = None
    url: str | None = None
    hours: str | None = None
    categories: list[str] | None = Field(default=None, description="risk categories it serves; None = all")

    def serves(self, category: str | None) -> bool:
        return self.categories is None or category is None or category in self.categories

    def render(self) -> str:
        """One line a person in distress can act on."""
        ways: list[str] = []
        if self.phone and self.sms and _digits(self.phone) == _digits(self.sms):
            ways.append(f"call or text {self.phone}")
        else:
            if self.phone:
                ways.append(f"call {self.phone}")
            if self.sms:
                ways.append(f"text {self.sms_keyword} to {self.sms}" if self.sms_keyword else f"text {self.sms}")
        if self.url and not ways:
            ways.append(self.url)
        elif self.url:
            ways.append(f"or {self.url}")
        how = " ".join([", ".join(w for w in ways if not w.startswith("or ")), *[w for w in ways if w.startswith("or ")]]).strip()
        hours = f" ({self.hours})" if self.hours else ""
        return f"{self.name}: {how}{hours}"

    def reach(self) -> list[str]:
        """The numbers and addresses by which the service is reached (for checking a reply)."""
        return [x for x in (self.phone, self.sms, self.url) if x]


class LocaleContacts(BaseModel):
    """The crisis contacts and the emergency number of one country."""

    locale: str
    country: str
    emergency: str
    contacts: list[CrisisContact]


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def resolve_locale(locale: str | None) -> str:
    """``"en_US"``, ``"en-us"``, ``"US"`` → ``"US"``; ``"UK"`` → ``"GB"``; unknown → the code as given (upper case)."""
    text = (locale or "").strip()
    if "." in text:
        text = text.split(".", 1)[0]
    parts = re.split(r"[-_]", text)
    code = parts[-1] if len(parts) > 1 and len(parts[-1]) == 2 else parts[0]
    code = code.upper()
    return _ALIASES.get(code, code)


@lru_cache(maxsize=1)
def _builtin_table() -> dict[str, LocaleContacts]:
    raw = json.loads(resources.files("mesa.safety").joinpath("contacts.json").read_text(encoding="utf-8"))
    return {key: LocaleContacts(locale=key, **value) for key, value in raw.items() if not key.startswith("_")}


def load_contact_table(overrides: Mapping[str, Any] | None = None) -> dict[str, LocaleContacts]:
    """The built-in table with ``overrides`` applied.

    ``overrides`` maps a locale to a :class:`LocaleContacts`, a dict of its fields
    (``{"emergency": "112", "contacts": [...]}``) or just a list of contacts (the
    locale keeps its emergency number, or the international one when new).
    """
    table = dict(_builtin_table())
    for key, value in (overrides or {}).items():
        code = resolve_locale(key)
        base = table.get(code, table["INTERNATIONAL"])
        if isinstance(value, LocaleContacts):
            entry = value.model_copy(update={"locale": code})
        elif isinstance(value, Mapping):
            data = {"country": base.country if code in table else code, "emergency": base.emergency, **dict(value)}
            data["locale"] = code
            entry = LocaleContacts.model_validate(data)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            entry = LocaleContacts(
                locale=code,
                country=base.country if code in table else code,
                emergency=base.emergency,
                contacts=[c if isinstance(c, CrisisContact) else CrisisContact.model_validate(c) for c in value],
            )
        else:
            raise TypeError(f"contacts override for {key!r}: expected a list of contacts or a mapping")
        table[code] = entry
    return table


def crisis_contacts(locale: str | None = "US", category: str | None = None, table: Mapping[str, LocaleContacts] | None = None) -> list[CrisisContact]:
    """The crisis contacts for ``locale`` (category-specific ones first), or the international ones."""
    entry = locale_entry(locale, table)
    own = [c for c in entry.contacts if c.serves(category)]
    specific = [c for c in own if c.categories]
    general = [c for c in own if not c.categories]
    return specific + general


def locale_entry(locale: str | None, table: Mapping[str, LocaleContacts] | None = None) -> LocaleContacts:
    table = table if table is not None else _builtin_table()
    return table.get(resolve_locale(locale)) or table["INTERNATIONAL"]
