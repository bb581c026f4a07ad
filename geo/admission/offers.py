"""Offers of free places: one at a time to the first eligible waiting entry, answered (accepted or declined) once
before a deadline; expired offers and entries left to lapse after an admission elsewhere.

An offer is answered once (``SELECT ... FOR UPDATE`` on the offer); a unique partial index backs "one live offer per
child".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from geo.admission.common import SEOUL, lock_centre, resolve_now
from geo.admission.lifecycle import notice
from geo.admission.queue import queue
from geo.admission.rules import childcare_year, rules_for
from geo.admission.states import EntryRef, lock_entry, transition
from geo.errors import Conflict, IllegalTransition, NotFound


def free_places(conn: Connection, facility_id: int, age_class: int) -> int:
    """Free places of an age class (the centre's ``free_by_age``) minus its open offers."""
    row = conn.execute(text("SELECT free_by_age FROM facilities WHERE id = :f"), {"f": facility_id}).first()
    if row is None:
        raise NotFound(f"no centre {facility_id}")
    free = int((row.free_by_age or {}).get(str(age_class)) or 0)
    open_offers = conn.execute(text("SELECT count(*) FROM waitlist_offers WHERE facility_id = :f AND age_class = :a "
                                    "AND status = 'open'"), {"f": facility_id, "a": age_class}).scalar_one()
    return free - int(open_offers)


def offer_next(conn: Connection, *, facility_id: int, age_class: int, actor_user_id: int | None,
               now: datetime | None = None) -> dict[str, Any]:
    """Offer a free place of an age class to the first eligible waiting entry of the current 보육연도.

    An entry is skipped (with a reason) when its child holds a live offer elsewhere or when a category that
    counts for its rank is still only claimed. ``Conflict`` when there is no free place.
    """
    at = resolve_now(now)
    year = childcare_year(at.astimezone(SEOUL).date())
    rules = rules_for(year)
    lock_centre(conn, facility_id)  # serialises staff: the second sees the first one's open offer
    if free_places(conn, facility_id, age_class) <= 0:
        raise Conflict(f"no free place for age {age_class} (free places minus open offers)", param="age_class")
    skipped: list[dict[str, str]] = []
    for q in queue(conn, facility_id, year=year, age_class=age_class, statuses=("waiting",)):
        if q.unverified and set(q.unverified) & set(q.ranked.priority.reasons):
            skipped.append({"entry": q.ranked.public_id,
                            "reason": f"priority claims not verified yet: {', '.join(q.unverified)}"})
            continue
        deadline = at + timedelta(days=rules.offer_days)
        entry = EntryRef(q.entry_id, q.ranked.public_id, q.child_id, facility_id, year, age_class, q.status)
        try:
            # Another centre may offer this child a place at the same moment: the unique partial index on live
            # offers decides, and the loser moves on to its next entry.
            applied = transition(conn, entry, "offer", at=at, deadline=deadline, actor_user_id=actor_user_id,
                                 details={"deadline": deadline.isoformat(),
                                          "skipped": [s["entry"] for s in skipped]})
        except IllegalTransition as exc:
            skipped.append({"entry": q.ranked.public_id, "reason": str(exc.extra.get("reason") or exc.detail)})
            continue
        offer_id = applied.offer_id
        assert offer_id is not None
        parent = conn.execute(text("SELECT parent_user_id FROM children WHERE id = :c"),
                              {"c": q.child_id}).scalar_one()
        notice(conn, parent, q.entry_id, "offer", f"a place is offered to you until {deadline.isoformat()}")
        return {"offer": offer_view(conn, offer_id), "skipped": skipped}
    return {"offer": None, "skipped": skipped}


def offer_view(conn: Connection, offer_id: int) -> dict[str, Any]:
    """An offer with its entry's public id and centre code."""
    row = conn.execute(text("""SELECT o.id, e.public_id AS entry, f.code AS centre, o.age_class, o.deadline,
                                      o.status, o.created_at, o.answered_at
                               FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                               JOIN facilities f ON f.id = o.facility_id WHERE o.id = :o"""),
                       {"o": offer_id}).mappings().one()
    return dict(row)


def centre_offers(conn: Connection, facility_id: int, *, limit: int = 50) -> list[dict[str, Any]]:
    """A centre's offers for its staff, newest first: open ones with their deadline, answered ones with the
    outcome (accepted, declined, expired, lapsed) and when."""
    rows = conn.execute(text("""SELECT o.id, e.public_id AS entry, ch.public_id AS child, ch.name, o.age_class,
                                       o.deadline, o.status, o.created_at, o.answered_at
                                FROM waitlist_offers o JOIN waitlist_entries e ON e.id = o.entry_id
                                JOIN children ch ON ch.id = o.child_id
                                WHERE o.facility_id = :f ORDER BY (o.status = 'open') DESC, o.id DESC LIMIT :n"""),
                        {"f": facility_id, "n": limit}).mappings().all()
    return [dict(r) for r in rows]


def own_offer(conn: Connection, offer_id: int, parent_user_id: int) -> Any:
    """The parent's open offer, locked after its centre's lock (``NotFound`` for anyone else's, ``Conflict`` once
    answered)."""
    facility_id = conn.execute(text("SELECT facility_id FROM waitlist_offers WHERE id = :o"),
                               {"o": offer_id}).scalar_one_or_none()
    if facility_id is not None:
        lock_centre(conn, facility_id)
    row = conn.execute(text("""SELECT o.id, o.status, o.deadline, o.facility_id, o.age_class, o.entry_id,
                                      o.child_id
                               FROM waitlist_offers o JOIN children ch ON ch.id = o.child_id
                               WHERE o.id = :o AND ch.parent_user_id = :p FOR UPDATE OF o"""),
                       {"o": offer_id, "p": parent_user_id}).first()
    if row is None:
        raise NotFound(f"no offer {offer_id} of yours", param="offer_id", value=offer_id)
    if row.status != "open":
        raise Conflict(f"offer {offer_id} is already {row.status}", state=row.status)
    return row


def accept(conn: Connection, *, parent_user_id: int, offer_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Accept an open offer before its deadline: the child is admitted, the place taken, and the child's other
    entries lapse after ``keep_other_entries_days`` unless the parent keeps them.

    A child admitted elsewhere accepts only on an entry without a lapse date (kept, or applied for after the
    admission): that is a transfer, and the earlier place is free again. Otherwise ``Conflict``: one child never
    holds two places.
    """
    at = resolve_now(now)
    offer = own_offer(conn, offer_id, parent_user_id)
    if at > offer.deadline:
        raise Conflict(f"offer {offer_id} expired at {offer.deadline.isoformat()}", state="expired")
    entry = lock_entry(conn, offer.entry_id)
    earlier = conn.execute(text("""SELECT e.id, f.code FROM waitlist_entries e JOIN facilities f ON f.id = e.facility_id
                                   WHERE e.child_id = :c AND e.status = 'admitted' AND e.id <> :e ORDER BY e.id"""),
                           {"c": offer.child_id, "e": entry.id}).all()
    if earlier and entry.lapse_at is not None:
        raise IllegalTransition(f"the child is admitted at {earlier[0].code}; keep this entry before "
                                f"{entry.lapse_at.isoformat()} to move the child here", state="admitted_elsewhere",
                                event="accept")
    for old in earlier:  # a kept entry (or one applied for after admission) is a transfer: the old place is free
        # No reference to the new offer: it would link the child's entries at two centres in the public logs.
        transition(conn, lock_entry(conn, old.id), "transfer", at=at)
    transition(conn, entry, "accept", at=at)
    return offer_view(conn, offer_id)


def decline(conn: Connection, *, parent_user_id: int, offer_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Decline an open offer: the entry is withdrawn and the place goes to the next eligible entry."""
    at = resolve_now(now)
    offer = own_offer(conn, offer_id, parent_user_id)
    transition(conn, lock_entry(conn, offer.entry_id), "decline", at=at)
    move_on(conn, offer.facility_id, offer.age_class, at=at)
    return offer_view(conn, offer_id)


def move_on(conn: Connection, facility_id: int, age_class: int, *, at: datetime) -> None:
    try:
        offer_next(conn, facility_id=facility_id, age_class=age_class, actor_user_id=None, now=at)
    except Conflict:
        pass  # no free place left: nothing to move on to


def expire_offers(conn: Connection, *, now: datetime | None = None) -> dict[str, int]:
    """Open offers past their deadline expire (their entries lapse) and the places go to the next entries;
    entries past their ``lapse_at`` (the child admitted elsewhere, not kept) lapse."""
    at = resolve_now(now)
    offers = conn.execute(text("SELECT id, entry_id, facility_id, age_class FROM waitlist_offers "
                               "WHERE status = 'open' AND deadline < :at ORDER BY id"), {"at": at}).all()
    freed: list[Any] = []  # (facility_id, age_class) of every closed offer, whose place moves on
    for o in offers:
        entry = lock_entry(conn, o.entry_id)
        still = conn.execute(text("SELECT status FROM waitlist_offers WHERE id = :o"), {"o": o.id}).scalar_one()
        if still != "open" or entry.status != "offered":  # answered since the list was read
            continue
        transition(conn, entry, "offer_expired", at=at)
        freed.append(o)
    offers_expired = len(freed)
    lapsing = conn.execute(text("SELECT id FROM waitlist_entries WHERE lapse_at IS NOT NULL AND lapse_at <= :at "
                                "AND status IN ('waiting', 'offered') ORDER BY id"), {"at": at}).scalars().all()
    lapsed = 0
    for entry_id in lapsing:
        entry = lock_entry(conn, entry_id)
        if entry.status not in ("waiting", "offered") or entry.lapse_at is None or entry.lapse_at > at:
            continue  # kept or answered since the list was read
        # An entry on offer lapses as well: its offer closes and the place moves on.
        applied = transition(conn, entry, "lapse_after_admission", at=at)
        lapsed += 1
        if applied.offer_id is not None:
            freed.append(entry)
    for o in freed:
        move_on(conn, o.facility_id, o.age_class, at=at)
    return {"offers_expired": offers_expired, "entries_lapsed": lapsed}
