"""Escalation counters without personal data, for an operator's annual report.

California SB 243 asks operators of companion chatbots to report, from July 2027, how often they
referred users to crisis services. :class:`EscalationCounters` keeps exactly that and nothing more:
a count per period (day or month), category and level. No text, no thread id, no timestamp finer
than the day is stored, so the export can be shared as it is.

    policy = SafetyPolicy()
    ...
    rows = policy.counters.export(period="month")          # [{"period": "2027-07", "category": ..., ...}]
    csv_text = policy.counters.export(period="month", fmt="csv")
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Literal

__all__ = ["EscalationCounters"]

Period = Literal["day", "month"]


class EscalationCounters:
    """Thread-safe counts of escalations per day, category and level (months are sums of days)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._counts: Counter[tuple[date, str, str]] = Counter()

    def record(self, category: str, level: str, when: datetime | None = None) -> None:
        """Count one escalation (only its UTC day, category and level are kept)."""
        moment = when or self._clock()
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        with self._lock:
            self._counts[(moment.date(), str(category), str(level))] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def rows(self, period: Period = "month") -> list[dict[str, Any]]:
        """``[{"period", "category", "level", "count"}]``, sorted; ``period`` is ``"YYYY-MM-DD"`` or ``"YYYY-MM"``."""
        if period not in ("day", "month"):
            raise ValueError("period must be 'day' or 'month'")
        with self._lock:
            items = list(self._counts.items())
        grouped: Counter[tuple[str, str, str]] = Counter()
        for (day, category, level), count in items:
            key = day.isoformat() if period == "day" else day.strftime("%Y-%m")
            grouped[(key, category, level)] += count
        return [
            {"period": key, "category": category, "level": level, "count": count}
            for (key, category, level), count in sorted(grouped.items())
        ]

    def export(self, period: Period = "month", fmt: Literal["rows", "json", "csv"] = "rows") -> Any:
        """The counts as rows (list of dicts), a JSON string or CSV text with a header."""
        rows = self.rows(period)
        if fmt == "rows":
            return rows
        if fmt == "json":
            return json.dumps(rows, indent=2)
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=["period", "category", "level", "count"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            return out.getvalue()
        raise ValueError("fmt must be 'rows', 'json' or 'csv'")
