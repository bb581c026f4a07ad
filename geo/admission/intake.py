"""The March intake round: every waiting entry of a 보육연도 and every free place at once, by deferred acceptance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import lock_centre, resolve_now
from geo.admission.matching import deferred_acceptance
from geo.admission.offers import free_places
from geo.admission.queue import QueueEntry, queue
from geo.admission.rules import rules_for
from geo.admission.states import EntryRef, transition


def intake_round(conn: Connection, *, year: int, now: datetime | None = None,
                 actor_user_id: int | None = None) -> dict[str, Any]:
    """The March round: every waiting entry of ``year`` and every free place at once, by deferred acceptance with
    one seat pool per centre and age class; each placed child gets one offer. Entries with unverified counting
    claims are not eligible."""
    at = resolve_now(now)
    rules = rules_for(year)
    seats = conn.execute(text("""SELECT DISTINCT facility_id, age_class FROM waitlist_entries
                                 WHERE year = :y AND status = 'waiting' ORDER BY facility_id, age_class"""),
                         {"y": year}).all()
    capacities: dict[tuple[int, int], int] = {}
    priorities: dict[tuple[int, int], list[int]] = {}
    entry_of: dict[tuple[int, tuple[int, int]], QueueEntry] = {}
    for s in seats:
        seat = (s.facility_id, s.age_class)
        lock_centre(conn, s.facility_id)
        capacities[seat] = max(free_places(conn, s.facility_id, s.age_class), 0)
        order = []
        for q in queue(conn, s.facility_id, year=year, age_class=s.age_class, statuses=("waiting",)):
            if q.unverified and set(q.unverified) & set(q.ranked.priority.reasons):
                continue
            order.append(q.child_id)
            entry_of[(q.child_id, seat)] = q
        priorities[seat] = order
    prefs_rows = conn.execute(text("""SELECT child_id, facility_id, age_class FROM waitlist_entries
                                      WHERE year = :y AND status = 'waiting'
                                      AND NOT EXISTS (SELECT 1 FROM waitlist_offers o WHERE o.child_id =
                                                      waitlist_entries.child_id AND o.status = 'open')
                                      ORDER BY child_id, preference, applied_at"""), {"y": year}).all()
    preferences: dict[int, list[tuple[int, int]]] = {}
    for r in prefs_rows:
        preferences.setdefault(r.child_id, []).append((r.facility_id, r.age_class))
    assignment = deferred_acceptance(preferences, capacities, priorities)
    offers = 0
    for child_id, assigned in sorted(assignment.items(), key=lambda kv: kv[0]):
        if assigned is None:
            continue
        seat = assigned
        q = entry_of[(child_id, seat)]
        deadline = at + timedelta(days=rules.offer_days)
        entry = EntryRef(q.entry_id, q.ranked.public_id, child_id, seat[0], year, seat[1], q.status)
        transition(conn, entry, "intake_offer", at=at, deadline=deadline, actor_user_id=actor_user_id,
                   details={"year": year, "deadline": deadline.isoformat()})
        offers += 1
    return {"year": year, "children": len(preferences), "seats": sum(capacities.values()), "offers": offers,
            "unplaced": sum(1 for s in assignment.values() if s is None),
            "assignment": {child: seat for child, seat in assignment.items()}}
