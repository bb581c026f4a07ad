"""Ranking a centre's waitlist: by 순위 tier, then points, then application time, then a published tie-break.

The order is a total order computed from public rules, so anyone holding the (anonymised) entries can recompute it;
``explain_changes`` says why each entry moved between two rankings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from geo.admission.rules import Priority


@lru_cache(maxsize=65536)
def tie_break(year: int, public_id: str) -> str:
    """The published tie-break of two entries with equal priority and equal application time: SHA-256 of
    ``"<year>:<public id>"``, lower first (no one can choose it, anyone can check it). Cached: every rank check
    sorts whole queues again, and the digests of an entry never change."""
    return hashlib.sha256(f"{year}:{public_id}".encode()).hexdigest()


@dataclass(frozen=True)
class RankedEntry:
    """One waitlist entry as ranking sees it (no names: a public id, the priority and the application time)."""

    public_id: str
    priority: Priority
    applied_at: datetime

    def key(self, year: int) -> tuple[int, int, datetime, str]:
        """Sort key: tier ascending, points descending, earlier application, tie-break."""
        return (self.priority.tier, -self.priority.points, self.applied_at, tie_break(year, self.public_id))


def rank(entries: Iterable[RankedEntry], *, year: int) -> list[RankedEntry]:
    """Entries in waitlist order (rank 1 first)."""
    return sorted(entries, key=lambda e: e.key(year))


def explain_changes(before: Sequence[RankedEntry], after: Sequence[RankedEntry]) -> dict[str, list[str]]:
    """For each entry in both rankings whose rank changed: the reasons, in words.

    An entry moves down when entries that were not ahead of it now are (new applications, or entries whose
    priority rose) and up when entries ahead of it left (admitted, withdrew, dropped) or fell behind.
    """
    pos_before = {e.public_id: i for i, e in enumerate(before)}
    pos_after = {e.public_id: i for i, e in enumerate(after)}
    old = {e.public_id: e for e in before}
    reasons: dict[str, list[str]] = {}
    for entry in after:
        pid = entry.public_id
        if pid not in pos_before or pos_before[pid] == pos_after[pid]:
            continue
        ahead_before = {e.public_id for e in before[: pos_before[pid]]}
        ahead_after = {e.public_id for e in after[: pos_after[pid]]}
        lines: list[str] = []
        for other in after[: pos_after[pid]]:
            if other.public_id in ahead_before:
                continue
            what = ", ".join(other.priority.reasons) or "no priority category"
            when = other.applied_at.strftime("%m-%d")
            if other.public_id in old:
                lines.append(f"an entry's priority changed to {other.priority.band} ({what}) and now ranks above "
                             f"you")
            else:
                lines.append(f"an application with {other.priority.band} ({what}) of {when} ranked above you")
        for gone in ahead_before - ahead_after:
            lines.append("an entry ahead of you left the list (admitted, withdrawn or not renewed)"
                         if gone not in pos_after else "an entry ahead of you now ranks below you")
        if entry.priority != old[pid].priority:
            lines.append(f"your priority is now {entry.priority.band}")
        reasons[pid] = lines
    return reasons
