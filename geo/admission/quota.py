"""Quotas of centre-bound priority categories (산업단지·기부채납·공동주택 입주자): within the quota such entries
keep their priority, beyond it they rank without it.

The quota is a share of the centre's 정원 (``facilities.capacity``): the centre's agreed share when the rules file
lists it (``applies_at.quota_by_code``), else the high bound of ``applies_at.quota_share`` (the most the rules
allow). Places already held count against it: children admitted at the centre whose claim of the category counts.
The remaining places go to the claimants in rank order with the priority; the others are ranked again without
the category (their reasons end with ``beyond_quota:<code>``). Each queue (반) of the centre sees the whole
remaining quota: the rules give the quota per centre, not per 반.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import floor

from sqlalchemy import Connection, text

from geo.admission.rules import Centre, Priority, Rules


@dataclass(frozen=True)
class QuotaRoom:
    """A quota'd category at a centre: the places it may fill and those already held."""

    category: str
    places: int
    held: int

    @property
    def remaining(self) -> int:
        """Places the category may still fill."""
        return max(self.places - self.held, 0)


def quota_rooms(conn: Connection, rules: Rules, centres: dict[int, tuple[Centre, int | None]]
                ) -> dict[int, list[QuotaRoom]]:
    """For each centre (id -> centre and 정원) where a quota'd category counts, its rooms; centres without a known
    정원 get none (nothing to take a share of)."""
    quota_codes = [c.code for c in rules.categories.values() if c.scope.quota_share is not None]
    wanted = {fid: [code for code in quota_codes if rules.categories[code].counts_at(centre, None)]
              for fid, (centre, capacity) in centres.items() if capacity}
    wanted = {fid: codes for fid, codes in wanted.items() if codes}
    if not wanted:
        return {}
    held = {(r.facility_id, r.category): int(r.n) for r in conn.execute(text("""
        SELECT e.facility_id, c.category, count(DISTINCT e.id) AS n
        FROM waitlist_entries e JOIN claims c ON c.child_id = e.child_id
        WHERE e.status = 'admitted' AND e.facility_id = ANY(:f) AND c.category = ANY(:c) AND c.evidence <> 'rejected'
        GROUP BY e.facility_id, c.category
    """), {"f": sorted(wanted), "c": quota_codes}).all()}
    out: dict[int, list[QuotaRoom]] = {}
    for fid, codes in wanted.items():
        centre, capacity = centres[fid]
        assert capacity is not None
        rooms = []
        for code in codes:
            share = rules.categories[code].scope.quota_at(centre.code)
            assert share is not None
            rooms.append(QuotaRoom(code, floor(share * capacity), held.get((fid, code), 0)))
        out[fid] = rooms
    return out


def apply_quota(ordered: Sequence[str], priority_of: dict[str, Priority], rooms: Sequence[QuotaRoom],
                without: Callable[[str, str], Priority]) -> dict[str, Priority]:
    """The priorities after the quotas: ``ordered`` are entry ids ranked with every claim counting; the first
    ``remaining`` claimants of each room keep the category, the others get ``without(entry, category)`` with
    ``beyond_quota:<category>`` added to their reasons."""
    out = dict(priority_of)
    for room in rooms:
        seen = 0
        for entry in ordered:
            if room.category not in out[entry].reasons:
                continue
            seen += 1
            if seen > room.remaining:
                p = without(entry, room.category)
                out[entry] = Priority(p.tier, p.points, (*p.reasons, f"beyond_quota:{room.category}"))
    return out
